#!/usr/bin/env bash
# Benchmarks berth against CNCF distribution (Debian's docker-registry) and
# nginx serving the same bytes as static files (the ceiling), side by side on
# 127.0.0.1, then garbage collection (tests/bench/gc.sh) against
# distribution's offline collector, then retention (tests/bench/retention.sh:
# tag expiry and collection under load, pull tracking on and off). Usage:
# tests/bench/run.sh BUILD_DIR [PART] (e.g. build/release; PART: all
# (default), main (without the gc, retention and tls parts), gc (only the gc
# part), retention (only the retention part), tls (only HTTPS: berth and
# nginx over HTTP and HTTPS, tests/bench/tls.sh), backup (only `berth
# backup` against `tar -I zstd`, and `berth restore`: tests/bench/backup.sh)).
#
# Knobs (environment): BENCH_SECONDS (10) per load run, BENCH_CONNS (64),
# BENCH_THREADS (2) loadgen threads, BENCH_ROUNDS (2) alternations per phase,
# BENCH_PUSH_ROUNDS (5) alternations of the push phases (their median counts),
# BENCH_STORM_CLIENTS (50), BENCH_STORM_ROUNDS (3), BENCH_BIG_MB (256),
# BENCH_LAYERS_MB ("1 4 16"), BENCH_SMALL_KB ("16 64 256": layers of the
# second image, whose storm measures request handling rather than loopback
# bandwidth), BENCH_TARGETS ("berth distribution nginx"),
# BENCH_PHASES (all), BENCH_BERTH (BUILD_DIR/berth),
# BENCH_OUT (BUILD_DIR/bench-results.md), BENCH_KEEP=1 keeps the temp dir.
# The gc and retention parts have knobs of their own (gc.sh, retention.sh).
# Exits 0 unless the harness itself broke; PASS/MISS lines are informational.
set -euo pipefail

BUILD=${1:-build/release}
PART=${2:-all} # all | main (no gc, no retention, no tls) | gc | retention | tls | backup (only that part)
case $PART in all | main | gc | retention | tls | backup) ;; *) echo "usage: $0 BUILD_DIR [all|main|gc|retention|tls|backup]" >&2; exit 2 ;; esac
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-2}
PUSH_ROUNDS=${BENCH_PUSH_ROUNDS:-5}
STORM_CLIENTS=${BENCH_STORM_CLIENTS:-50}
STORM_ROUNDS=${BENCH_STORM_ROUNDS:-3}
BIG_MB=${BENCH_BIG_MB:-256}
LAYERS_MB=${BENCH_LAYERS_MB:-1 4 16}
SMALL_KB=${BENCH_SMALL_KB:-16 64 256}
TARGETS_WANTED=${BENCH_TARGETS:-berth distribution nginx}
OUT=${BENCH_OUT:-$BUILD/bench-results.md}
LOADGEN=$BUILD/tests/bench/loadgen
BERTH_BIN=${BENCH_BERTH:-$BUILD/berth}
DIST_BIN=${BENCH_DISTRIBUTION:-/usr/bin/docker-registry}
NGINX_BIN=${BENCH_NGINX:-/usr/sbin/nginx}
REPO=bench/app
TAG=v1
CLK_TCK=$(getconf CLK_TCK)
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json'

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

for n in "$SECS" "$CONNS" "$THREADS" "$ROUNDS" "$PUSH_ROUNDS" "$STORM_CLIENTS" "$STORM_ROUNDS" "$BIG_MB"; do
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "numeric knob out of range: '$n'"
done
[ -x "$LOADGEN" ] || die "$LOADGEN missing (make MODE=release all)"
command -v curl >/dev/null || die "curl missing"

W=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
chmod 0755 "$W" # nginx workers run as another user
mkdir -p "$W/res" "$W/content" "$W/push"
declare -A ADDR PIDS MAINPID NOTE
TARGETS=()

cleanup() {
	local t p
	set +e
	for t in "${!MAINPID[@]}"; do
		p=${MAINPID[$t]}
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	done
	for t in "${!MAINPID[@]}"; do
		p=${MAINPID[$t]}
		[ -n "$p" ] || continue
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return 0; fi
	done
	return 1
}

# wait_http TARGET: until the server answers any HTTP status on /v2/.
wait_http() {
	local t=$1 code
	for _ in $(seq 1 100); do
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://${ADDR[$t]}/v2/" 2>/dev/null || true)
		[ -n "$code" ] && [ "$code" != 000 ] && return 0
		kill -0 "${MAINPID[$t]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start_berth() {
	local port
	if [ ! -x "$BERTH_BIN" ]; then
		NOTE[berth]="not run: $BERTH_BIN does not exist"
		return 1
	fi
	port=$(free_port) || return 1
	ADDR[berth]=127.0.0.1:$port
	mkdir -p "$W/berth-data"
	"$BERTH_BIN" serve --listen "${ADDR[berth]}" --data "$W/berth-data" \
		--access-log off >"$W/berth.log" 2>&1 &
	MAINPID[berth]=$!
	if ! wait_http berth; then
		NOTE[berth]="not run: did not start ($(tail -n 3 "$W/berth.log" | tr '\n' ' '))"
		return 1
	fi
	PIDS[berth]=${MAINPID[berth]}
}

