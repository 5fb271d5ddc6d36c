#!/usr/bin/env bash
# HTTPS served by berth itself (--tls-cert/--tls-key, config, environment):
# pushes and pulls with curl over TLS, the token flow with an https realm,
# protocol versions and ciphers, the full chain, ECDSA and RSA pairs,
# rotation through a Kubernetes Secret's `..data` symlink swap and SIGHUP
# with a kept-alive connection going on, a broken pair at reload (the old
# one stays), and the start errors (exit 2, one line).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh
. tests/integration/auth_lib.sh
. tests/integration/tls_lib.sh

C=$T/certs
if ! tls_make_ca "$C" || ! tls_make_leaf "$C" ec ec || ! tls_make_leaf "$C" rsa rsa ||
	! tls_make_leaf "$C" ec2 ec; then
	fail "tls.setup: openssl could not make the test CA"
	exit 1
fi
TLS_CA=$C/ca.crt
export CURL_CA_BUNDLE=$TLS_CA # every curl of the helpers trusts the test CA
norm_fp() { tr -d ':' | tr 'A-F' 'a-f'; }
FP_EC=$(tls_cert_fp "$C/ec.leaf" | norm_fp)
FP_RSA=$(tls_cert_fp "$C/rsa.leaf" | norm_fp)
FP_EC2=$(tls_cert_fp "$C/ec2.leaf" | norm_fp)
served_fp() { tls_fp | norm_fp; }
metric() { # the value of one /metrics sample line (exact name and labels)
	curl -fsS --max-time 10 "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
RELOAD_OK='berth_reload_total{file="tls",result="ok"}'
RELOAD_FAILED='berth_reload_total{file="tls",result="failed"}'
# wait_metric KEY WANT: up to 10 s for the sample to reach WANT (a poll
# and a SIGHUP may both reload the same change: at least WANT).
wait_metric() {
	local v
	for _ in $(seq 1 100); do
		v=$(metric "$1")
		[ -n "$v" ] && [ "$v" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# ---- start errors: exit 2 and one line on stderr, naming the file
start_err() { # NAME WANT_RE ARGS...: berth serve must exit 2 at once
	local n=$1 re=$2
	shift 2
	mkdir -p "$T/errdata"
	timeout 10 "$BERTH_BIN" serve --listen 127.0.0.1:0 --data "$T/errdata" "$@" \
		>/dev/null 2>"$T/err"
	local rc=$? lines
	lines=$(grep -c '' "$T/err")
	if [ "$rc" = 2 ] && [ "$lines" = 1 ] && grep -Eq -- "$re" "$T/err"; then
		ok "$n"
	else
		fail "$n: want exit 2 and one line matching /$re/, got $rc, $lines lines: $(head -c 300 "$T/err")"
	fi
}
start_err tls.start_cert_without_key '--tls-cert needs --tls-key' --tls-cert "$C/ec.crt"
BERTH_TLS_KEY=$C/ec.key start_err tls.start_env_key_without_cert \
	'--tls-key needs --tls-cert'
start_err tls.start_missing_key "tls: $C/missing.key: No such file" \
	--tls-cert "$C/ec.crt" --tls-key "$C/missing.key"
printf 'not a certificate\n' >"$T/junk.pem"
start_err tls.start_cert_not_pem "tls: $T/junk.pem: no PEM certificate" \
	--tls-cert "$T/junk.pem" --tls-key "$C/ec.key"
start_err tls.start_key_not_pem "tls: $C/ec.crt: no PEM private key" \
	--tls-cert "$C/ec.crt" --tls-key "$C/ec.crt"
start_err tls.start_mismatched_pair \
	"tls: $C/rsa.key: the key does not match the certificate in $C/ec.crt" \
	--tls-cert "$C/ec.crt" --tls-key "$C/rsa.key"
cat "$C/int.crt" "$C/ec.leaf" >"$T/reversed.crt"
start_err tls.start_chain_out_of_order "tls: $T/reversed.crt: the chain is out of order" \
	--tls-cert "$T/reversed.crt" --tls-key "$C/ec.key"

# ---- ECDSA pair from the config file: push and pull over HTTPS
printf '{"tls_cert": "%s", "tls_key": "%s"}\n' "$C/ec.crt" "$C/ec.key" >"$T/config.json"
if ! tls_start_berth --config "$T/config.json" --header-timeout 2; then
	fail "tls.start_config: berth did not start with the config file's pair"
	exit 1
fi
ok tls.start_config
expect_eq tls.ecdsa_leaf_served "$FP_EC" "$(served_fp)"
check tls.scheme_logged grep -q '"scheme":"https"' "$T/berth.log"
req GET /v2/
expect_status tls.base_200 200
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://$REG/v2/" 2>/dev/null)
if [ "$code" != 200 ]; then ok "tls.plain_http_refused ($code)"; else fail "tls.plain_http_refused: plain HTTP answered 200"; fi
if curl -sS -o /dev/null --max-time 5 --cacert /etc/ssl/certs/ca-certificates.crt "$URL/v2/" 2>/dev/null; then
	fail "tls.untrusted_ca_refused: the client accepted a certificate it cannot verify"
else
	ok tls.untrusted_ca_refused
fi
head -c 3000000 /dev/urandom >"$T/big.bin"
if push_blob tls/app "$T/big.bin"; then ok tls.blob_push; else fail tls.blob_push; fi
req GET "/v2/tls/app/blobs/$(dg "$T/big.bin")"
expect_status tls.blob_get_200 200
expect_eq tls.blob_digest_equal "$(dg "$T/big.bin")" "$(sha256 "$T/b")"
req GET "/v2/tls/app/blobs/$(dg "$T/big.bin")" -H 'Range: bytes=1000-1999'
expect_status tls.blob_range_206 206
expect_eq tls.blob_range_bytes "$(tail -c +1001 "$T/big.bin" | head -c 1000 | sha256sum | cut -d' ' -f1)" \
	"$(sha256sum <"$T/b" | cut -d' ' -f1)"
if mk_image tls/app img && push_manifest tls/app v1 "$T/img.json" "$OCI_MANIFEST"; then
	ok tls.manifest_push
else
	fail tls.manifest_push
fi
req GET /v2/tls/app/manifests/v1
expect_status tls.manifest_get_200 200
expect_eq tls.manifest_digest_equal "$(dg "$T/img.json")" "$(hdr Docker-Content-Digest)"

# protocol versions: 1.1 refused (the client is allowed to offer it),
# 1.2 and 1.3 accepted
sc() { timeout 10 openssl s_client -connect "$REG" -servername localhost -CAfile "$TLS_CA" "$@" </dev/null 2>&1; }
out=$(sc -tls1_1 -cipher 'DEFAULT@SECLEVEL=0')
if ! openssl s_client -help 2>&1 | grep -q -- '-tls1_1'; then
	echo "skip tls.tls11_refused (this openssl cannot offer TLS 1.1)"
elif grep -q 'New, (NONE), Cipher is (NONE)' <<<"$out" && grep -q 'Protocol  *: TLSv1.1' <<<"$out"; then
	ok tls.tls11_refused
else
	fail "tls.tls11_refused: $(grep -E 'Protocol|Cipher' <<<"$out" | head -3 | tr '\n' ';')"
fi
for v in 1_2 1_3; do
	out=$(sc "-tls$v")
	want=TLSv${v/_/.}
	if grep -q "New, $want, Cipher is" <<<"$out" && grep -q 'Verify return code: 0 (ok)' <<<"$out"; then
		ok "tls.tls${v}_accepted"
	else
		fail "tls.tls${v}_accepted: $(grep -E 'New,|Verify return' <<<"$out" | tr '\n' ';')"
	fi
done
# TLS 1.2 suites: AEAD with ECDHE only; no CBC, no RSA key exchange
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
	if sc -tls1_2 -cipher "$c" | grep -q "New, TLSv1.2, Cipher is $c"; then ok "tls.suite_$c"; else fail "tls.suite_$c: refused"; fi
done
for c in ECDHE-ECDSA-AES128-SHA256 ECDHE-ECDSA-AES256-SHA ECDHE-ECDSA-AES128-SHA AES128-GCM-SHA256 AES256-SHA256; do
	if sc -tls1_2 -cipher "$c" | grep -q 'Cipher is (NONE)'; then ok "tls.no_suite_$c"; else fail "tls.no_suite_$c: accepted"; fi
done
check tls.handshake_failure_logged grep -q '"level":"info","msg":"tls handshake failed"' "$T/berth.log"
# a handshake that stalls is cut like a request head that stalls
# (--header-timeout 2): 5 bytes of a TLS record header, then nothing
stalled=$(python3 - "$PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
s.sendall(b"\x16\x03\x01\x02\x00")
t0 = time.time()
try:
    while s.recv(4096):
        pass
    print("closed %.1f" % (time.time() - t0))
except socket.timeout:
    print("open")
EOF
)
case $stalled in
"closed "[1-4].*) ok "tls.stalled_handshake_cut ($stalled s)" ;;
*) fail "tls.stalled_handshake_cut: $stalled" ;;
esac
# the full chain: leaf and intermediate, verified from the root alone
out=$(sc -showcerts)
expect_eq tls.chain_two_certs 2 "$(grep -c 'BEGIN CERTIFICATE' <<<"$out")"
check tls.chain_intermediate_sent grep -q 's:CN = berth-test-intermediate' <<<"$out"
finish
rm -rf "$T/data"

# ---- RSA pair from the environment, token auth with an https realm
if ! auth_setup; then
	fail "tls.auth_setup"
	exit 1
fi
AUTH_REALM=https://127.0.0.1:$PORT/auth/token
auth_write_users "$AUTH_FILE" key.pem
if ! BERTH_TLS_CERT=$C/rsa.crt BERTH_TLS_KEY=$C/rsa.key tls_start_berth --auth "$AUTH_FILE"; then
	fail "tls.start_env_rsa: berth did not start with the RSA pair from the environment"
	exit 1
fi
ok tls.start_env_rsa
expect_eq tls.rsa_leaf_served "$FP_RSA" "$(served_fp)"
if sc -tls1_2 | grep -q 'New, TLSv1.2, Cipher is ECDHE-RSA-AES256-GCM-SHA384'; then
	ok tls.rsa_ecdhe_rsa_suite
else
	fail "tls.rsa_ecdhe_rsa_suite: $(sc -tls1_2 | grep 'Cipher is')"
fi
# with an RSA key: no static RSA key exchange, no CBC
for c in AES128-GCM-SHA256 AES256-GCM-SHA384 ECDHE-RSA-AES128-SHA ECDHE-RSA-AES256-SHA384; do
	if sc -tls1_2 -cipher "$c" | grep -q 'Cipher is (NONE)'; then ok "tls.rsa_no_suite_$c"; else fail "tls.rsa_no_suite_$c: accepted"; fi
done
req GET /v2/
expect_status tls.auth_base_401 401
expect_hdr tls.auth_challenge_https_realm WWW-Authenticate \
	"Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\""
# the client follows the challenge's realm: a token over HTTPS
realm=$(hdr WWW-Authenticate | sed -E 's/^Bearer realm="([^"]*)".*/\1/')
tok=$(curl -sS --max-time 10 -u ci:ci-secret \
	"$realm?service=$AUTH_SERVICE&scope=repository:review/tls:pull,push" | jq -r '.token // empty')
if [ -n "$tok" ]; then ok tls.auth_token_get; else fail "tls.auth_token_get: no token from $realm"; fi
ptok=$(curl -sS --max-time 10 -d "grant_type=password&username=kubelet&password=kube-secret&service=$AUTH_SERVICE&scope=repository:review/tls:pull" \
	"$realm" | jq -r '.access_token // empty')
if [ -n "$ptok" ]; then ok tls.auth_token_post; else fail tls.auth_token_post; fi
CI_AUTH=(-H "Authorization: Bearer $tok")
head -c 200000 /dev/urandom >"$T/auth.bin"
d=$(dg "$T/auth.bin")
req POST /v2/review/tls/blobs/uploads/ "${CI_AUTH[@]}"
expect_status tls.auth_upload_start 202
req PUT "$(with_query "$(loc_path)" "digest=$d")" "${CI_AUTH[@]}" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/auth.bin"
expect_status tls.auth_upload_put 201
req GET "/v2/review/tls/blobs/$d" -H "Authorization: Bearer $ptok"
expect_status tls.auth_pull_200 200
expect_eq tls.auth_pull_digest "$d" "$(sha256 "$T/b")"
req POST /v2/review/tls/blobs/uploads/ -H "Authorization: Bearer $ptok"
expect_status tls.auth_pull_token_cannot_push 401
anon=$(auth_token "" repository:review/tls:pull)
req GET "/v2/review/tls/blobs/$d" -H "Authorization: Bearer $anon"
expect_status tls.auth_anonymous_refused 401
# berth's own client commands (ls here; gc, rm, backup share the client):
# the system store does not know the test CA; --ca-file or BERTH_CA_FILE
# does, for the server and for the https realm of the token dance
printf 'ci-secret\n' >"$T/ci.pw"
ls_args=(ls --server "https://127.0.0.1:$PORT" --user ci --password-file "$T/ci.pw" --repository 'review/**' --timeout 10)
out=$("$BERTH_BIN" "${ls_args[@]}" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -qi 'certificate' <<<"$out"; then ok tls.cli_untrusted_refused; else fail "tls.cli_untrusted_refused: exit $rc: $out"; fi
out=$("$BERTH_BIN" "${ls_args[@]}" --ca-file "$C/ca.crt" 2>&1)
expect_eq tls.cli_ca_file "0" "$?"
out=$(BERTH_CA_FILE=$C/ca.crt "$BERTH_BIN" "${ls_args[@]}" 2>&1)
expect_eq tls.cli_ca_file_env "0" "$?"
out=$("$BERTH_BIN" "${ls_args[@]}" --ca-file "$T/no-such-ca.crt" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q 'no-such-ca.crt' <<<"$out"; then ok tls.cli_ca_file_missing; else fail "tls.cli_ca_file_missing: exit $rc: $out"; fi
FINISH_ARGS=(-H "Authorization: Bearer $(auth_token admin:admin-secret)")
finish
FINISH_ARGS=()
unset BERTH_PORT
rm -rf "$T/data"

# ---- rotation: the pair is a Secret volume (tls.crt -> ..data/tls.crt,
# ..data -> ..<timestamp>), updated the way kubelet does it
S=$T/secret
mkdir -p "$S"
publish() { # CRT KEY: a new timestamped dir, ..data swapped onto it atomically
	local old ts
	old=$(readlink "$S/..data" 2>/dev/null)
	ts=..$(date +%Y_%m_%d_%H_%M_%S.%N)
	mkdir "$S/$ts" && cp "$1" "$S/$ts/tls.crt" && cp "$2" "$S/$ts/tls.key" || return 1
	ln -s "$ts" "$S/..data_tmp" && mv -T "$S/..data_tmp" "$S/..data" || return 1
	[ -L "$S/tls.crt" ] || ln -s ..data/tls.crt "$S/tls.crt"
	[ -L "$S/tls.key" ] || ln -s ..data/tls.key "$S/tls.key"
	[ -n "$old" ] && rm -rf "${S:?}/$old"
	return 0
}
publish "$C/ec.crt" "$C/ec.key"
if ! tls_start_berth --tls-cert "$S/tls.crt" --tls-key "$S/tls.key"; then
	fail "tls.start_secret_volume: berth did not start"
	exit 1
fi
expect_eq tls.secret_leaf_served "$FP_EC" "$(served_fp)"

# keep_alive NAME: a python client makes one request, waits for $T/NAME.go,
# then makes another on the same connection and prints what it saw.
cat >"$T/keep.py" <<'EOF'
import hashlib, http.client, os, ssl, sys, time
port, ca, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
def get():
    c.request("GET", "/v2/")
    r = c.getresponse()
    r.read()
    return r.status
s = get()
sock = c.sock
print("first", s, hashlib.sha256(sock.getpeercert(True)).hexdigest(), flush=True)
end = time.time() + 30
while not os.path.exists(go) and time.time() < end:
    time.sleep(0.05)
s = get()
print("second", s, hashlib.sha256(c.sock.getpeercert(True)).hexdigest(),
      "same" if c.sock is sock else "reconnected", flush=True)
EOF
keep_start() {
	rm -f "$T/$1.go" "$T/$1.out"
	python3 "$T/keep.py" "$PORT" "$TLS_CA" "$T/$1.go" >"$T/$1.out" 2>&1 &
	KEEP_PID=$!
	for _ in $(seq 1 100); do
		grep -q '^first' "$T/$1.out" && return 0
		sleep 0.1
	done
	return 1
}
keep_finish() { # NAME OLD_FP: the old connection still works, same cert
	touch "$T/$1.go"
	wait "$KEEP_PID"
	expect_eq "tls.$1_first_request" "first 200 $2" "$(grep '^first' "$T/$1.out")"
	expect_eq "tls.$1_old_connection_continues" "second 200 $2 same" \
		"$(grep '^second' "$T/$1.out" || head -c 300 "$T/$1.out")"
}

if keep_start swap; then ok tls.swap_keepalive_open; else fail "tls.swap_keepalive_open: $(cat "$T/swap.out")"; fi
publish "$C/rsa.crt" "$C/rsa.key"
if wait_metric "$RELOAD_OK" 1; then ok tls.swap_reloaded; else fail "tls.swap_reloaded: $(metric "$RELOAD_OK")"; fi
expect_eq tls.swap_new_handshake_new_cert "$FP_RSA" "$(served_fp)"
check tls.swap_logged grep -q '"msg":"tls certificate reloaded"' "$T/berth.log"
keep_finish swap "$FP_EC"
req GET /v2/
expect_status tls.swap_new_connection_works 200

# SIGHUP: reloads at once, also when nothing changed
before=$(metric "$RELOAD_OK")
kill -HUP "$BERTH_PID"
if wait_metric "$RELOAD_OK" $((before + 1)); then ok tls.sighup_forced_reload; else fail "tls.sighup_forced_reload: $(metric "$RELOAD_OK")"; fi
if keep_start hup; then ok tls.hup_keepalive_open; else fail "tls.hup_keepalive_open: $(cat "$T/hup.out")"; fi
before=$(metric "$RELOAD_OK")
publish "$C/ec2.crt" "$C/ec2.key"
kill -HUP "$BERTH_PID"
if wait_metric "$RELOAD_OK" $((before + 1)); then ok tls.sighup_reloaded; else fail "tls.sighup_reloaded"; fi
expect_eq tls.sighup_new_handshake_new_cert "$FP_EC2" "$(served_fp)"
keep_finish hup "$FP_RSA"

# a broken pair at reload: logged with file and reason, the old one stays
failed0=$(metric "$RELOAD_FAILED")
publish "$C/ec.crt" "$C/rsa.key"
if wait_metric "$RELOAD_FAILED" $((failed0 + 1)); then ok tls.mismatch_counted_failed; else fail "tls.mismatch_counted_failed: $(metric "$RELOAD_FAILED")"; fi
check tls.mismatch_logged grep -q "\"msg\":\"tls reload failed, the previous certificate stays\",\"error\":\"$S/tls.key: the key does not match the certificate in $S/tls.crt\"" "$T/berth.log"
expect_eq tls.mismatch_old_cert_stays "$FP_EC2" "$(served_fp)"
req GET /v2/
expect_status tls.mismatch_still_serving 200
# the same broken pair is not read again every poll, only SIGHUP forces it
sleep 2.2 # at least one poll (every 1 to 2 s) in between
expect_eq tls.mismatch_not_reread "$((failed0 + 1))" "$(metric "$RELOAD_FAILED")"
# a fixed pair is taken again (at once on SIGHUP)
publish "$C/ec.crt" "$C/ec.key"
kill -HUP "$BERTH_PID"
for _ in $(seq 1 100); do [ "$(served_fp)" = "$FP_EC" ] && break; sleep 0.1; done
expect_eq tls.fixed_pair_served "$FP_EC" "$(served_fp)"

# reload storm: 2 s of pair swaps and SIGHUPs while 4 clients open a new
# connection (a handshake) per request; no request may fail
ok0=$(metric "$RELOAD_OK")
(
	i=0 end=$((SECONDS + 2))
	while [ $SECONDS -lt $end ]; do
		if [ $((i % 2)) = 0 ]; then publish "$C/rsa.crt" "$C/rsa.key"; else publish "$C/ec.crt" "$C/ec.key"; fi
		kill -HUP "$BERTH_PID" 2>/dev/null
		i=$((i + 1))
		sleep 0.02
	done
	echo "$i" >"$T/storm.hups"
) &
pids=($!)
for k in 1 2 3 4; do
	(
		n=0 bad=0 end=$((SECONDS + 2))
		while [ $SECONDS -lt $end ]; do
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/v2/")
			n=$((n + 1))
			[ "$code" = 200 ] || bad=$((bad + 1))
		done
		echo "$n $bad" >"$T/storm.$k"
	) &
	pids+=($!)
done
wait "${pids[@]}"
reqs=$(cat "$T"/storm.[1-4] | awk '{n += $1; b += $2} END {print n + 0, b + 0}')
if [ "${reqs#* }" = 0 ] && [ "${reqs% *}" -gt 20 ]; then
	ok "tls.reload_storm_no_failed_request (${reqs% *} handshakes, $(cat "$T/storm.hups") swaps)"
else
	fail "tls.reload_storm_no_failed_request: requests/failed $reqs"
fi
if [ "$(metric "$RELOAD_OK")" -ge "$((ok0 + 2))" ]; then ok tls.reload_storm_reloaded; else fail "tls.reload_storm_reloaded: $ok0 -> $(metric "$RELOAD_OK")"; fi
case $(served_fp) in
"$FP_EC" | "$FP_RSA") ok tls.reload_storm_valid_cert ;;
*) fail "tls.reload_storm_valid_cert: $(served_fp)" ;;
esac
finish
# every connection gave its certificate back before the daemon stopped
if grep -q 'tls sessions never reported closed' "$T/berth.log"; then
	fail "tls.sessions_released: $(grep -m1 'tls sessions never' "$T/berth.log")"
else
	ok tls.sessions_released
fi
