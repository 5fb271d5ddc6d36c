# shellcheck shell=bash
# (ADDR, MAINPID and PIDS are run.sh's associative arrays.)
# shellcheck disable=SC2154,SC2034
# HTTPS benchmarks, sourced by run.sh (which provides log, free_port,
# cpu_ticks, rand_file, digest_of, push_mono, push_manifest, the temp dir
# $W, $BERTH_BIN, $NGINX_BIN, $ACCEPT, $REPO, $CONNS, $ROUNDS and the cleanup
# trap). tls_main prints a "TLS" section: berth over HTTP and over HTTPS
# (two processes on copies of one data directory), and nginx serving the
# same bytes over HTTP and HTTPS with the same certificate (one nginx, two
# servers), all measured by the same client, alternating:
#
#   man_get  GET of the manifest by tag, BENCH_TLS_REQS requests over
#            $CONNS keep-alive connections (curl --parallel)
#   pull     GET of a BENCH_TLS_MB MiB blob BENCH_TLS_PULLS times on one
#            connection (curl)
#
# The client is curl for every target (loadgen speaks plain HTTP only), so
# req/s here is lower than in the main table, where loadgen drives the
# load: on a 2-CPU machine curl's own CPU is part of what bounds it. The
# server CPU per request and per GB are the figures to compare.
# Knobs: BENCH_TLS_REQS (20000), BENCH_TLS_MB (256), BENCH_TLS_PULLS (4).

TLS_REQS=${BENCH_TLS_REQS:-20000}
TLS_MB=${BENCH_TLS_MB:-256}
TLS_PULLS=${BENCH_TLS_PULLS:-4}
TLS_TARGETS="berth_http berth_https nginx_http nginx_https"
TLS_RES=$W/res/tls
declare -A TV TURL # figures for the report; base URL of each target

tls_raw() { echo "$*" >>"$TLS_RES"; log "tls: $*"; }

tb_start_berth() { # TARGET DATA [ARGS...]
	local t=$1 data=$2 port scheme=http
	shift 2
	[ $# -gt 0 ] && scheme=https
	port=$(free_port) || return 1
	ADDR[$t]=127.0.0.1:$port
	TURL[$t]=$scheme://${ADDR[$t]}
	"$BERTH_BIN" serve --listen "${ADDR[$t]}" --data "$data" --access-log off \
		"$@" >>"$W/$t.log" 2>&1 &
	MAINPID[$t]=$!
	PIDS[$t]=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null --cacert "$TLS_CA" "${TURL[$t]}/healthz" 2>/dev/null && return 0
		kill -0 "${MAINPID[$t]}" 2>/dev/null || break
		sleep 0.1
	done
	log "tls: $t did not start: $(tail -n 3 "$W/$t.log" | tr '\n' ' ')"
	return 1
}

tb_start_nginx() {
	local n=$W/tls-nginx p pp ps
	pp=$(free_port) || return 1
	# free_port may hand out the same port twice in a row
	for _ in 1 2 3 4 5; do
		ps=$(free_port) || return 1
		[ "$ps" != "$pp" ] && break
	done
	[ "$ps" != "$pp" ] || return 1
	ADDR[nginx_http]=127.0.0.1:$pp
	ADDR[nginx_https]=127.0.0.1:$ps
	TURL[nginx_http]=http://${ADDR[nginx_http]}
	TURL[nginx_https]=https://${ADDR[nginx_https]}
	mkdir -p "$n/logs" "$n/tmp"
	# The same protocol versions and AEAD/ECDHE suites as berth.
	nginx_conf_head "$n" >"$n/nginx.conf"
	cat >>"$n/nginx.conf" <<-EOF
	  ssl_protocols TLSv1.2 TLSv1.3;
	  ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20;
	  ssl_certificate $TLS_DIR/srv.crt;
	  ssl_certificate_key $TLS_DIR/srv.key;
	  server {
	    listen ${ADDR[nginx_http]};
	    listen ${ADDR[nginx_https]} ssl;
	    root $W/tls-www;
	    location /v2/$REPO/manifests/ {
	      types { }
	      default_type application/vnd.oci.image.manifest.v1+json;
	    }
	    location /v2/$REPO/blobs/ {
	      types { }
	      default_type application/octet-stream;
	    }
	  }
	}
	EOF
	"$NGINX_BIN" -p "$n" -c "$n/nginx.conf" -e "$n/logs/error.log" >"$n/logs/stdout.log" 2>&1 &
	MAINPID[nginx_tls]=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null --cacert "$TLS_CA" "${TURL[nginx_https]}$TLS_MAN" 2>/dev/null && break
		kill -0 "${MAINPID[nginx_tls]}" 2>/dev/null || { log "tls: nginx did not start: $(tail -n 3 "$n/logs/error.log" | tr '\n' ' ')"; return 1; }
		sleep 0.1
	done
	for _ in $(seq 1 20); do
		p=$(pgrep -P "${MAINPID[nginx_tls]}" | tr '\n' ' ' || true)
		[ -n "$p" ] && break
		sleep 0.1
	done
	PIDS[nginx_http]="${MAINPID[nginx_tls]} $p"
	PIDS[nginx_https]=${PIDS[nginx_http]}
}