start_distribution() {
	local port
	[ -x "$DIST_BIN" ] || { NOTE[distribution]="not run: $DIST_BIN missing"; return 1; }
	port=$(free_port) || return 1
	ADDR[distribution]=127.0.0.1:$port
	mkdir -p "$W/dist-data"
	# The in-memory blob descriptor cache is on in the packaged default
	# config; keeping it makes the comparison against distribution's best.
	cat >"$W/dist.yml" <<-EOF
	version: 0.1
	log:
	  level: error
	  accesslog:
	    disabled: true
	storage:
	  filesystem:
	    rootdirectory: $W/dist-data
	  cache:
	    blobdescriptor: inmemory
	  delete:
	    enabled: true
	http:
	  addr: ${ADDR[distribution]}
	  secret: bench-not-a-secret
	EOF
	"$DIST_BIN" serve "$W/dist.yml" >"$W/distribution.log" 2>&1 &
	MAINPID[distribution]=$!
	if ! wait_http distribution; then
		NOTE[distribution]="not run: did not start ($(tail -n 3 "$W/distribution.log" | tr '\n' ' '))"
		return 1
	fi
	PIDS[distribution]=${MAINPID[distribution]}
}

# nginx_conf_head DIR: the start of every nginx.conf of the bench (one
# instance per DIR), up to inside its http block.
nginx_conf_head() {
	local n=$1
	cat <<-EOF
	worker_processes 2;
	daemon off;
	pid $n/nginx.pid;
	error_log $n/logs/error.log error;
	events { worker_connections 4096; }
	http {
	  access_log off;
	  sendfile on;
	  tcp_nopush on;
	  keepalive_timeout 300;
	  keepalive_requests 100000000;
	  client_body_temp_path $n/tmp/body;
	  proxy_temp_path $n/tmp/proxy;
	  fastcgi_temp_path $n/tmp/fastcgi;
	  uwsgi_temp_path $n/tmp/uwsgi;
	  scgi_temp_path $n/tmp/scgi;
	EOF
}

start_nginx() {
	local port p n=$W/nginx
	[ -x "$NGINX_BIN" ] || { NOTE[nginx]="not run: $NGINX_BIN missing"; return 1; }
	port=$(free_port) || return 1
	ADDR[nginx]=127.0.0.1:$port
	mkdir -p "$n/logs" "$n/tmp" "$W/www"
	nginx_conf_head "$n" >"$n/nginx.conf"
	cat >>"$n/nginx.conf" <<-EOF
	  server {
	    listen ${ADDR[nginx]};
	    root $W/www;
	    location /v2/$REPO/manifests/ {
	      types { }
	      default_type application/vnd.oci.image.manifest.v1+json;
	      add_header Docker-Distribution-API-Version registry/2.0;
	    }
	    location /v2/$REPO/blobs/ {
	      types { }
	      default_type application/octet-stream;
	    }
	  }
	}
	EOF
	"$NGINX_BIN" -p "$n" -c "$n/nginx.conf" -e "$n/logs/error.log" >"$n/logs/stdout.log" 2>&1 &
	MAINPID[nginx]=$!
	if ! wait_http nginx; then
		NOTE[nginx]="not run: did not start ($(tail -n 3 "$n/logs/error.log" | tr '\n' ' '))"
		return 1
	fi
	# The master forks the workers; serving CPU and memory are theirs.
	for _ in $(seq 1 20); do
		p=$(pgrep -P "${MAINPID[nginx]}" | tr '\n' ' ' || true)
		[ -n "$p" ] && break
		sleep 0.1
	done
	PIDS[nginx]="${MAINPID[nginx]} $p"
}

# cpu_ticks TARGET: utime+stime of all its processes (threads included).
cpu_ticks() {
	local p sum=0 v
	for p in ${PIDS[$1]}; do
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# mem_kb TARGET FIELD: sum of FIELD (VmRSS, VmHWM) over its processes.
mem_kb() {
	local p sum=0 v
	for p in ${PIDS[$1]}; do
		v=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null) || v=0
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

rand_file() { # rand_file PATH MIB
	if command -v openssl >/dev/null; then
		openssl rand -out "$1" $(($2 * 1048576))
	else
		head -c $(($2 * 1048576)) /dev/urandom >"$1"
	fi
}

digest_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# upload_url TARGET LOCATION: absolute URL for a Location header value.
upload_url() {
	case $2 in
	http://* | https://*) echo "$2" ;;
	*) echo "http://${ADDR[$1]}$2" ;;
	esac
}

# start_upload TARGET: POST, prints the absolute upload URL.
start_upload() {
	local loc
	loc=$(curl -sS -m 30 -X POST -D - -o /dev/null -H 'Content-Length: 0' \
		"http://${ADDR[$1]}/v2/$REPO/blobs/uploads/" |
		awk 'tolower($1) == "location:" {print $2}' | tr -d '\r')
	[ -n "$loc" ] || return 1
	upload_url "$1" "$loc"
}

qsep() { case $1 in *\?*) echo '&' ;; *) echo '?' ;; esac; }

