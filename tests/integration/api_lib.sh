# Shared curl helpers for the HTTP API tests (tests/integration/test_api_*.sh).
# Source it instead of lib.sh. By default the tests run against berth; with
# REGISTRY_UNDER_TEST=distribution they run against CNCF distribution
# (/usr/bin/docker-registry) so the shared behaviour can be cross-checked;
# berth-specific checks then print "skip ..." lines.
#
# Every request goes through req(), which leaves the status in ST, the
# response headers in $T/h and the body in $T/b, and remembers a one-line
# description of the exchange for failure messages.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ST=
LASTREQ=
FINISH_ARGS=() # extra curl arguments for finish's GET /v2/ (a token)
NREQ=0
: >"$T/apiver_missing"
: >"$T/server_errors"
: >"$T/bad_error_bodies"

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json
OCI_CONFIG=application/vnd.oci.image.config.v1+json
OCI_LAYER=application/vnd.oci.image.layer.v1.tar+gzip
OCI_EMPTY=application/vnd.oci.empty.v1+json
D2_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
D2_LIST=application/vnd.docker.distribution.manifest.list.v2+json
D2_CONFIG=application/vnd.docker.container.image.v1+json
D2_LAYER=application/vnd.docker.image.rootfs.diff.tar.gzip
# sha256 of the two bytes "{}" (the OCI empty descriptor).
EMPTY_DIGEST=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a

is_berth() { [ "$REGISTRY_UNDER_TEST" = berth ]; }

# berth_only NAME: true under berth; otherwise prints a skip line.
berth_only() {
	is_berth && return 0
	echo "skip $1 (berth-specific, registry is $REGISTRY_UNDER_TEST)"
	return 1
}



# Accept header sent on every manifest GET/HEAD (distribution refuses to
# serve OCI types to a client that does not ask for them).
ACCEPT_ALL="Accept: $OCI_MANIFEST, $OCI_INDEX, $D2_MANIFEST, $D2_LIST, */*"

