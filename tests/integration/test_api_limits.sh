#!/usr/bin/env bash
# Bodies with a hard limit (manifest PUT 4 MiB, POST /v2/_berth/gc 16 MiB,
# the token endpoint's form 16 KiB): a request whose Content-Length is over
# the limit is refused from its headers, before any byte of the body, with
# no `100 Continue`, and its connection is closed; a chunked body is cut at
# the limit; at or under the limit nothing changes.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh
. tests/integration/auth_lib.sh

MIB=$((1024 * 1024))
MANIFEST_MAX=$((4 * MIB))
start_registry || { fail "api_limits: registry did not start"; exit 1; }

head -c $((5 * MIB)) /dev/zero | tr '\0' 'a' >"$T/5m"

# probe METHOD PATH LENGTH EXPECT(0|1) [HEADER]: sends only the request's
# headers (Content-Length LENGTH) on a raw socket, never the body, and
# prints "STATUS MS_TO_ANSWER CLOSED MS_TO_CLOSE SAW_100": the first status
# line received within 3 s (000: none), whether the server closed the
# connection within 3 s (1/0), and whether a 100 Continue came.
probe() {
	python3 - "$PORT" "$@" <<-'EOF'
		import socket, sys, time
		port, method, path, length, expect = sys.argv[1:6]
		extra = sys.argv[6] if len(sys.argv) > 6 else ""
		s = socket.create_connection(("127.0.0.1", int(port)))
		h = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
		if expect == "1":
		    h += "Expect: 100-continue\r\n"
		if extra:
		    h += extra + "\r\n"
		s.sendall((h + "\r\n").encode())
		t0 = time.monotonic()
		data, answered, closed = b"", None, None
		s.settimeout(0.1)
		while time.monotonic() - t0 < 3:
		    try:
		        d = s.recv(65536)
		    except socket.timeout:
		        continue
		    except ConnectionResetError:
		        d = b""
		    if not d:
		        closed = time.monotonic() - t0
		        break
		    data += d
		    if answered is None and b"\r\n" in data:
		        answered = time.monotonic() - t0
		lines = [l for l in data.split(b"\r\n") if l.startswith(b"HTTP/1.1 ")]
		final = [l for l in lines if not l.startswith(b"HTTP/1.1 100")]
		status = final[0].split()[1].decode() if final else "000"
		ms = lambda t: -1 if t is None else int(t * 1000)
		print(status, ms(answered), 1 if closed is not None else 0, ms(closed),
		      1 if len(final) != len(lines) else 0)
	EOF
}

# expect_probe NAME WANT_STATUS RESULT: the answer within 1 s, no 100, the
# connection closed within 1 s.
expect_probe() {
	local st ms cl cms c100
	read -r st ms cl cms c100 <<<"$3"
	if [ "$st" = "$2" ] && [ "$c100" = 0 ] && [ "$ms" -ge 0 ] && [ "$ms" -lt 1000 ] &&
		[ "$cl" = 1 ] && [ "$cms" -lt 1000 ]; then
		ok "$1"
	else
		fail "$1: want $2 within 1 s, no 100 Continue, closed within 1 s; got status $st after $ms ms, closed $cl after $cms ms, 100 Continue $c100"
	fi
}

# ---- manifest PUT over the limit, with curl
# curl_put NAME ARGS...: PUT of $T/5m to /v2/lim/manifests/big; ST, $T/h,
# $T/b as req() leaves them, UPLOADED and SECS from curl.
curl_put() {
	local out
	: >"$T/h"
	out=$(curl -sS --max-time 30 -D "$T/h" -o "$T/b" -X PUT \
		-H "Content-Type: $OCI_MANIFEST" "$@" --data-binary "@$T/5m" \
		-w '%{http_code} %{size_upload} %{time_total}' "$URL/v2/lim/manifests/big" 2>"$T/curl.err")
	read -r ST UPLOADED SECS <<<"$out"
	LASTREQ="PUT /v2/lim/manifests/big (5 MiB $*) -> $ST"
	NREQ=$((NREQ + 1))
}
fast() { awk -v s="$1" 'BEGIN { exit !(s < 1.0) }'; }

curl_put -H 'Expect: 100-continue'
expect_error "5 MiB manifest with Expect: 413 MANIFEST_INVALID" 413 MANIFEST_INVALID
expect_hdr "5 MiB manifest with Expect: Connection: close" Connection close
expect_eq "5 MiB manifest with Expect: curl sent no byte of the body" 0 "$UPLOADED"
check "5 MiB manifest with Expect: answered within 1 s ($SECS s)" fast "$SECS"
expect_jq "the 413 says the limit" '.errors[0].detail' '"manifest over 4194304 bytes"'
curl_put -H 'Expect:'
expect_error "5 MiB manifest without Expect: 413 MANIFEST_INVALID" 413 MANIFEST_INVALID
check "5 MiB manifest without Expect: answered within 1 s ($SECS s)" fast "$SECS"