# tls_measure PHASE TARGET ROUND CMD...: CMD prints "requests=N bytes=B
# connects=C errors=E"; adds the elapsed time and the server's CPU.
tls_measure() {
	local phase=$1 t=$2 r=$3 c0 c1 t0 t1 line
	shift 3
	c0=$(cpu_ticks "$t")
	t0=$(date +%s%N)
	line=$("$@") || line="errors=1"
	t1=$(date +%s%N)
	c1=$(cpu_ticks "$t")
	tls_raw "phase=$phase target=$t round=$r $(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" \
		-v s="$t0" -v e="$t1" 'BEGIN{printf "cpu_s=%.2f elapsed_s=%.3f", (b - a) / h, (e - s) / 1e9}') $line"
}

# A curl config of N transfers of the manifest: curl --parallel keeps up to
# $CONNS connections and reuses them (connects= says how many it opened).
tls_man_get() { # TARGET
	local cfg=$W/tls-cfg.$1
	[ -f "$cfg" ] || for _ in $(seq 1 "$TLS_REQS"); do
		printf 'url = "%s%s"\noutput = "/dev/null"\n' "${TURL[$1]}" "$TLS_MAN"
	done >"$cfg"
	timeout 300 curl -s -Z --parallel-max "$CONNS" --cacert "$TLS_CA" -H "$ACCEPT" \
		-w '%{http_code} %{num_connects} %{size_download}\n' -K "$cfg" 2>/dev/null |
		awk -v want="$TLS_REQS" '{ n++; if ($1 != 200) bad++; c += $2; b += $3 }
		END { printf "requests=%d bytes=%d connects=%d errors=%d\n", n, b, c, (bad > 0 || n != want) }'
}

tls_pull() { # TARGET
	local a=() i
	for i in $(seq 1 "$TLS_PULLS"); do a+=(-o /dev/null "${TURL[$1]}$TLS_BLOB"); done
	timeout 300 curl -s --cacert "$TLS_CA" -w '%{http_code} %{num_connects} %{size_download}\n' "${a[@]}" |
		awk -v want="$((TLS_PULLS * TLS_MB * 1048576))" '{ n++; if ($1 != 200) bad++; c += $2; b += $3 }
		END { printf "requests=%d bytes=%d connects=%d errors=%d\n", n, b, c, (bad > 0 || b != want) }'
}