# req METHOD PATH [curl args...]: one request, paths are sent as is.
# HEAD is sent with -I so curl does not wait for a body; see raw_head for
# checking that no body is sent.
req() {
	local m=$1 p=$2
	shift 2
	local a=(-sS --path-as-is -g --max-time 30 -D "$T/h")
	case "$m $p" in GET\ */manifests/* | HEAD\ */manifests/*) a+=(-H "$ACCEPT_ALL") ;; esac
	if [ "$m" = HEAD ]; then
		a+=(-I -o /dev/null)
		: >"$T/b"
	else
		a+=(-X "$m" -o "$T/b")
	fi
	: >"$T/h"
	ST=$(curl "${a[@]}" -w '%{http_code}' "$@" "$URL$p" 2>"$T/curl.err")
	[ -n "$ST" ] || ST=000
	LASTREQ="$m $p -> $ST"
	NREQ=$((NREQ + 1))
	if [ "$ST" != 000 ] && [ "$(hdr Docker-Distribution-API-Version)" != registry/2.0 ]; then
		echo "$LASTREQ" >>"$T/apiver_missing"
	fi
	case $ST in
	5?? | 000) echo "$(ctx)" >>"$T/server_errors" ;;
	4??)
		# every error (except on HEAD) is OCI error JSON
		if [ "$m" != HEAD ] && { [ "$(ctype)" != application/json ] ||
			! jq -e '.errors[0].code | type == "string"' "$T/b" >/dev/null 2>&1; }; then
			echo "$(ctx) Content-Type '$(hdr Content-Type)'" >>"$T/bad_error_bodies"
		fi
		;;
	esac
}

# hdr NAME: value of the last response header NAME (case-insensitive); pure
# bash, as it runs several times per request.
hdr() {
	local want=${1,,} line k out=
	while IFS= read -r line; do
		line=${line%$'\r'}
		k=${line%%:*}
		[ "$k" != "$line" ] && [ "${k,,}" = "$want" ] && out=${line#*:}
	done <"$T/h"
	out=${out#"${out%%[![:space:]]*}"}
	printf '%s' "${out%"${out##*[![:space:]]}"}"
}
has_hdr() { grep -qi "^$1:" "$T/h"; }
# media type of the response without parameters
ctype() {
	local c
	c=$(hdr Content-Type)
	c=${c%%;*}
	printf '%s' "${c%"${c##*[![:space:]]}"}"
}
errcode() { jq -r '.errors[0].code // empty' "$T/b" 2>/dev/null; }
body() { cat "$T/b"; }
# short description of the last exchange, for failure messages
ctx() {
	local b
	b=$(head -c 300 "$T/b" | tr -d '\r' | tr '\n' ' ')
	echo "[$LASTREQ; body: $b]"
}
# loc_path: the Location header with any scheme://host removed
loc_path() { hdr Location | sed -E 's#^https?://[^/]*##'; }
# with_query URL PARAMS: appends ?PARAMS or &PARAMS
with_query() { case $1 in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac; }

expect_status() {
	if [ "$ST" = "$2" ]; then ok "$1"; else fail "$1: want status $2 got $ST $(ctx)"; fi
}
# expect_hdr NAME HEADER WANT
expect_hdr() {
	local got
	got=$(hdr "$2")
	if [ "$got" = "$3" ]; then ok "$1"; else fail "$1: want $2: '$3' got '$got' $(ctx)"; fi
}
# expect_hdr_re NAME HEADER ERE
expect_hdr_re() {
	local got
	got=$(hdr "$2")
	if [[ $got =~ $3 ]]; then ok "$1"; else fail "$1: want $2 matching /$3/ got '$got' $(ctx)"; fi
}
expect_body() {
	if [ "$(body)" = "$2" ]; then ok "$1"; else fail "$1: body differs $(ctx)"; fi
}
# expect_body_file NAME FILE: the body has exactly the bytes of FILE
expect_body_file() {
	if cmp -s "$T/b" "$2"; then ok "$1"; else fail "$1: body differs from $(basename "$2") ($(wc -c <"$T/b") bytes) $(ctx)"; fi
}
# expect_jq NAME FILTER WANT: jq -c FILTER on the body equals WANT
expect_jq() {
	local got
	got=$(jq -c "$2" "$T/b" 2>/dev/null)
	if [ "$got" = "$3" ]; then ok "$1"; else fail "$1: want $2 == $3 got '$got' $(ctx)"; fi
}

# expect_error NAME STATUS CODES: status, an OCI error JSON body with
# Content-Type application/json and a first code among CODES ("A|B").
expect_error() {
	local n=$1 want=$2 codes=$3 why= c
	c=$(errcode)
	if [ "$ST" != "$want" ]; then
		why="want status $want got $ST"
	elif [ "$(ctype)" != application/json ]; then
		why="want Content-Type application/json got '$(hdr Content-Type)'"
	elif ! jq -e '(.errors | type == "array" and length > 0) and all(.errors[]; (.code | type == "string") and has("message"))' "$T/b" >/dev/null 2>&1; then
		why="body is not an OCI error list"
	elif is_berth && ! jq -e 'all(.errors[]; has("detail"))' "$T/b" >/dev/null 2>&1; then
		why="error without detail field"
	elif ! [[ "|$codes|" == *"|$c|"* ]]; then
		why="want code $codes got '$c'"
	fi
	if [ -z "$why" ]; then ok "$n"; else fail "$n: $why $(ctx)"; fi
}

# expect_refused NAME: neither success nor a server error (3xx/4xx).
expect_refused() {
	case $ST in 3?? | 4??) ok "$1 ($ST)" ;; *) fail "$1: want a refusal got $ST $(ctx)" ;; esac
}
# expect_4xx NAME: the server refused with a client error.
expect_4xx() {
	case $ST in 4??) ok "$1" ;; *) fail "$1: want a 4xx got $ST $(ctx)" ;; esac
}

# raw_head PATH: sends "HEAD PATH" on a raw socket and prints the number of
# bytes the server sent after the end of the headers (must be 0).
raw_head() {
	local out
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
		printf 'HEAD %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" "$REG" >&3
		timeout 5 cat <&3 | od -An -v -tx1 | tr -d ' \n'
	)
	# bytes after the first CRLFCRLF (hex 0d0a0d0a), counted in hex pairs
	local rest=${out#*0d0a0d0a}
	[ "$rest" = "$out" ] && { echo -1; return; }
	echo $((${#rest} / 2))
}

# mkblob NAME CONTENT: writes $T/NAME with CONTENT (printf %s), no newline.
mkblob() { printf '%s' "$2" >"$T/$1"; }
# digest/size of a file
dg() { sha256 "$1"; }
sz() { wc -c <"$1" | tr -d ' '; }

# push_blob REPO FILE: POST then PUT; 0 when the registry answered 201.
push_blob() {
	local d
	d=$(dg "$2")
	req POST "/v2/$1/blobs/uploads/"
	[ "$ST" = 202 ] || { echo "push_blob: POST $(ctx)" >&2; return 1; }
	req PUT "$(with_query "$(loc_path)" "digest=$d")" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$2"
	[ "$ST" = 201 ] || { echo "push_blob: PUT $(ctx)" >&2; return 1; }
}

# push_manifest REPO REF FILE MEDIATYPE: 0 when the registry answered 201.
push_manifest() {
	req PUT "/v2/$1/manifests/$2" -H "Content-Type: $4" --data-binary "@$3"
	[ "$ST" = 201 ] || { echo "push_manifest $1:$2: $(ctx)" >&2; return 1; }
}

# mk_image REPO PREFIX: pushes a config and one layer blob into REPO and
# writes an OCI manifest $T/PREFIX.json referencing them (not pushed).
# Sets IMG_CFG, IMG_LAYER (digests).
mk_image() {
	local repo=$1 p=$2
	mkblob "$p.cfg" "{\"architecture\":\"amd64\",\"os\":\"linux\",\"x\":\"$p\"}"
	mkblob "$p.layer" "layer bytes of $p $RANDOM"
	push_blob "$repo" "$T/$p.cfg" || return 1
	push_blob "$repo" "$T/$p.layer" || return 1
	IMG_CFG=$(dg "$T/$p.cfg")
	IMG_LAYER=$(dg "$T/$p.layer")
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
		"$OCI_MANIFEST" "$OCI_CONFIG" "$IMG_CFG" "$(sz "$T/$p.cfg")" \
		"$OCI_LAYER" "$IMG_LAYER" "$(sz "$T/$p.layer")" >"$T/$p.json"
}

# finish: the registry still runs and answers GET /v2/ after the script,
# no request got a 5xx or no answer, every response carried
# Docker-Distribution-API-Version: registry/2.0, and (berth) every 4xx had an
# OCI error JSON body.
finish() {
	if kill -0 "$BERTH_PID" 2>/dev/null; then ok "registry process still running at the end"; else fail "registry process died"; fi
	req GET /v2/ "${FINISH_ARGS[@]}"
	expect_status "server still answers GET /v2/ at the end" 200
	if [ -s "$T/server_errors" ]; then
		fail "no 5xx or dropped responses: $(wc -l <"$T/server_errors") of $NREQ, e.g. $(head -3 "$T/server_errors" | tr '\n' ';')"
	else
		ok "no 5xx or dropped responses in $NREQ requests"
	fi
	if berth_only "OCI error JSON on every 4xx"; then
		if [ -s "$T/bad_error_bodies" ]; then
			fail "every 4xx has an OCI error JSON body: $(wc -l <"$T/bad_error_bodies") without, e.g. $(head -3 "$T/bad_error_bodies" | tr '\n' ';')"
		else
			ok "every 4xx has an OCI error JSON body"
		fi
	fi
	# stop the server and look for sanitizer reports (ASan/UBSan builds)
	stop_berth
	if grep -q 'Sanitizer\|runtime error:' "$T/berth.log" 2>/dev/null; then
		fail "no sanitizer report in the server log: $(grep -m3 'Sanitizer\|runtime error:\|#[0-3] ' "$T/berth.log" | tr '\n' ';')"
		grep -A30 -m1 'Sanitizer\|runtime error:' "$T/berth.log" >&2
	else
		ok "no sanitizer report in the server log"
	fi
	if [ -s "$T/apiver_missing" ]; then
		fail "Docker-Distribution-API-Version on every response: missing on $(wc -l <"$T/apiver_missing") of $NREQ, e.g. $(head -3 "$T/apiver_missing" | tr '\n' ';')"
	else
		ok "Docker-Distribution-API-Version on all $NREQ responses"
	fi
}

# report NAME: a python probe's output lines into the results: "ok NAME",
# "FAIL NAME: why", "fig NAME VALUE" (printed as a figure), and "end" as
# its last line; a probe that did not reach its end (a crash, a timeout)
# fails.
report() {
	local kind rest ended=0
	while read -r kind rest; do
		case $kind in
		ok) ok "$rest" ;;
		FAIL) fail "$rest" ;;
		fig) echo "figure $rest" ;;
		end) ended=1 ;;
		*) echo "$kind $rest" ;;
		esac
	done
	[ $ended = 1 ] || fail "$(basename "$0" .sh): the $1 probe did not finish"
}
