#!/usr/bin/env bash
# HTTP API under hostile input: NUL bytes (percent-encoded or raw in the
# request line) in names, tags, digests and query values, encoded slashes
# in the path, malformed Content-Range on chunk uploads, and the error a bad
# cross-repository mount gets. A NUL must never cut a value short into
# another valid one: everything here is refused, and nothing is stored.
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_hostile: registry did not start"; exit 1; }
if ! berth_only "hostile input (berth's error codes and details)"; then
	finish
	exit 0
fi

R=hostile/r
Z64=$(printf '0%.0s' $(seq 1 64))

# raw_req METHOD TARGET [BODY_FILE]: one request on a raw socket, which
# curl cannot send: TARGET goes through printf %b, so \x00 is a NUL byte in
# the request line. Sets ST, $T/h and $T/b like req.
raw_req() {
	local m=$1 tgt=$2 f=${3:-} cl=0
	[ -n "$f" ] && cl=$(sz "$f")
	(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
		{
			printf '%s %b HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n' "$m" "$tgt" "$REG"
			printf 'Content-Type: %s\r\nContent-Length: %s\r\n\r\n' "$OCI_MANIFEST" "$cl"
			[ -z "$f" ] || cat "$f"
		} >&3
		timeout 10 cat <&3
	) >"$T/raw" 2>/dev/null
	ST=$(head -1 "$T/raw" | cut -d' ' -f2)
	[ -n "$ST" ] || ST=000
	sed -n '2,/^\r$/p' "$T/raw" >"$T/h"
	sed '1,/^\r$/d' "$T/raw" >"$T/b"
	LASTREQ="raw $m ${tgt//\\x00/<NUL>} -> $ST"
	case $ST in 5?? | 000) echo "$(ctx)" >>"$T/server_errors" ;; esac
}

# expect_detail NAME ERE: the first error's detail matches ERE.
expect_detail() {
	local d
	d=$(jq -r '.errors[0].detail // empty' "$T/b" 2>/dev/null)
	if [[ $d =~ $2 ]]; then ok "$1"; else fail "$1: detail '$d' does not match /$2/ $(ctx)"; fi
}

# tag_absent NAME TAG: TAG is not in $R's tag list.
tag_absent() {
	req GET "/v2/$R/tags/list"
	if [ "$ST" = 200 ] && [ "$(jq -c --arg t "$2" '.tags // [] | index($t)' "$T/b")" = null ]; then
		ok "$1"
	else
		fail "$1: $(ctx)"
	fi
}

mk_image "$R" img || fail "push the image's blobs"
MD=$(dg "$T/img.json")
check "push $R:v1" push_manifest "$R" v1 "$T/img.json" "$OCI_MANIFEST"
LAYER=$IMG_LAYER