# push_mono TARGET FILE DIGEST: POST, then PUT ?digest= with the whole body.
push_mono() {
	local url code
	url=$(start_upload "$1") || return 1
	code=$(curl -sS -m 600 -o /dev/null -w '%{http_code}' -X PUT -H 'Expect:' \
		-H 'Content-Type: application/octet-stream' -T "$2" \
		"$url$(qsep "$url")digest=$3")
	[ "$code" = 201 ] || { log "$1: monolithic PUT answered $code"; return 1; }
}

# push_stream TARGET FILE DIGEST: docker's way: one PATCH with a chunked
# body and no Content-Range, then an empty PUT ?digest=.
push_stream() {
	local url loc code hdr=$W/push/hdr
	url=$(start_upload "$1") || return 1
	code=$(curl -sS -m 600 -D "$hdr" -o /dev/null -w '%{http_code}' -X PATCH -H 'Expect:' \
		-H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' \
		-T "$2" "$url")
	[ "$code" = 202 ] || { log "$1: streamed PATCH answered $code"; return 1; }
	loc=$(awk 'tolower($1) == "location:" {print $2}' "$hdr" | tr -d '\r')
	[ -n "$loc" ] && url=$(upload_url "$1" "$loc")
	code=$(curl -sS -m 60 -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Length: 0' \
		"$url$(qsep "$url")digest=$3")
	[ "$code" = 201 ] || { log "$1: PUT after PATCH answered $code"; return 1; }
}

push_manifest() { # TARGET FILE REFERENCE
	local code
	code=$(curl -sS -m 30 -o /dev/null -w '%{http_code}' -X PUT \
		-H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
		--data-binary "@$2" "http://${ADDR[$1]}/v2/$REPO/manifests/$3")
	[ "$code" = 201 ] || { log "$1: manifest PUT answered $code"; return 1; }
}

# check LABEL VALUE OP LIMIT: one PASS/MISS line.
check() {
	local v=$2 res
	if [ -z "$v" ] || [ "$v" = "—" ]; then
		res="SKIP (not measured)"
	elif awk -v a="$v" -v b="$4" -v op="$3" 'BEGIN{exit !((op == ">=" && a >= b) || (op == "<=" && a <= b) || (op == "<" && a < b))}'; then
		res=PASS
	else
		res=MISS
	fi
	echo "- $res: $1 = $v (target $3 $4)"
}

kv() { # LINE KEY
	awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) { print a[2]; exit } } }' <<<"$1"
}
fmt() { # NUMBER DECIMALS
	[ -n "$1" ] && awk -v x="$1" -v d="$2" 'BEGIN{printf "%.*f", d, x}' || echo "—"
}
ratio() { # A B
	if [ -n "$1" ] && [ -n "$2" ] && awk -v b="$2" 'BEGIN{exit !(b > 0)}'; then
		awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'
	else echo "—"; fi
}

# The garbage-collection benchmarks (tests/bench/gc.sh) need none of the
# servers or content below: "gc" runs only them, into a report of its own.
if [ "$PART" = gc ]; then
	# shellcheck source=tests/bench/gc.sh
	. "$(dirname "$0")/gc.sh"
	mkdir -p "$(dirname "$OUT")"
	# Not in a pipeline: the servers it starts must be this shell's, for
	# the cleanup trap.
	gc_main >"$W/gc-report.md"
	{
		echo "# berth benchmark (garbage collection only)"
		cat "$W/gc-report.md"
	} | tee "$OUT"
	log "results written to $OUT"
	exit 0
fi
if [ "$PART" = backup ]; then
	# shellcheck source=tests/bench/backup.sh
	. "$(dirname "$0")/backup.sh"
	mkdir -p "$(dirname "$OUT")"
	bk_main >"$W/bk-report.md"
	{
		echo "# berth benchmark (backup and restore only)"
		cat "$W/bk-report.md"
	} | tee "$OUT"
	log "results written to $OUT"
	exit 0
fi
if [ "$PART" = retention ]; then
	# shellcheck source=tests/bench/retention.sh
	. "$(dirname "$0")/retention.sh"
	mkdir -p "$(dirname "$OUT")"
	ret_main >"$W/ret-report.md"
	{
		echo "# berth benchmark (retention only)"
		cat "$W/ret-report.md"
	} | tee "$OUT"
	log "results written to $OUT"
	exit 0
fi

if [ "$PART" = tls ]; then
	# shellcheck source=tests/bench/tls.sh
	. "$(dirname "$0")/tls.sh"
	mkdir -p "$(dirname "$OUT")"
	tls_main >"$W/tls-report.md"
	{
		echo "# berth benchmark (TLS only)"
		cat "$W/tls-report.md"
	} | tee "$OUT"
	log "results written to $OUT"
	exit 0
fi

# ---------------------------------------------------------------- content
C=$W/content
log "generating content in $W"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}' >"$C/config"
LAYER_FILES=()
i=0
for mb in $LAYERS_MB; do
	[[ "$mb" =~ ^[0-9]+$ ]] || die "BENCH_LAYERS_MB: '$mb'"
	rand_file "$C/layer$i" "$mb"
	LAYER_FILES+=("$C/layer$i")
	i=$((i + 1))
done
rand_file "$C/big" "$BIG_MB"
SMALL_FILES=()
i=0
for kb in $SMALL_KB; do
	[[ "$kb" =~ ^[0-9]+$ ]] || die "BENCH_SMALL_KB: '$kb'"
	head -c $((kb * 1024)) /dev/urandom >"$C/small$i"
	SMALL_FILES+=("$C/small$i")
	i=$((i + 1))
