#!/usr/bin/env bash
# HTTP API: blob GET/HEAD, ranges, unknown and malformed digests, repository
# isolation.
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_blobs: registry did not start"; exit 1; }

R=blobs/one
# 1000 bytes, every range distinguishable
for i in $(seq 0 99); do printf '%09d\n' "$i"; done >"$T/b1"
D1=$(dg "$T/b1")
S1=$(sz "$T/b1")
check "push a 1000-byte blob" push_blob "$R" "$T/b1"

# --- GET
req GET "/v2/$R/blobs/$D1"
expect_status "GET blob is 200" 200
expect_body_file "GET blob returns the exact bytes" "$T/b1"
expect_hdr "GET blob Content-Length" Content-Length "$S1"
expect_hdr "GET blob Docker-Content-Digest" Docker-Content-Digest "$D1"
expect_hdr "GET blob Accept-Ranges" Accept-Ranges bytes
expect_hdr "GET blob Content-Type" Content-Type application/octet-stream

# --- HEAD
req HEAD "/v2/$R/blobs/$D1"
expect_status "HEAD blob is 200" 200
expect_hdr "HEAD blob Content-Length" Content-Length "$S1"
expect_hdr "HEAD blob Docker-Content-Digest" Docker-Content-Digest "$D1"
expect_hdr "HEAD blob Accept-Ranges" Accept-Ranges bytes
expect_hdr "HEAD blob Content-Type" Content-Type application/octet-stream
expect_eq "HEAD blob sends no body" 0 "$(raw_head "/v2/$R/blobs/$D1")"

# --- ranges
# range_case NAME RANGE FIRST LAST
range_case() {
	req GET "/v2/$R/blobs/$D1" -H "Range: $2"
	expect_status "$1: 206" 206
	expect_hdr "$1: Content-Range" Content-Range "bytes $3-$4/$S1"
	expect_hdr "$1: Content-Length" Content-Length "$(($4 - $3 + 1))"
	tail -c +$(($3 + 1)) "$T/b1" | head -c $(($4 - $3 + 1)) >"$T/want"
	expect_body_file "$1: exact bytes" "$T/want"
}
range_case "Range bytes=0-9" bytes=0-9 0 9
range_case "Range bytes=10-" bytes=10- 10 $((S1 - 1))
range_case "Range bytes=-5" bytes=-5 $((S1 - 5)) $((S1 - 1))
range_case "Range bytes=500-599" bytes=500-599 500 599
range_case "Range bytes=990-5000 (end clamped)" bytes=990-5000 990 $((S1 - 1))
req GET "/v2/$R/blobs/$D1" -H "Range: bytes=$S1-"
expect_status "Range bytes=SIZE- is 416" 416
expect_hdr "Range bytes=SIZE- has Content-Range bytes */SIZE" Content-Range "bytes */$S1"
req GET "/v2/$R/blobs/$D1" -H "Range: bytes=5000-6000"
expect_status "Range past the end is 416" 416
req HEAD "/v2/$R/blobs/$D1" -H "Range: bytes=0-9"
case $ST in 200 | 206) ok "HEAD with Range answers ($ST)" ;; *) fail "HEAD with Range: got $ST $(ctx)" ;; esac

# --- empty blob
: >"$T/empty"
check "push an empty blob" push_blob "$R" "$T/empty"
req GET "/v2/$R/blobs/$(dg "$T/empty")"
expect_status "GET empty blob is 200" 200
expect_hdr "GET empty blob Content-Length 0" Content-Length 0
expect_eq "GET empty blob body is empty" 0 "$(sz "$T/b")"

# --- a larger blob (4 MiB + 3)
head -c $((4 * 1024 * 1024 + 3)) /dev/urandom >"$T/big"
DB=$(dg "$T/big")
check "push a 4 MiB blob" push_blob "$R" "$T/big"
req GET "/v2/$R/blobs/$DB"
expect_status "GET 4 MiB blob is 200" 200
expect_eq "GET 4 MiB blob digest of body" "$DB" "$(dg "$T/b")"
req GET "/v2/$R/blobs/$DB" -H "Range: bytes=3000000-3000099"
expect_status "GET 4 MiB blob middle range is 206" 206
tail -c +3000001 "$T/big" | head -c 100 >"$T/want"
expect_body_file "GET 4 MiB blob middle range bytes" "$T/want"

# --- unknown and malformed digests
UNK=sha256:$(printf 'f%.0s' $(seq 1 64))
req GET "/v2/$R/blobs/$UNK"
expect_error "GET unknown blob is 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN
req HEAD "/v2/$R/blobs/$UNK"
expect_status "HEAD unknown blob is 404" 404
expect_eq "HEAD unknown blob sends no body" 0 "$(raw_head "/v2/$R/blobs/$UNK")"
req GET "/v2/blobs/nowhere/blobs/$D1"
expect_error "GET blob in unknown repo is 404 BLOB_UNKNOWN" 404 "BLOB_UNKNOWN|NAME_UNKNOWN"
for bad in sha256:zzzz "sha256:$(printf 'A%.0s' $(seq 1 64))" sha256:abc notadigest "sha256:${D1#sha256:}0"; do
	req GET "/v2/$R/blobs/$bad"
	expect_refused "GET blob with malformed digest ${bad:0:20}"
	if berth_only "DIGEST_INVALID for ${bad:0:20}"; then
		expect_error "GET blob with malformed digest ${bad:0:20} is 400 DIGEST_INVALID" 400 DIGEST_INVALID
	fi
done
if berth_only "unsupported digest algorithm"; then
	req GET "/v2/$R/blobs/sha512:$(printf 'a%.0s' $(seq 1 128))"
	expect_error "GET blob with a sha512 digest is 400 UNSUPPORTED" 400 UNSUPPORTED
fi

# --- repository isolation
req GET "/v2/blobs/two/blobs/$D1"
expect_status "blob of repo blobs/one is not served from blobs/two" 404
req HEAD "/v2/blobs/two/blobs/$D1"
expect_status "blob of repo blobs/one: HEAD in blobs/two is 404" 404
req POST "/v2/blobs/two/blobs/uploads/?mount=$D1&from=$R"
expect_status "mount blobs/one -> blobs/two is 201" 201
req GET "/v2/blobs/two/blobs/$D1"
expect_status "after mount, GET in blobs/two is 200" 200
expect_body_file "after mount, blobs/two serves the bytes" "$T/b1"
req GET "/v2/blobs/one/blobs/$D1"
expect_status "after mount, blobs/one still serves it" 200

# --- query parameters are ignored
req GET "/v2/$R/blobs/$D1?ns=docker.io"
expect_status "GET blob with ?ns= is 200" 200
req HEAD "/v2/$R/blobs/$D1?ns=docker.io&x=y"
expect_status "HEAD blob with ?ns= is 200" 200

finish