# --- a %00 in the path: refused with the code of the part it is in
req PUT "/v2/$R/manifests/latest%00" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img.json"
expect_error "PUT manifests/latest%00 is 400 TAG_INVALID" 400 TAG_INVALID
expect_detail "latest%00: the detail names the NUL" 'NUL'
tag_absent "PUT manifests/latest%00 created no tag latest" latest
req PUT "/v2/$R/manifests/la%00test" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img.json"
expect_error "PUT manifests/la%00test is 400 TAG_INVALID" 400 TAG_INVALID
tag_absent "PUT manifests/la%00test created no tag la" la
req PUT "/v2/$R/manifests/$MD%00" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img.json"
expect_error "PUT manifests/<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req GET "/v2/$R/manifests/v1%00"
expect_error "GET manifests/v1%00 is 400 TAG_INVALID (not v1, and not a mere unknown tag)" 400 TAG_INVALID
req HEAD "/v2/$R/manifests/v1%00"
expect_status "HEAD manifests/v1%00 is 400" 400
req DELETE "/v2/$R/manifests/v1%00"
expect_error "DELETE manifests/v1%00 is 400 TAG_INVALID" 400 TAG_INVALID
req GET "/v2/$R/manifests/v1%2fx"
expect_error "GET manifests/v1%2fx is 400 TAG_INVALID" 400 TAG_INVALID
req GET "/v2/$R/manifests/-bad"
expect_error "GET manifests/-bad (an invalid tag) stays 404 MANIFEST_UNKNOWN (conformance)" 404 MANIFEST_UNKNOWN
req GET "/v2/$R/manifests/$MD%00"
expect_error "GET manifests/<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req DELETE "/v2/$R/manifests/$MD%00"
expect_error "DELETE manifests/<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req HEAD "/v2/$R/blobs/$LAYER%00"
expect_status "HEAD blobs/<digest>%00 is 400" 400
req GET "/v2/$R/blobs/$LAYER%00"
expect_error "GET blobs/<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req DELETE "/v2/$R/blobs/$LAYER%00"
expect_error "DELETE blobs/<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req GET "/v2/$R/referrers/$MD%00"
expect_error "GET referrers/<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req GET "/v2/$R%00/tags/list"
expect_error "GET <name>%00/tags/list is 400 NAME_INVALID" 400 NAME_INVALID
req PUT "/v2/hostile/r%00x/manifests/v1" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img.json"
expect_error "PUT <name>%00x/manifests/v1 is 400 NAME_INVALID" 400 NAME_INVALID
req POST "/v2/hostile%00/blobs/uploads/"
expect_error "POST <name>%00/blobs/uploads/ is 400 NAME_INVALID" 400 NAME_INVALID
req GET "/v2/$R/manifests/v1"
expect_status "manifest v1 still there after the refused DELETE" 200
req HEAD "/v2/$R/blobs/$LAYER"
expect_status "layer still there after the refused DELETE" 200
# what an encoded NUL is not: other escapes still decode
req GET "/v2/$R/manifests/%76%31"
expect_status "GET manifests/%76%31 (v1, escaped) is 200" 200

# --- an encoded '/' in the path is not a separator
req GET "/v2/hostile%2fr/manifests/v1"
expect_error "GET hostile%2fr/manifests/v1 is 400 NAME_INVALID" 400 NAME_INVALID
expect_detail "hostile%2fr: the detail names %2F" '%2F'
req HEAD "/v2/hostile%2Fr/blobs/$LAYER"
expect_status "HEAD hostile%2Fr/blobs/<digest> is 400" 400
req PUT "/v2/hostile%2fnew/manifests/v1" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img.json"
expect_error "PUT hostile%2fnew/manifests/v1 is 400 NAME_INVALID" 400 NAME_INVALID
req POST "/v2/hostile%2fnew/blobs/uploads/"
expect_error "POST hostile%2fnew/blobs/uploads/ is 400 NAME_INVALID" 400 NAME_INVALID
req PUT "/v2/$R/manifests/a%2fb" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img.json"
expect_error "PUT manifests/a%2fb is 400 TAG_INVALID" 400 TAG_INVALID
req GET "/v2/$R/blobs/sha256%2f$Z64"
expect_error "GET blobs/sha256%2f<hex> is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req GET "/v2/_catalog"
if [ "$(jq -c '[.repositories[] | select(startswith("hostile/new") or contains("%"))]' "$T/b")" = "[]" ]; then
	ok "no repository was created by the refused requests"
else
	fail "no repository was created by the refused requests: $(ctx)"
fi

# --- a raw NUL in the request line
raw_req PUT "/v2/$R/manifests/raw\\x00x" "$T/img.json"
expect_error "raw NUL: PUT manifests/raw<NUL>x is 400 TAG_INVALID" 400 TAG_INVALID
expect_detail "raw NUL: the detail names the NUL" 'NUL'
tag_absent "raw NUL: no tag raw was created" raw
raw_req PUT "/v2/$R/manifests/raw2\\x00" "$T/img.json"
expect_error "raw NUL: PUT manifests/raw2<NUL> is 400 TAG_INVALID" 400 TAG_INVALID
tag_absent "raw NUL: no tag raw2 was created" raw2
raw_req HEAD "/v2/$R/blobs/$LAYER\\x00"
expect_status "raw NUL: HEAD blobs/<digest><NUL> is 400" 400
raw_req GET "/v2/$R/blobs/$LAYER\\x00"
expect_error "raw NUL: GET blobs/<digest><NUL> is 400 DIGEST_INVALID" 400 DIGEST_INVALID
raw_req GET "/v2/hostile/r\\x00x/tags/list"
expect_error "raw NUL: GET <name><NUL>x/tags/list is 400 NAME_INVALID" 400 NAME_INVALID
raw_req GET "/v2/$R\\x00/manifests/v1?n=1"
expect_error "raw NUL: GET <name><NUL>/manifests/v1?n=1 is 400 NAME_INVALID" 400 NAME_INVALID
raw_req GET "/v2/$R/tags/list?n=1\\x00"
expect_error "raw NUL: tags/list?n=1<NUL> is 400" 400 UNSUPPORTED
expect_detail "raw NUL: the detail names the parameter n" '^n: '
raw_req POST "/v2/$R/blobs/uploads/?digest=$LAYER\\x00"
expect_error "raw NUL: POST ?digest=<digest><NUL> is 400 DIGEST_INVALID" 400 DIGEST_INVALID
raw_req GET "/v2/$R/manifests/v1"
expect_status "raw socket helper: a clean request is 200" 200