done
CONFIG_DIGEST=$(digest_of "$C/config")
BIG_DIGEST=$(digest_of "$C/big")
BIG_BYTES=$(stat -c %s "$C/big")
layers_json=
LAYER_PATHS=()
for f in "${LAYER_FILES[@]}"; do
	d=$(digest_of "$f")
	LAYER_PATHS+=("/v2/$REPO/blobs/$d")
	layers_json+="${layers_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$(stat -c %s "$f")}"
done
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
	"$CONFIG_DIGEST" "$(stat -c %s "$C/config")" "$layers_json" >"$C/manifest"
MANIFEST_DIGEST=$(digest_of "$C/manifest")
small_json=
SMALL_PATHS=()
for f in "${SMALL_FILES[@]}"; do
	d=$(digest_of "$f")
	SMALL_PATHS+=("/v2/$REPO/blobs/$d")
	small_json+="${small_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$(stat -c %s "$f")}"
done
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
	"$CONFIG_DIGEST" "$(stat -c %s "$C/config")" "$small_json" >"$C/manifest_small"
SMALL_DIGEST=$(digest_of "$C/manifest_small")
SMALL_TAG=small
MAN_TAG=/v2/$REPO/manifests/$TAG
MAN_DIG=/v2/$REPO/manifests/$MANIFEST_DIGEST
CONFIG_PATH=/v2/$REPO/blobs/$CONFIG_DIGEST
BIG_PATH=/v2/$REPO/blobs/$BIG_DIGEST

load_content() { # TARGET: push everything, then check it reads back
	local t=$1 f got
	if [ "$t" = nginx ]; then
		local b=$W/www/v2/$REPO
		mkdir -p "$b/manifests" "$b/blobs"
		cp "$C/manifest" "$b/manifests/$TAG"
		cp "$C/manifest" "$b/manifests/$MANIFEST_DIGEST"
		cp "$C/manifest_small" "$b/manifests/$SMALL_TAG"
		cp "$C/manifest_small" "$b/manifests/$SMALL_DIGEST"
		for f in "$C/config" "${LAYER_FILES[@]}" "${SMALL_FILES[@]}" "$C/big"; do
			ln "$f" "$b/blobs/$(digest_of "$f")" 2>/dev/null || cp "$f" "$b/blobs/$(digest_of "$f")"
		done
		chmod -R a+rX "$W/www" "$C"
	else
		for f in "$C/config" "${LAYER_FILES[@]}" "${SMALL_FILES[@]}" "$C/big"; do
			push_mono "$t" "$f" "$(digest_of "$f")" || return 1
		done
		push_manifest "$t" "$C/manifest" "$TAG" || return 1
		push_manifest "$t" "$C/manifest_small" "$SMALL_TAG" || return 1
	fi
	got=$(curl -sS -m 30 -H "$ACCEPT" "http://${ADDR[$t]}$MAN_TAG" | sha256sum | cut -d' ' -f1)
	[ "sha256:$got" = "$MANIFEST_DIGEST" ] || { log "$t: manifest reads back wrong"; return 1; }
	got=$(curl -sS -m 120 "http://${ADDR[$t]}$BIG_PATH" | sha256sum | cut -d' ' -f1)
	[ "sha256:$got" = "$BIG_DIGEST" ] || { log "$t: big blob reads back wrong"; return 1; }
}

declare -A IDLE_RSS
for t in $TARGETS_WANTED; do
	case $t in berth | distribution | nginx) ;; *) die "unknown target '$t'" ;; esac
	if "start_$t" && load_content "$t"; then
		TARGETS+=("$t")
		sleep 1
		IDLE_RSS[$t]=$(mem_kb "$t" VmRSS)
		log "$t ready on ${ADDR[$t]} (pids ${PIDS[$t]})"
	else
		NOTE[$t]=${NOTE[$t]:-"not run: content push or read-back failed"}
		log "$t: ${NOTE[$t]}"
		if [ -n "${MAINPID[$t]:-}" ]; then kill -TERM "${MAINPID[$t]}" 2>/dev/null || true; fi
	fi