# tls_best PHASE TARGET KEY: KEY of the run with the most bytes per second.
tls_best() {
	awk -v p="$1" -v t="$2" -v k="$3" '
	{ delete kv; for (i = 1; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
	  if (kv["phase"] != p || kv["target"] != t || kv["errors"] != 0) next
	  v = kv["requests"] / kv["elapsed_s"]
	  if (!found || v > bv) { bv = v; line = $0; found = 1 } }
	END { if (!found) exit
	  n = split(line, f, " "); for (i = 1; i <= n; i++) { split(f[i], a, "="); kv[a[1]] = a[2] }
	  if (k == "rps") printf "%.0f", kv["requests"] / kv["elapsed_s"]
	  else if (k == "mbps") printf "%.0f", kv["bytes"] / kv["elapsed_s"] / 1e6
	  else if (k == "us_req") printf "%.1f", kv["cpu_s"] * 1e6 / kv["requests"]
	  else if (k == "s_gb") printf "%.3f", kv["cpu_s"] / (kv["bytes"] / 1e9) }' "$TLS_RES"
}

# What this kernel and GnuTLS offer for kernel TLS (sendfile over TLS).
tls_ktls_note() {
	local ulp lib kcfg gn
	ulp=$(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null)
	kcfg=$(zcat /proc/config.gz 2>/dev/null | grep -E '^(# )?CONFIG_TLS[ =]' || true)
	lib=$(ldconfig -p 2>/dev/null | awk '/libgnutls\.so\.30 / {print $NF; exit}')
	if [ -n "$lib" ] && grep -aq _gnutls_ktls_set_keys "$lib" 2>/dev/null; then
		gn="GnuTLS ($lib) is built with KTLS (off unless /etc/gnutls/config sets ktls = true)"
	else
		gn="GnuTLS is built without KTLS"
	fi
	echo "- kernel TLS: $gn; the kernel's TCP ULPs: \"${ulp:-?}\" (KTLS needs \"tls\")${kcfg:+, $kcfg}."
	echo "  libmicrohttpd 0.9.75 sends through gnutls_record_send and uses sendfile only"
	echo "  without TLS, so a blob over HTTPS is read and encrypted in user space; KTLS"
	echo "  would at most move the encryption into the kernel, not bring sendfile back."
}

tls_main() {
	local t r p
	: >"$TLS_RES"
	# shellcheck source=tests/integration/tls_lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/../integration/tls_lib.sh"
	TLS_DIR=$W/tls-ca
	TLS_CA=$TLS_DIR/ca.crt
	if ! tls_make_ca "$TLS_DIR" || ! tls_make_leaf "$TLS_DIR" srv ec; then
		echo "## TLS"
		echo
		echo "- not run: openssl could not make the test certificate"
		return 0
	fi
	# content: a config, the blob, a manifest referencing them
	local c=$W/tls-content
	mkdir -p "$c" "$W/tls-plain"
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$c/config"
	rand_file "$c/blob" "$TLS_MB"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
		"$(digest_of "$c/config")" "$(stat -c %s "$c/config")" "$(digest_of "$c/blob")" \
		"$(stat -c %s "$c/blob")" >"$c/manifest"
	TLS_MAN=/v2/$REPO/manifests/v1
	TLS_BLOB=/v2/$REPO/blobs/$(digest_of "$c/blob")
	local targets=()
	if tb_start_berth berth_http "$W/tls-plain" &&
		push_mono berth_http "$c/config" "$(digest_of "$c/config")" &&
		push_mono berth_http "$c/blob" "$(digest_of "$c/blob")" &&
		push_manifest berth_http "$c/manifest" v1; then
		targets+=(berth_http)
		# nothing writes now: a copy of the directory is consistent
		cp -a "$W/tls-plain" "$W/tls-https" && rm -f "$W/tls-https/lock"
		tb_start_berth berth_https "$W/tls-https" --tls-cert "$TLS_DIR/srv.crt" \
			--tls-key "$TLS_DIR/srv.key" && targets+=(berth_https)
	fi
	mkdir -p "$W/tls-www/v2/$REPO/manifests" "$W/tls-www/v2/$REPO/blobs"
	cp "$c/manifest" "$W/tls-www/v2/$REPO/manifests/v1"
	ln "$c/blob" "$W/tls-www$TLS_BLOB" 2>/dev/null || cp "$c/blob" "$W/tls-www$TLS_BLOB"
	chmod -R a+rX "$W/tls-www" "$c" "$TLS_DIR"
	if [ -x "$NGINX_BIN" ] && tb_start_nginx; then targets+=(nginx_http nginx_https); fi
	# every target serves the same bytes, or is not measured
	local ok_targets=()
	for t in "${targets[@]}"; do
		if [ "$(curl -sS -m 30 --cacert "$TLS_CA" -H "$ACCEPT" "${TURL[$t]}$TLS_MAN" | sha256sum | cut -d' ' -f1)" = "$(sha256sum <"$c/manifest" | cut -d' ' -f1)" ] &&
			[ "sha256:$(curl -sS -m 120 --cacert "$TLS_CA" "${TURL[$t]}$TLS_BLOB" | sha256sum | cut -d' ' -f1)" = "$(digest_of "$c/blob")" ]; then
			ok_targets+=("$t")
		else
			log "tls: $t does not serve the content back"
		fi
	done
	for r in $(seq 1 "$ROUNDS"); do
		for t in "${ok_targets[@]}"; do tls_measure man_get "$t" "$r" tls_man_get "$t"; done
	done
	for r in $(seq 1 "$ROUNDS"); do
		for t in "${ok_targets[@]}"; do tls_measure pull "$t" "$r" tls_pull "$t"; done
	done
	for t in $TLS_TARGETS; do
		TV[$t.rps]=$(tls_best man_get "$t" rps)
		TV[$t.us_req]=$(tls_best man_get "$t" us_req)
		TV[$t.mbps]=$(tls_best pull "$t" mbps)
		TV[$t.s_gb]=$(tls_best pull "$t" s_gb)
	done
	local proto_b proto_n
	proto_b=$(timeout 10 openssl s_client -connect "${ADDR[berth_https]:-127.0.0.1:1}" </dev/null 2>/dev/null | grep -m1 'Cipher is' | sed 's/^New, //')
	proto_n=$(timeout 10 openssl s_client -connect "${ADDR[nginx_https]:-127.0.0.1:1}" </dev/null 2>/dev/null | grep -m1 'Cipher is' | sed 's/^New, //')
	for t in berth_https berth_http; do
		[ -n "${MAINPID[$t]:-}" ] && kill -TERM "${MAINPID[$t]}" 2>/dev/null
	done
	[ -n "${MAINPID[nginx_tls]:-}" ] && kill -TERM "${MAINPID[nginx_tls]}" 2>/dev/null

	echo "## TLS"
	echo
	echo "Same client (curl) for every column, alternating, best of $ROUNDS: manifest GET by"
	echo "tag, $TLS_REQS requests over $CONNS keep-alive connections; blob pull: $TLS_MB MiB"
	echo "$TLS_PULLS times on one connection. ECDSA P-256 certificate (leaf + intermediate)."
	echo "berth: ${proto_b:-?}; nginx: ${proto_n:-?}."
	echo
	echo "| test | berth http | berth https | nginx http | nginx https | berth https/http | nginx https/http | berth https/nginx https |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	local row
	for row in "manifest GET, req/s:rps:0" "manifest GET, server CPU us/req:us_req:1" \
		"blob pull 1 stream, MB/s:mbps:0" "blob pull, server CPU s/GB:s_gb:3"; do
		IFS=: read -r label key dec <<<"$row"
		local bh=${TV[berth_http.$key]:-} bs=${TV[berth_https.$key]:-} nh=${TV[nginx_http.$key]:-} ns=${TV[nginx_https.$key]:-}
		echo "| $label | $(fmt "$bh" "$dec") | $(fmt "$bs" "$dec") | $(fmt "$nh" "$dec") | $(fmt "$ns" "$dec") | $(ratio "$bs" "$bh") | $(ratio "$ns" "$nh") | $(ratio "$bs" "$ns") |"
	done
	echo
	tls_ktls_note
	echo
	echo '```'
	cat "$TLS_RES"
	echo '```'
}