# --- a NUL in a query value (or key): refused with the parameter's error
req GET "/v2/$R/tags/list?n=x"
expect_error "tags/list?n=x is 400 (the baseline for a bad n)" 400 UNSUPPORTED
req GET "/v2/$R/tags/list?n=1%00"
expect_error "tags/list?n=1%00 is 400 like a bad n" 400 UNSUPPORTED
expect_detail "n=1%00: the detail names n and the NUL" '^n: .*NUL'
req GET "/v2/$R/tags/list?last=a%00b"
expect_error "tags/list?last=a%00b is 400" 400 UNSUPPORTED
req GET "/v2/_catalog?n=1%00"
expect_error "_catalog?n=1%00 is 400" 400 UNSUPPORTED
req GET "/v2/_catalog?last=hostile%00"
expect_error "_catalog?last=hostile%00 is 400" 400 UNSUPPORTED
req GET "/v2/$R/referrers/$MD?artifactType=a%00b"
expect_error "referrers?artifactType=a%00b is 400" 400 UNSUPPORTED
mkblob q1 "single POST with a NUL after its digest"
DQ=$(dg "$T/q1")
req POST "/v2/$R/blobs/uploads/?digest=$DQ%00" -H 'Content-Type: application/octet-stream' --data-binary "@$T/q1"
expect_error "single POST ?digest=<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
expect_detail "digest=<digest>%00: the detail names digest" '^digest: '
req HEAD "/v2/$R/blobs/$DQ"
expect_status "the refused single POST stored nothing" 404
req POST "/v2/$R/blobs/uploads/?dig%00est=$DQ" -H 'Content-Type: application/octet-stream' --data-binary "@$T/q1"
expect_error "POST ?dig%00est= (NUL in a key) is 400" 400 UNSUPPORTED
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=$DQ%00")" -H 'Content-Type: application/octet-stream' --data-binary "@$T/q1"
expect_error "PUT upload ?digest=<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req PUT "$(with_query "$loc" "digest=$DQ")" -H 'Content-Type: application/octet-stream' --data-binary "@$T/q1"
expect_status "the session then completes with the clean digest" 201
req POST "/v2/hostile/m1/blobs/uploads/?mount=$LAYER%00&from=$R"
expect_error "mount=<digest>%00 is 400 DIGEST_INVALID" 400 DIGEST_INVALID
expect_detail "mount=<digest>%00: the detail names mount" '^mount: '
req POST "/v2/hostile/m1/blobs/uploads/?mount=$LAYER&from=$R%00x"
expect_error "from=<name>%00x is 400 NAME_INVALID" 400 NAME_INVALID
expect_detail "from=<name>%00x: the detail names from" '^from: '
req HEAD "/v2/hostile/m1/blobs/$LAYER"
expect_status "the refused mounts linked nothing" 404
# docker sends from= with its '/' encoded: that still mounts
req POST "/v2/hostile/m1/blobs/uploads/?mount=$LAYER&from=hostile%2Fr"
expect_status "mount with from=hostile%2Fr is 201" 201