done
[ ${#TARGETS[@]} -gt 0 ] || die "no target could be started"
has() { local x; for x in "${TARGETS[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

# ---------------------------------------------------------------- phases
# Every measurement appends "phase=P target=T round=R cpu_s=X <loadgen
# key=values>" to $W/res/all. Targets alternate within a round so that both
# registries see the same noise.
RES=$W/res/all
: >"$RES"

# measure PHASE TARGET ROUND CMD...: runs CMD, records its line plus CPU.
measure() {
	local phase=$1 t=$2 r=$3 c0 c1 line
	shift 3
	c0=$(cpu_ticks "$t")
	line=$("$@") || { log "$phase/$t: loadgen failed"; line="failed=1"; }
	c1=$(cpu_ticks "$t")
	line="phase=$phase target=$t round=$r cpu_s=$(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" 'BEGIN{printf "%.2f", (b - a) / h}') $line"
	echo "$line" >>"$RES"
	log "$line"
}

lg_load() { # TARGET CONNS MAX_REQ SECONDS PATH...
	local t=$1 c=$2 n=$3 d=$4
	shift 4
	"$LOADGEN" load -a "${ADDR[$t]}" -l "$t" -c "$c" -t "$THREADS" -n "$n" -d "$d" \
		-H "$ACCEPT" "$@"
}

run_phase() { # PHASE TARGETS-LIST CMD-FUNCTION [ROUNDS]
	local phase=$1 list=$2 fn=$3 rounds=${4:-$ROUNDS} r t
	for r in $(seq 1 "$rounds"); do
		for t in $list; do
			has "$t" || continue
			measure "$phase" "$t" "$r" "$fn" "$t"
		done
	done
}

ph_man_get() { lg_load "$1" "$CONNS" 100000000 "$SECS" "GET:$MAN_TAG"; }
ph_man_head() { lg_load "$1" "$CONNS" 100000000 "$SECS" "HEAD:$MAN_TAG"; }
ph_blob_head() { lg_load "$1" "$CONNS" 100000000 "$SECS" "HEAD:${LAYER_PATHS[0]}"; }
ph_storm() {
	"$LOADGEN" storm -a "${ADDR[$1]}" -l "$1" -c "$STORM_CLIENTS" -t "$THREADS" \
		-r "$STORM_ROUNDS" -d 300 -H "$ACCEPT" "HEAD:$MAN_TAG" "GET:$MAN_DIG" \
		"GET:$CONFIG_PATH" "${LAYER_PATHS[@]/#/GET:}"
}
ph_storm_small() {
	"$LOADGEN" storm -a "${ADDR[$1]}" -l "$1" -c "$STORM_CLIENTS" -t "$THREADS" \
		-r "$STORM_ROUNDS" -d 300 -H "$ACCEPT" "HEAD:/v2/$REPO/manifests/$SMALL_TAG" \
		"GET:/v2/$REPO/manifests/$SMALL_DIGEST" "GET:$CONFIG_PATH" "${SMALL_PATHS[@]/#/GET:}"
}
ph_pull1() { lg_load "$1" 1 8 300 "GET:$BIG_PATH"; }
ph_pull8() { lg_load "$1" 8 32 300 "GET:$BIG_PATH"; }

# A push is timed around the curl calls; the file is fresh random content
# made before the clock starts, so no server can skip work by dedup.
push_timed() { # TARGET KIND
	local f=$W/push/blob d t0 t1
	rand_file "$f" "$BIG_MB"
	d=$(digest_of "$f")
	# The fresh file's dirty pages would otherwise be written back during
	# the push, taking the disk from the server being measured.
	sync
	t0=$(date +%s%N)
	if "push_$2" "$1" "$f" "$d"; then
		t1=$(date +%s%N)
		awk -v a="$t0" -v b="$t1" -v n="$BIG_BYTES" \
			'BEGIN{s = (b - a) / 1e9; printf "mode=push elapsed_s=%.3f mbps=%.1f bytes=%d errors=0\n", s, n / s / 1e6, n}'
	else
		echo "mode=push errors=1 bytes=0"
	fi
	rm -f "$f"
}
ph_push_mono() { push_timed "$1" mono; }
ph_push_stream() { push_timed "$1" stream; }

# Token auth: a second berth with --auth on a copy of the data directory
# (one berth process per directory: DATA/lock), so manifest HEADs with a
# bearer token run against HEADs without one on the same content,
# alternately; and sign-ins per second at the token endpoint
# with the same credentials again and again (a kubelet pull storm).
start_berth_auth() {
	local port a=$W/auth
	has berth || return 1
	port=$(free_port) || return 1
	ADDR[berth_auth]=127.0.0.1:$port
	mkdir -p "$a"
	"$BERTH_BIN" auth keygen --out "$a/key.pem" >/dev/null || return 1
	AUTH_HASH=$(printf 'bench-secret\n' | "$BERTH_BIN" auth hash) || return 1
	cat >"$a/users.json" <<-EOF
	{"service": "bench", "issuer": "bench", "realm": "http://${ADDR[berth_auth]}/auth/token",
	 "signing_key": "key.pem",
	 "users": [{"name": "kubelet", "password_hash": "$AUTH_HASH",
	            "rules": [{"repositories": ["**"], "actions": ["pull"]}]}]}
	EOF
	# The content is pushed and nothing writes now: a copy is consistent.
	cp -a "$W/berth-data" "$W/berth-auth-data" || return 1
	rm -f "$W/berth-auth-data/lock"
	"$BERTH_BIN" serve --listen "${ADDR[berth_auth]}" --data "$W/berth-auth-data" \
		--auth "$a/users.json" --access-log off >"$W/berth_auth.log" 2>&1 &
	MAINPID[berth_auth]=$!
	PIDS[berth_auth]=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "http://${ADDR[berth_auth]}/healthz" 2>/dev/null && break
		sleep 0.1
	done
	AUTH_BASIC="Authorization: Basic $(printf 'kubelet:bench-secret' | base64 -w0)"
	AUTH_TOKEN_PATH="/auth/token?service=bench&scope=repository:$REPO:pull"
	BEARER=$(curl -sS -H "$AUTH_BASIC" "http://${ADDR[berth_auth]}$AUTH_TOKEN_PATH" | jq -r .token)
	[ -n "$BEARER" ] && [ "$BEARER" != null ] || { log "berth_auth: no token"; return 1; }
	TARGETS+=(berth_auth)
	IDLE_RSS[berth_auth]=$(mem_kb berth_auth VmRSS)
}
ph_auth_head() {
	case $1 in
	berth) lg_load berth "$CONNS" 100000000 "$SECS" "HEAD:$MAN_TAG" ;;
	berth_auth) lg_load berth_auth "$CONNS" 100000000 "$SECS" -H "Authorization: Bearer $BEARER" "HEAD:$MAN_TAG" ;;
	esac
}
ph_auth_login() {
	"$LOADGEN" load -a "${ADDR[$1]}" -l "$1" -c 16 -t "$THREADS" -n 100000000 -d "$SECS" \
		-H "$AUTH_BASIC" "GET:$AUTH_TOKEN_PATH"
}

