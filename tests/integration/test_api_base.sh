#!/usr/bin/env bash
# HTTP API: base endpoint, health/metrics, methods, names, tags and path
# traversal.
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_base: registry did not start"; exit 1; }

# --- /v2/
req GET /v2/
expect_status "GET /v2/ is 200" 200
expect_jq "GET /v2/ body is {}" . '{}'
expect_hdr "GET /v2/ has Docker-Distribution-API-Version" Docker-Distribution-API-Version registry/2.0
req HEAD /v2/
expect_status "HEAD /v2/ is 200" 200
req GET /v2
case $ST in 200 | 301 | 307 | 308 | 404) ok "GET /v2 without slash answers ($ST)" ;; *) fail "GET /v2 without slash: got $ST $(ctx)" ;; esac

# --- health and metrics
if berth_only "healthz/readyz/metrics"; then
	req GET /healthz
	expect_status "GET /healthz is 200" 200
	req GET /readyz
	expect_status "GET /readyz is 200" 200
	req GET /metrics
	expect_status "GET /metrics is 200" 200
	if grep -q '^berth_' "$T/b"; then ok "/metrics has berth_ series"; else fail "/metrics has berth_ series $(ctx)"; fi
	expect_hdr_re "/metrics is text" Content-Type '^text/plain'
fi

# --- unknown routes and methods
req PATCH /v2/some/repo/manifests/x -H 'Content-Type: application/json' --data-binary '{}'
case $ST in 404 | 405) ok "PATCH on manifests is refused ($ST)" ;; *) fail "PATCH on manifests: want 405/404 got $ST $(ctx)" ;; esac
if berth_only "PATCH on manifests JSON error"; then
	if [ "$ST" = 405 ]; then
		expect_error "PATCH on manifests is 405 UNSUPPORTED" 405 UNSUPPORTED
	else
		expect_error "PATCH on manifests is 404 with JSON error" 404 "NAME_UNKNOWN|MANIFEST_UNKNOWN|UNSUPPORTED"
	fi
fi
req POST /v2/some/repo/tags/list
case $ST in 404 | 405) ok "POST on tags/list is refused ($ST)" ;; *) fail "POST on tags/list: want 405/404 got $ST $(ctx)" ;; esac
if berth_only "POST on tags/list JSON error"; then
	expect_error "POST on tags/list is 405 UNSUPPORTED" 405 UNSUPPORTED
fi
req PUT /v2/some/repo/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000
case $ST in 404 | 405) ok "PUT on a blob URL is refused ($ST)" ;; *) fail "PUT on a blob URL: want 405/404 got $ST $(ctx)" ;; esac
if berth_only "PUT on blob JSON error"; then
	expect_error "PUT on a blob URL is 405 UNSUPPORTED" 405 UNSUPPORTED
fi
if berth_only "DELETE /v2/"; then
	req DELETE /v2/
	expect_error "DELETE /v2/ is 405 UNSUPPORTED" 405 UNSUPPORTED
fi
req GET /v2/some/repo/nonsense/x
expect_4xx "unknown route under /v2/ is a 4xx"
req GET /nothing-here
expect_4xx "unknown route outside /v2/ is a 4xx"

# --- repository names
bad_names=("Upper/case" "a//b" "trailing-" "-leading" "a/b/" "a..b" "with%20space")
for n in "${bad_names[@]}"; do
	req GET "/v2/$n/manifests/latest"
	expect_refused "GET manifest of invalid name '$n' is refused"
	if berth_only "NAME_INVALID for '$n'"; then
		expect_error "GET manifest of invalid name '$n' is 400 NAME_INVALID" 400 NAME_INVALID
	fi
done
req POST "/v2/trailing-/blobs/uploads/"
expect_4xx "POST upload to invalid name is a 4xx"
if berth_only "NAME_INVALID on upload"; then
	expect_error "POST upload to invalid name is 400 NAME_INVALID" 400 NAME_INVALID