# --- Content-Range of a chunk: <start>-<end> (or bytes=<start>-<end>) only
mkblob c5 "12345"
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-4' --data-binary "@$T/c5"
expect_status "PATCH Content-Range 0-4 is 202" 202
loc=$(loc_path)
for cr in 'bytes 5-9/10' 'bytes 5-9' 'bytes=5-9/10' 'bytes=5-9/*' '5-9/10' '+5-9' '5-+9' \
	'5 - 9' '5- 9' '5 -9' '-5-9' '5--9' '5-' '-9' '-' '5-9-' '5-9,10-14' '0x5-9' '9-5' \
	'5-9223372036854775808' '5-18446744073709551620' '05-9x' 'bytes=bytes=5-9' 'bytes5-9' 'BYTES=5-9'; do
	req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H "Content-Range: $cr" --data-binary "@$T/c5"
	expect_error "PATCH Content-Range '$cr' is 416 BLOB_UPLOAD_INVALID" 416 BLOB_UPLOAD_INVALID
done
# without Content-Length (chunked) a huge end would have lifted the limit
for cr in '5-18446744073709551615' '5-9223372036854775807x' '5-99999999999999999999'; do
	req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
		-H "Content-Range: $cr" --data-binary "@$T/c5"
	expect_error "chunked PATCH Content-Range '$cr' is 416" 416 BLOB_UPLOAD_INVALID
done
req GET "$loc"
expect_hdr "after the refused chunks the offset is still 0-4" Range 0-4
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 5-9' --data-binary "@$T/c5"
expect_status "PATCH Content-Range 5-9 is 202" 202
expect_hdr "PATCH 5-9: Range 0-9" Range 0-9
loc=$(loc_path)
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: bytes=10-14' --data-binary "@$T/c5"
expect_status "PATCH Content-Range bytes=10-14 (kept for compatibility) is 202" 202
expect_hdr "PATCH bytes=10-14: Range 0-14" Range 0-14
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=sha256:$Z64")" -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: bytes 15-19/20' --data-binary "@$T/c5"
expect_error "PUT with Content-Range 'bytes 15-19/20' is 416" 416 BLOB_UPLOAD_INVALID
printf '123451234512345' >"$T/c15"
req PUT "$(with_query "$loc" "digest=$(dg "$T/c15")")"
expect_status "the chunked upload completes" 201

# --- a bad mount names the parameter at fault
req POST "/v2/hostile/m2/blobs/uploads/?mount=$LAYER&from=../x"
expect_error "mount from=../x is 400 NAME_INVALID" 400 NAME_INVALID
expect_detail "from=../x: the detail says from is not a repository name" '^from: "\.\./x" is not a repository name$'
req POST "/v2/hostile/m2/blobs/uploads/?mount=$LAYER&from=Hostile/R"
expect_error "mount from=Hostile/R is 400 NAME_INVALID" 400 NAME_INVALID
expect_detail "from=Hostile/R: the detail names from" '^from: "Hostile/R" is not a repository name$'
req POST "/v2/hostile/m2/blobs/uploads/?mount=$LAYER&from="
expect_error "mount with an empty from is 400 NAME_INVALID" 400 NAME_INVALID
expect_detail "empty from: the detail names from" '^from: "" is not a repository name$'
req POST "/v2/hostile/m2/blobs/uploads/?mount=$LAYER&from=%C3%A9%09x"
expect_error "mount from=<non-ASCII> is 400 NAME_INVALID" 400 NAME_INVALID
expect_detail "from=<non-ASCII>: shown printable" '^from: "\?\?\?x" is not a repository name$'
req POST "/v2/hostile/m2/blobs/uploads/?mount=sha256:bad&from=$R"
expect_error "mount=sha256:bad is 400 DIGEST_INVALID" 400 DIGEST_INVALID
expect_detail "mount=sha256:bad: the detail names mount" '^mount: "sha256:bad" is not a digest$'
req POST "/v2/hostile/m2/blobs/uploads/?mount=sha512:$Z64$Z64&from=$R"
expect_error "mount=sha512:... is 400 UNSUPPORTED" 400 UNSUPPORTED
expect_detail "mount=sha512:...: the detail names mount" '^mount: '
req HEAD "/v2/hostile/m2/blobs/$LAYER"
expect_status "the refused mounts linked nothing in hostile/m2" 404

finish