PHASES=${BENCH_PHASES:-man_get man_head blob_head storm_small storm pull1 pull8 push_mono push_stream auth_head auth_login}
for phase in $PHASES; do
	case $phase in
	man_get | man_head | blob_head | storm_small | storm | pull1 | pull8 | push_mono | push_stream) ;;
	auth_head | auth_login)
		if ! has berth_auth && ! start_berth_auth; then
			NOTE[berth_auth]="not run: berth with --auth did not start"
			continue
		fi
		;;
	*) die "unknown phase '$phase'" ;;
	esac
	case $phase in
	push_*) run_phase "$phase" "berth distribution" "ph_$phase" "$PUSH_ROUNDS" ;;
	auth_head) run_phase "$phase" "berth berth_auth" "ph_$phase" ;;
	auth_login) run_phase "$phase" "berth_auth" "ph_$phase" ;;
	*) run_phase "$phase" "berth distribution nginx" "ph_$phase" ;;
	esac
done

# The disk bounds a durable push: one fsync'd sequential write of the same size.
DISK_MBPS=$(dd if=/dev/zero of="$W/push/dd" bs=1M count="$BIG_MB" conv=fsync 2>&1 |
	awk '/copied/ {for (i = 1; i <= NF; i++) if ($i == "s,") s = $(i - 1); print $1 / s / 1e6}')
rm -f "$W/push/dd"

declare -A PEAK_RSS
for t in "${TARGETS[@]}"; do PEAK_RSS[$t]=$(mem_kb "$t" VmHWM); done