fi
req GET "/v2/Upper/tags/list"
expect_4xx "tags/list of invalid name is a 4xx"
if berth_only "NAME_INVALID on tags/list"; then
	expect_error "tags/list of invalid name is 400 NAME_INVALID" 400 NAME_INVALID
fi
long=$(printf 'a%.0s' $(seq 1 300))
if berth_only "name of 300 characters"; then
	req GET "/v2/$long/tags/list"
	expect_error "name of 300 characters is 400 NAME_INVALID" 400 NAME_INVALID
fi
# valid but unusual names are accepted
req GET "/v2/a.b_c__d--e/f-g/tags/list"
expect_status "unknown but valid name a.b_c__d--e/f-g is 404" 404

# --- tags
mk_image base/img one || fail "base: pushing blobs failed"
for t in .bad -bad "$(printf 't%.0s' $(seq 1 129))" 'a:b' 'tag%20x'; do
	# distribution answers 500 for a:b
	[ "$t" = a:b ] && ! berth_only "PUT manifest with tag a:b" && continue
	req PUT "/v2/base/img/manifests/$t" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/one.json"
	expect_4xx "PUT manifest with invalid tag '${t:0:20}' is a 4xx"
	if berth_only "invalid tag error body"; then
		expect_error "PUT manifest with invalid tag '${t:0:20}' is 400 with an error body" 400 "TAG_INVALID|MANIFEST_INVALID|NAME_INVALID"
	fi
done
t128=_$(printf 'x%.0s' $(seq 1 127))
req PUT "/v2/base/img/manifests/$t128" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/one.json"
expect_status "PUT manifest with a 128-character tag is 201" 201
req GET "/v2/base/img/manifests/$t128"
expect_status "GET manifest by 128-character tag is 200" 200

# --- path traversal: never 200, never touches anything outside the data dir
tok=trv$RANDOM$RANDOM
touch "$T/marker"
sleep 0.05
mkblob trav "traversal body"
trav_paths=(
	"/v2/../../etc/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000"
	"/v2/../../etc/passwd"
	"/v2/a/%2e%2e/b/tags/list"
	"/v2/a/..%2fb/manifests/x"
	"/v2/a/../../$tok/manifests/x"
	"/v2/..%2f..%2f..%2f$tok/manifests/x"
	"/v2/%2e%2e/%2e%2e/$tok/blobs/uploads/"
	"/v2/a/blobs/..%2f..%2f..%2f..%2fetc%2fpasswd"
	"/v2/a/blobs/sha256:..%2f..%2f..%2f..%2f..%2fetc%2fpasswd"
	"/v2/a/manifests/..%2f..%2f$tok"
	"/v2/a/blobs/uploads/..%2f..%2f$tok"
	"/v2/a/referrers/sha256:..%2f..%2f$tok"
)
for p in "${trav_paths[@]}"; do
	bad=
	for m in GET PUT POST PATCH DELETE; do
		req "$m" "$p" --data-binary "@$T/trav"
		case $ST in
		2?? | 5?? | 000) bad="$bad $m -> $ST $(ctx);" ;;
		esac
		if grep -q 'root:' "$T/b"; then bad="$bad $m served /etc/passwd;"; fi
	done
	if [ -z "$bad" ]; then ok "traversal ${p:0:50} refused for every method"; else fail "traversal $p:$bad"; fi
done
leaked=$(find /tmp "$T" /etc -maxdepth 4 -name "*$tok*" 2>/dev/null | head -3)
expect_eq "traversal created nothing named $tok" "" "$leaked"
outside=$(find "$T" -mindepth 1 -maxdepth 1 -newer "$T/marker" ! -name data ! -name b ! -name h \
	! -name curl.err ! -name apiver_missing ! -name berth.log ! -name trav 2>/dev/null | head -3)
expect_eq "traversal created nothing next to the data dir" "" "$outside"

finish