# ---- the same on a raw socket: headers only, the body never sent
r=$(probe PUT /v2/lim/manifests/big $((5 * MIB)) 1 "Content-Type: $OCI_MANIFEST")
expect_probe "raw: Expect + 5 MiB manifest: 413 at once, no 100, closed" 413 "$r"
r=$(probe PUT /v2/lim/manifests/big $((5 * MIB)) 0 "Content-Type: $OCI_MANIFEST")
expect_probe "raw: no Expect, 5 MiB announced, no body sent: 413 at once, closed" 413 "$r"
r=$(probe PUT "/v2/lim/manifests/sha256:$(printf '%064d' 0)" $((MANIFEST_MAX + 1)) 1)
expect_probe "raw: one byte over the limit, by digest: 413" 413 "$r"
r=$(probe PUT /v2/lim/manifests/big 99999999999999999999999 1)
expect_probe "raw: a Content-Length past 2^64: 413 (MHD's own answer)" 413 "$r"

# At the limit: the 100 Continue comes and the body is read (what it
# holds is then judged: not a manifest, 400).
r=$(probe PUT /v2/lim/manifests/big "$MANIFEST_MAX" 1)
read -r st _ cl _ c100 <<<"$r"
expect_eq "raw: exactly 4 MiB announced: 100 Continue, connection kept waiting for the body" "000 0 1" "$st $cl $c100"
head -c "$MANIFEST_MAX" /dev/zero | tr '\0' ' ' >"$T/4m"
req PUT /v2/lim/manifests/big -H "Content-Type: $OCI_MANIFEST" -H 'Expect: 100-continue' --data-binary "@$T/4m"
expect_error "a 4 MiB body (at the limit) is read and judged: 400 MANIFEST_INVALID" 400 MANIFEST_INVALID

# Chunked, no Content-Length: cut at the limit, 413 after the body.
req PUT /v2/lim/manifests/big -H "Content-Type: $OCI_MANIFEST" -H 'Transfer-Encoding: chunked' --data-binary "@$T/5m"
expect_error "chunked 5 MiB manifest: 413 MANIFEST_INVALID" 413 MANIFEST_INVALID
expect_jq "chunked: the 413 says the limit" '.errors[0].detail' '"manifest over 4194304 bytes"'

# A manifest under the limit with Expect still goes in, on a kept-alive
# connection.
mk_image lim small
out=$(curl -sS -o /dev/null -H "Content-Type: $OCI_MANIFEST" -H 'Expect: 100-continue' -X PUT \
	--data-binary "@$T/small.json" -w '%{http_code} %{num_connects}\n' "$URL/v2/lim/manifests/small" \
	--next -sS -o /dev/null -w '%{http_code} %{num_connects}\n' "$URL/v2/")
expect_eq "small manifest with Expect: 201, then a GET on the same connection" "201 1
200 0" "$out"

# ---- the collector endpoint (16 MiB of pins at most)
r=$(probe POST /v2/_berth/gc $((16 * MIB + 1)) 1 "Content-Type: application/json")
expect_probe "raw: gc body over 16 MiB announced: 400 at once, closed" 400 "$r"
req POST /v2/_berth/gc -H 'Expect: 100-continue' --data-binary "@$T/5m"
expect_error "gc body of 5 MiB (under the limit) is read and judged: 400" 400 UNSUPPORTED
check "and the 400 is about the JSON, not the size" test "$(jq -r '.errors[0].detail' "$T/b")" != "body over 16777216 bytes"

finish

# ---- the token endpoint's form (16 KiB), with --auth
if auth_setup && start_berth --auth "$AUTH_FILE"; then
	r=$(probe POST /auth/token 20000 1 "Content-Type: application/x-www-form-urlencoded")
	expect_probe "raw: token form over 16 KiB announced: 400 at once, closed" 400 "$r"
	out=$(curl -sS -H 'Expect: 100-continue' --data-binary "@$T/5m" -w '\n%{http_code} %{size_upload}' "$URL/auth/token")
	expect_eq "token form of 5 MiB: 400 invalid_request, no byte sent" "invalid_request 400 0" \
		"$(jq -r .error <<<"$(head -1 <<<"$out")") $(tail -1 <<<"$out")"
	out=$(curl -sS --data "grant_type=password&username=ci&password=ci-secret&service=$AUTH_SERVICE" "$URL/auth/token" | jq -r '.access_token | length > 0')
	expect_eq "a small form still gets a token" true "$out"
	stop_berth
else
	fail "api_limits: berth with --auth did not start"
fi