# ---------------------------------------------------------------- report
# best PHASE TARGET KEY max|min: the recorded line with the best KEY.
best() { # PHASE TARGET KEY max|min|median: the run with that value of KEY
	awk -v p="$1" -v t="$2" -v k="$3" -v how="$4" '
	{ delete kv; for (i = 1; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
	  if (kv["phase"] != p || kv["target"] != t || kv["errors"] != 0 || !(k in kv)) next
	  v = kv[k] + 0
	  n++; vals[n] = v; lines[n] = $0
	  if (!found || (how == "max" && v > bv) || (how == "min" && v < bv)) { bv = v; line = $0; found = 1 } }
	END {
	  if (!found) exit
	  if (how == "median") {
	    for (i = 2; i <= n; i++) for (j = i; j > 1 && vals[j - 1] > vals[j]; j--) {
	      tv = vals[j]; vals[j] = vals[j - 1]; vals[j - 1] = tv
	      tl = lines[j]; lines[j] = lines[j - 1]; lines[j - 1] = tl }
	    line = lines[int((n + 1) / 2)]
	  }
	  print line }' "$RES"
}

# metric PHASE KEY max|min TARGET: a derived value from the best run.
declare -A VAL
derive() {
	local phase=$1 key=$2 how=$3 t line v req bytes cpu
	for t in berth distribution nginx; do
		line=$(best "$phase" "$t" "$key" "$how")
		[ -n "$line" ] || continue
		cpu=$(kv "$line" cpu_s)
		req=$(kv "$line" requests)
		bytes=$(kv "$line" bytes)
		VAL[$phase.$t.$key]=$(kv "$line" "$key")
		VAL[$phase.$t.p99_ms]=$(awk -v x="$(kv "$line" p99_us)" 'BEGIN{if (x != "") printf "%.2f", x / 1000}')
		VAL[$phase.$t.cpu_us_req]=$(awk -v c="$cpu" -v n="$req" 'BEGIN{if (n > 0) printf "%.1f", c * 1e6 / n}')
		VAL[$phase.$t.cpu_s_gb]=$(awk -v c="$cpu" -v n="$bytes" 'BEGIN{if (n > 0) printf "%.3f", c / (n / 1e9)}')
	done
}
for p in man_get man_head blob_head; do derive "$p" rps max; done
derive storm mean_ms min
derive storm_small mean_ms min
for p in storm storm_small; do
	for t in berth distribution nginx; do
		line=$(best "$p" "$t" mean_ms min)
		[ -n "$line" ] && VAL[$p.$t.min_ms]=$(kv "$line" min_ms)
	done
done
for p in pull1 pull8; do derive "$p" mbps max; done
# A push lasts about a second and the disk's flushes swing single runs by
# ±40%: the median of PUSH_ROUNDS alternating runs, not the luckiest one.
for p in push_mono push_stream; do derive "$p" mbps median; done
for t in berth berth_auth; do
	line=$(best auth_head "$t" rps max)
	[ -n "$line" ] && VAL[auth_head.$t.rps]=$(kv "$line" rps) &&
		VAL[auth_head.$t.cpu_us_req]=$(awk -v c="$(kv "$line" cpu_s)" -v n="$(kv "$line" requests)" 'BEGIN{if (n > 0) printf "%.1f", c * 1e6 / n}')
done
line=$(best auth_login berth_auth rps max)
[ -n "$line" ] && VAL[auth_login.rps]=$(kv "$line" rps) &&
	VAL[auth_login.cpu_us_req]=$(awk -v c="$(kv "$line" cpu_s)" -v n="$(kv "$line" requests)" 'BEGIN{if (n > 0) printf "%.1f", c * 1e6 / n}')
for t in "${TARGETS[@]}"; do
	VAL[rss.$t.idle]=$(awk -v k="${IDLE_RSS[$t]}" 'BEGIN{printf "%.1f", k / 1024}')
	VAL[rss.$t.peak]=$(awk -v k="${PEAK_RSS[$t]}" 'BEGIN{printf "%.1f", k / 1024}')
done

row() { # LABEL PHASE KEY DECIMALS
	local b=${VAL[$2.berth.$3]:-} d=${VAL[$2.distribution.$3]:-} n=${VAL[$2.nginx.$3]:-}
	echo "| $1 | $(fmt "$b" "$4") | $(fmt "$d" "$4") | $(fmt "$n" "$4") | $(ratio "$b" "$d") | $(ratio "$b" "$n") |"
}

report() {
	echo "# berth benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r). Load: $CONNS keep-alive"
	echo "connections, ${SECS}s per run; best of $ROUNDS alternating runs per target"
	echo "(pushes: median of $PUSH_ROUNDS alternating runs)."
	echo "Storm: $STORM_CLIENTS clients x $STORM_ROUNDS rounds, each HEAD tag, GET manifest by"
	echo "digest, config and ${#LAYER_PATHS[@]} layers ($LAYERS_MB MiB; the small image: $SMALL_KB KiB)."
	echo "Big blob: $BIG_MB MiB. MB = 10^6 bytes."
	echo "Disk: a $BIG_MB MiB write + fsync runs at $(fmt "$DISK_MBPS" 0) MB/s (the ceiling of a durable push)."
	echo
	for t in berth distribution nginx; do
		[ -n "${NOTE[$t]:-}" ] && echo "- $t: ${NOTE[$t]}"
	done
	local bad
	bad=$(grep -cv ' errors=0' "$RES" || true)
	[ "$bad" -gt 0 ] && echo "- warning: $bad run(s) had errors and are not used; see Raw runs"
	echo
	echo "| test | berth | distribution | nginx | berth/distribution | berth/nginx |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	row "manifest GET by tag, req/s" man_get rps 0
	row "manifest GET by tag, p99 ms" man_get p99_ms 2
	row "manifest GET, server CPU us/req" man_get cpu_us_req 1
	row "manifest HEAD by tag, req/s" man_head rps 0
	row "manifest HEAD by tag, p99 ms" man_head p99_ms 2
	row "manifest HEAD, server CPU us/req" man_head cpu_us_req 1
	row "blob HEAD, req/s" blob_head rps 0
	row "blob HEAD, p99 ms" blob_head p99_ms 2
	row "blob HEAD, server CPU us/req" blob_head cpu_us_req 1
	row "pull storm, small image, mean wall ms" storm_small mean_ms 0
	row "pull storm, small image, min wall ms" storm_small min_ms 0
	row "pull storm, large image, mean wall ms" storm mean_ms 0
	row "pull storm, large image, min wall ms" storm min_ms 0
	row "pull storm, large image, server CPU s/GB" storm cpu_s_gb 3
	row "blob pull 1 stream, MB/s" pull1 mbps 0
	row "blob pull 1 stream, server CPU s/GB" pull1 cpu_s_gb 3
	row "blob pull 8 streams, MB/s" pull8 mbps 0
	row "blob pull 8 streams, server CPU s/GB" pull8 cpu_s_gb 3
	row "monolithic push, MB/s" push_mono mbps 0
	row "monolithic push, server CPU s/GB" push_mono cpu_s_gb 3
	row "streamed (chunked PATCH) push, MB/s" push_stream mbps 0
	row "streamed push, server CPU s/GB" push_stream cpu_s_gb 3
	row "RSS idle, MiB" rss idle 1
	row "RSS peak (VmHWM), MiB" rss peak 1
	echo
	echo "## Token auth (berth alone, same data, alternating runs)"
	echo
	echo "| test | without auth | with a bearer token | ratio |"
	echo "| --- | ---: | ---: | ---: |"
	echo "| manifest HEAD by tag, req/s | $(fmt "${VAL[auth_head.berth.rps]:-}" 0) | $(fmt "${VAL[auth_head.berth_auth.rps]:-}" 0) | $(ratio "${VAL[auth_head.berth_auth.rps]:-}" "${VAL[auth_head.berth.rps]:-}") |"
	echo "| manifest HEAD, server CPU us/req | $(fmt "${VAL[auth_head.berth.cpu_us_req]:-}" 1) | $(fmt "${VAL[auth_head.berth_auth.cpu_us_req]:-}" 1) | $(ratio "${VAL[auth_head.berth_auth.cpu_us_req]:-}" "${VAL[auth_head.berth.cpu_us_req]:-}") |"
	echo "| token endpoint sign-ins/s, same credentials (16 connections) | — | $(fmt "${VAL[auth_login.rps]:-}" 0) | — |"
	echo "| token endpoint, server CPU us/sign-in | — | $(fmt "${VAL[auth_login.cpu_us_req]:-}" 1) | — |"
	[ -n "${NOTE[berth_auth]:-}" ] && echo "- ${NOTE[berth_auth]}"
	echo
	echo "## Targets"
	echo
	checks
	echo
	echo "## Raw runs"
	echo
	echo '```'
	cat "$RES"
	echo '```'
}


checks() {
	local p label
	for p in man_get man_head blob_head; do
		case $p in man_get) label="manifest GET" ;; man_head) label="manifest HEAD" ;; *) label="blob HEAD" ;; esac
		check "$label req/s berth/distribution" "$(ratio "${VAL[$p.berth.rps]:-}" "${VAL[$p.distribution.rps]:-}")" ">=" 10
		check "$label req/s berth/nginx" "$(ratio "${VAL[$p.berth.rps]:-}" "${VAL[$p.nginx.rps]:-}")" ">=" 0.5
	done
	check "pull storm speed-up, small image (distribution time / berth time)" \
		"$(ratio "${VAL[storm_small.distribution.mean_ms]:-}" "${VAL[storm_small.berth.mean_ms]:-}")" ">=" 10
	echo "  (ceiling on this machine: distribution time / nginx time = $(ratio "${VAL[storm_small.distribution.mean_ms]:-}" "${VAL[storm_small.nginx.mean_ms]:-}"))"
	check "pull storm speed-up, large image (distribution time / berth time)" \
		"$(ratio "${VAL[storm.distribution.mean_ms]:-}" "${VAL[storm.berth.mean_ms]:-}")" ">=" 10
	echo "  (ceiling on this machine: distribution time / nginx time = $(ratio "${VAL[storm.distribution.mean_ms]:-}" "${VAL[storm.nginx.mean_ms]:-}"); loopback bandwidth bound)"
	check "monolithic push MB/s berth/distribution" \
		"$(ratio "${VAL[push_mono.berth.mbps]:-}" "${VAL[push_mono.distribution.mbps]:-}")" ">=" 2
	check "streamed push MB/s berth/distribution" \
		"$(ratio "${VAL[push_stream.berth.mbps]:-}" "${VAL[push_stream.distribution.mbps]:-}")" ">=" 2
	echo "  (ceiling on this machine: fsync'd disk write $(fmt "$DISK_MBPS" 0) MB/s / distribution push $(fmt "${VAL[push_mono.distribution.mbps]:-}" 0) MB/s = $(ratio "$DISK_MBPS" "${VAL[push_mono.distribution.mbps]:-}"))"
	for p in pull1 pull8; do
		check "$p MB/s berth/distribution" \
			"$(ratio "${VAL[$p.berth.mbps]:-}" "${VAL[$p.distribution.mbps]:-}")" ">=" 1
		check "$p CPU/GB berth/distribution" \
			"$(ratio "${VAL[$p.berth.cpu_s_gb]:-}" "${VAL[$p.distribution.cpu_s_gb]:-}")" "<" 1
	done
	check "manifest HEAD req/s with a bearer token / without auth" \
		"$(ratio "${VAL[auth_head.berth_auth.rps]:-}" "${VAL[auth_head.berth.rps]:-}")" ">=" 0.8
	check "peak RSS berth/distribution" \
		"$(ratio "${VAL[rss.berth.peak]:-}" "${VAL[rss.distribution.peak]:-}")" "<=" 0.25
}

mkdir -p "$(dirname "$OUT")"
report | tee "$OUT"
# The gc and retention parts run after the others, with their servers stopped.
if [ "$PART" = all ]; then
	for t in "${!MAINPID[@]}"; do kill -TERM "${MAINPID[$t]}" 2>/dev/null || true; done
	for t in "${!MAINPID[@]}"; do wait "${MAINPID[$t]}" 2>/dev/null || true; unset "MAINPID[$t]"; done
	# shellcheck source=tests/bench/gc.sh
	. "$(dirname "$0")/gc.sh"
	gc_main >"$W/gc-report.md"
	tee -a "$OUT" <"$W/gc-report.md"
	# shellcheck source=tests/bench/retention.sh
	. "$(dirname "$0")/retention.sh"
	ret_main >"$W/ret-report.md"
	tee -a "$OUT" <"$W/ret-report.md"
	# shellcheck source=tests/bench/tls.sh
	. "$(dirname "$0")/tls.sh"
	tls_main >"$W/tls-report.md"
	tee -a "$OUT" <"$W/tls-report.md"
	# shellcheck source=tests/bench/backup.sh
	. "$(dirname "$0")/backup.sh"
	bk_main >"$W/bk-report.md"
	tee -a "$OUT" <"$W/bk-report.md"
fi
log "results written to $OUT"
