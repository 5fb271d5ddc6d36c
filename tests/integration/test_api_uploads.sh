#!/usr/bin/env bash
# HTTP API: blob uploads (monolithic, single POST, streamed and ranged PATCH,
# status, cancel, wrong digests, restart, concurrency) and cross-repository
# mounts.
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_uploads: registry did not start"; exit 1; }

R=up/repo
UUID_RE='[A-Za-z0-9_=-]{8,}'
# berth's Locations are relative paths; distribution's are absolute URLs
LP=
is_berth && LP='^'

# --- POST opens a session
req POST "/v2/$R/blobs/uploads/"
expect_status "POST upload is 202" 202
if is_berth; then
	expect_hdr_re "POST upload Location is relative /v2/<name>/blobs/uploads/<uuid>" Location "^/v2/$R/blobs/uploads/$UUID_RE\$"
else
	expect_hdr_re "POST upload Location has /v2/<name>/blobs/uploads/<uuid>" Location "/v2/$R/blobs/uploads/$UUID_RE"
fi
expect_hdr_re "POST upload Docker-Upload-UUID" Docker-Upload-UUID "^$UUID_RE\$"
expect_hdr "POST upload Range 0-0" Range 0-0
expect_hdr "POST upload Content-Length 0" Content-Length 0
uuid=$(hdr Docker-Upload-UUID)
loc=$(loc_path)
if [[ $loc == *"$uuid"* ]]; then ok "Location contains the upload UUID"; else fail "Location '$loc' does not contain UUID '$uuid'"; fi

# --- POST then PUT with the whole body
mkblob m1 "monolithic blob content"
D=$(dg "$T/m1")
req PUT "$(with_query "$loc" "digest=$D")" -H 'Content-Type: application/octet-stream' --data-binary "@$T/m1"
expect_status "PUT upload with body is 201" 201
if is_berth; then
	expect_hdr "PUT upload Location is /v2/<name>/blobs/<digest>" Location "/v2/$R/blobs/$D"
else
	expect_hdr_re "PUT upload Location ends in /v2/<name>/blobs/<digest>" Location "/v2/$R/blobs/$D\$"
fi
expect_hdr "PUT upload Docker-Content-Digest" Docker-Content-Digest "$D"
req GET "/v2/$R/blobs/$D"
expect_body_file "blob from POST+PUT is served" "$T/m1"
req GET "$loc"
expect_error "upload session is gone after PUT (404 BLOB_UPLOAD_UNKNOWN)" 404 BLOB_UPLOAD_UNKNOWN

# --- single POST with ?digest= (berth stores it; a registry without
# monolithic POST support answers 202 and a session)
mkblob m2 "single post blob content"
D=$(dg "$T/m2")
req POST "/v2/$R/blobs/uploads/?digest=$D" -H 'Content-Type: application/octet-stream' --data-binary "@$T/m2"
if berth_only "single POST ?digest="; then
	expect_status "single POST ?digest= is 201" 201
	expect_hdr "single POST Location is the blob" Location "/v2/$R/blobs/$D"
	expect_hdr "single POST Docker-Content-Digest" Docker-Content-Digest "$D"
	req GET "/v2/$R/blobs/$D"
	expect_body_file "blob from single POST is served" "$T/m2"
	# A failed single POST has no session the client could resume: it
	# must not leave an upload file behind.
	before=$(ls "$T/data/uploads" | wc -l)
	req POST "/v2/$R/blobs/uploads/?digest=sha256:$(printf '%064d' 0)" -H 'Content-Type: application/octet-stream' --data-binary "@$T/m2"
	expect_error "single POST with a wrong digest is 400 DIGEST_INVALID" 400 DIGEST_INVALID
	expect_eq "failed single POST leaves no upload file" "$before" "$(ls "$T/data/uploads" | wc -l)"
	req HEAD "/v2/$R/blobs/sha256:$(printf '%064d' 0)"
	expect_status "failed single POST stores nothing" 404
else
	case $ST in 201 | 202) ok "single POST ?digest= is 201 or 202 ($ST)" ;; *) fail "single POST ?digest=: got $ST $(ctx)" ;; esac
fi

# --- streamed PATCH (docker): chunked transfer, no Content-Range
head -c 300000 /dev/urandom >"$T/s1"
D=$(dg "$T/s1")
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' --data-binary "@$T/s1"
expect_status "streamed PATCH is 202" 202
expect_hdr "streamed PATCH Range 0-(n-1)" Range "0-299999"
expect_hdr_re "streamed PATCH Location" Location "$LP/v2/$R/blobs/uploads/$UUID_RE"
loc=$(loc_path)
req GET "$loc"
expect_status "GET upload status is 204" 204
expect_hdr "GET upload status Range" Range "0-299999"
expect_hdr_re "GET upload status Location" Location "$LP/v2/$R/blobs/uploads/$UUID_RE"
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=$D")"
expect_status "PUT without body after streamed PATCH is 201" 201
req GET "/v2/$R/blobs/$D"
expect_eq "streamed blob content" "$D" "$(dg "$T/b")"

# --- several streamed PATCHes without Content-Range append
head -c 1000 /dev/urandom >"$T/sa"
head -c 2345 /dev/urandom >"$T/sb"
cat "$T/sa" "$T/sb" >"$T/sab"
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$T/sa"
expect_hdr "first PATCH without Content-Range: Range 0-999" Range 0-999
loc=$(loc_path)
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' --data-binary "@$T/sb"
expect_status "second PATCH without Content-Range is 202" 202
expect_hdr "second PATCH without Content-Range appends: Range 0-3344" Range 0-3344
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=$(dg "$T/sab")")"
expect_status "PUT after two streamed PATCHes is 201" 201
req GET "/v2/$R/blobs/$(dg "$T/sab")"
expect_body_file "blob from two streamed PATCHes" "$T/sab"

# --- ranged PATCH chunks, in order, then final chunk in the PUT
head -c 250 /dev/urandom >"$T/c"
D=$(dg "$T/c")
head -c 100 "$T/c" >"$T/c1"
tail -c +101 "$T/c" | head -c 100 >"$T/c2"
tail -c +201 "$T/c" >"$T/c3"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
loc=$(loc_path)
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-99' --data-binary "@$T/c1"
expect_status "PATCH chunk 0-99 is 202" 202
expect_hdr "PATCH chunk 0-99 Range" Range 0-99
loc=$(loc_path)
# out of order: skips bytes 100-149 (distribution does not check)
if berth_only "out-of-order chunk"; then
	req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 150-249' --data-binary "@$T/c3"
	expect_error "PATCH out-of-order chunk is 416 BLOB_UPLOAD_INVALID" 416 BLOB_UPLOAD_INVALID
	req GET "$loc"
	expect_status "GET upload after 416 is 204" 204
	expect_hdr "GET upload after 416 still Range 0-99" Range 0-99
	req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 50-149' --data-binary "@$T/c2"
	expect_error "PATCH overlapping chunk is 416 BLOB_UPLOAD_INVALID" 416 BLOB_UPLOAD_INVALID
fi
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 100-199' --data-binary "@$T/c2"
expect_status "PATCH chunk 100-199 is 202" 202
expect_hdr "PATCH chunk 100-199 Range" Range 0-199
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=$D")" -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: 200-249' --data-binary "@$T/c3"
expect_status "PUT with the final chunk is 201" 201
req GET "/v2/$R/blobs/$D"
expect_body_file "chunked blob content" "$T/c"

# --- wrong digest on PUT
mkblob w "content that does not match"
WRONG=sha256:$(printf '1%.0s' $(seq 1 64))
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=$WRONG")" -H 'Content-Type: application/octet-stream' --data-binary "@$T/w"
expect_error "PUT with a wrong digest is 400 DIGEST_INVALID" 400 DIGEST_INVALID
req HEAD "/v2/$R/blobs/$WRONG"
expect_status "blob with the wrong digest is not retrievable" 404
req HEAD "/v2/$R/blobs/$(dg "$T/w")"
expect_status "blob with the real digest of the bad upload is not retrievable" 404
if berth_only "single POST with a wrong digest"; then
	req POST "/v2/$R/blobs/uploads/?digest=$WRONG" -H 'Content-Type: application/octet-stream' --data-binary "@$T/w"
	expect_error "single POST with a wrong digest is 400 DIGEST_INVALID" 400 DIGEST_INVALID
	req HEAD "/v2/$R/blobs/$(dg "$T/w")"
	expect_status "blob of the bad single POST is not retrievable" 404
fi
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=sha256:nothex")" --data-binary "@$T/w"
expect_refused "PUT with a malformed digest is refused"
if berth_only "malformed digest on PUT"; then
	expect_error "PUT with a malformed digest is 400 DIGEST_INVALID" 400 DIGEST_INVALID
fi
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PUT "$loc" --data-binary "@$T/w"
expect_4xx "PUT without ?digest= is refused"

# --- cancel
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$T/w"
loc=$(loc_path)
req DELETE "$loc"
expect_status "DELETE upload is 204" 204
req GET "$loc"
expect_error "GET cancelled upload is 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
req PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$T/w"
expect_error "PATCH cancelled upload is 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN

# --- unknown upload
if is_berth; then
	U=/v2/$R/blobs/uploads/00000000-0000-4000-8000-000000000000
	req GET "$U"
	expect_error "GET unknown upload is 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
	req PATCH "$U" -H 'Content-Type: application/octet-stream' --data-binary "@$T/w"
	expect_error "PATCH unknown upload is 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
	req PUT "$U?digest=$(dg "$T/w")" --data-binary "@$T/w"
	expect_error "PUT unknown upload is 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
	req DELETE "$U"
	expect_error "DELETE unknown upload is 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
	# a session belongs to its repository
	req POST "/v2/$R/blobs/uploads/"
	u=$(hdr Docker-Upload-UUID)
	req GET "/v2/other/repo/blobs/uploads/$u"
	expect_error "upload of one repo is unknown in another" 404 BLOB_UPLOAD_UNKNOWN
else
	# distribution's upload URLs carry a signed _state; an unknown uuid
	# with the state of a real session is still unknown
	req POST "/v2/$R/blobs/uploads/"
	loc=$(loc_path)
	u=$(hdr Docker-Upload-UUID)
	req GET "${loc/$u/00000000-0000-4000-8000-000000000000}"
	expect_4xx "GET unknown upload is refused"
fi

# --- mounts
mkblob mnt "blob to be mounted"
DM=$(dg "$T/mnt")
check "push blob for mount into up/src" push_blob up/src "$T/mnt"
req POST "/v2/up/dst/blobs/uploads/?mount=$DM&from=up/src"
expect_status "mount from a repo holding the blob is 201" 201
expect_hdr_re "mount Location is the blob" Location "$LP/v2/up/dst/blobs/$DM\$"
expect_hdr "mount Docker-Content-Digest" Docker-Content-Digest "$DM"
req GET "/v2/up/dst/blobs/$DM"
expect_body_file "mounted blob is served in the new repo" "$T/mnt"
req POST "/v2/up/dst2/blobs/uploads/?mount=$DM&from=up/nothere"
expect_status "mount from a repo without the blob is 202" 202
expect_hdr_re "mount fallback opens a session" Location "$LP/v2/up/dst2/blobs/uploads/$UUID_RE"
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=$DM")" -H 'Content-Type: application/octet-stream' --data-binary "@$T/mnt"
expect_status "the fallback session accepts the upload" 201
UNK=sha256:$(printf 'e%.0s' $(seq 1 64))
req POST "/v2/up/dst3/blobs/uploads/?mount=$UNK&from=up/src"
expect_status "mount of an unknown blob is 202" 202
expect_hdr_re "mount of an unknown blob opens a session" Location "$LP/v2/up/dst3/blobs/uploads/$UUID_RE"
if berth_only "mount without from"; then
	req POST "/v2/up/dst4/blobs/uploads/?mount=$DM"
	expect_status "mount without from of a known blob is 201" 201
	req GET "/v2/up/dst4/blobs/$DM"
	expect_status "blob mounted without from is served" 200
	req POST "/v2/up/dst5/blobs/uploads/?mount=sha256:bad&from=up/src"
	expect_error "mount with a malformed digest is 400 DIGEST_INVALID" 400 DIGEST_INVALID
fi

# --- concurrent uploads of the same blob
head -c 2000000 /dev/urandom >"$T/cc"
DC=$(dg "$T/cc")
up_once() {
	local l
	l=$(curl -sS --max-time 30 -D - -o /dev/null -X POST "$URL/v2/$R/blobs/uploads/" | tr -d '\r' |
		sed -n 's/^[Ll]ocation: *//p' | sed -E 's#^https?://[^/]*##')
	curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
		--data-binary "@$T/cc" "$URL$(with_query "$l" "digest=$DC")" >"$T/cc.$1"
}
pids=()
for i in 1 2 3 4; do
	up_once "$i" &
	pids+=($!)
done
wait "${pids[@]}"
got=$(cat "$T"/cc.1 "$T"/cc.2 "$T"/cc.3 "$T"/cc.4 | tr '\n' ' ')
expect_eq "4 concurrent uploads of the same blob all 201" "201201201201" "${got// /}"
req GET "/v2/$R/blobs/$DC"
expect_eq "concurrently uploaded blob content" "$DC" "$(dg "$T/b")"

# --- an upload survives a restart
head -c 70000 /dev/urandom >"$T/rs"
DR=$(dg "$T/rs")
head -c 40000 "$T/rs" >"$T/rs1"
tail -c +40001 "$T/rs" >"$T/rs2"
req POST "/v2/$R/blobs/uploads/"
loc=$(loc_path)
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-39999' --data-binary "@$T/rs1"
expect_status "PATCH before restart is 202" 202
loc=$(loc_path)
stop_berth
start_registry || { fail "registry did not restart"; exit 1; }
req GET "$loc"
expect_status "upload status after restart is 204" 204
expect_hdr "upload offset kept across restart" Range 0-39999
req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 40000-69999' --data-binary "@$T/rs2"
expect_status "PATCH after restart is 202" 202
loc=$(loc_path)
req PUT "$(with_query "$loc" "digest=$DR")"
expect_status "PUT after restart is 201" 201
req GET "/v2/$R/blobs/$DR"
expect_body_file "blob uploaded across a restart is right" "$T/rs"
req GET "/v2/$R/blobs/$D"
expect_status "blobs pushed before the restart are still served" 200

# --- query parameters are ignored on every upload request
mkblob nsb "uploaded with ?ns= on every request"
req POST "/v2/$R/blobs/uploads/?ns=docker.io"
expect_status "POST upload with ?ns= is 202" 202
loc=$(loc_path)
req PATCH "$(with_query "$loc" ns=docker.io)" -H 'Content-Type: application/octet-stream' --data-binary "@$T/nsb"
expect_status "PATCH upload with ?ns= is 202" 202
loc=$(loc_path)
req GET "$(with_query "$loc" ns=docker.io)"
expect_status "GET upload with ?ns= is 204" 204
loc=$(loc_path)
req PUT "$(with_query "$loc" "ns=docker.io&digest=$(dg "$T/nsb")")"
expect_status "PUT upload with ?ns= before digest is 201" 201
req DELETE "/v2/$R/blobs/$(dg "$T/nsb")?ns=docker.io"
expect_status "DELETE blob with ?ns= is 202" 202

# --- unsupported digest algorithm and chunk length mismatch (berth)
if berth_only "unsupported digest on PUT, short chunk"; then
	req POST "/v2/$R/blobs/uploads/"
	loc=$(loc_path)
	req PUT "$(with_query "$loc" "digest=sha512:$(printf 'a%.0s' $(seq 1 128))")" --data-binary "@$T/nsb"
	expect_error "PUT upload with a sha512 digest is 400 UNSUPPORTED" 400 UNSUPPORTED
	head -c 50 /dev/urandom >"$T/short"
	req POST "/v2/$R/blobs/uploads/"
	loc=$(loc_path)
	req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-99' --data-binary "@$T/short"
	case $ST in
	400) expect_error "PATCH whose body is shorter than its Content-Range is refused" 400 "SIZE_INVALID|BLOB_UPLOAD_INVALID" ;;
	*) expect_error "PATCH whose body is shorter than its Content-Range is refused" 416 "BLOB_UPLOAD_INVALID|SIZE_INVALID" ;;
	esac
	req GET "$loc"
	case $(hdr Range) in 0-0 | 0-49) ok "upload offset after a short chunk is consistent ($(hdr Range))" ;;
	*) fail "upload offset after a short chunk: Range '$(hdr Range)' $(ctx)" ;; esac
fi

# --- status requests never take the session from the chunks (berth): a
# status GET arriving with a PATCH used to hold the upload for a moment,
# and the PATCH was refused "in use" after sending its whole body
if berth_only "status GETs during chunked PATCHes"; then
	req POST "/v2/$R/blobs/uploads/"
	loc=$(loc_path)
	head -c $((200 * 4096)) /dev/urandom >"$T/chunks"
	out=$(timeout 60 python3 - "$PORT" "$loc" "$T/chunks" <<-'EOF'
		import http.client, sys, threading, time
		port, loc, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
		data = open(path, "rb").read()
		CH = 4096
		done = threading.Event()
		gets = {}

		def status():
		    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
		    t_end = time.monotonic() + 50
		    while not done.is_set() and time.monotonic() < t_end:
		        c.request("GET", loc)
		        r = c.getresponse()
		        r.read()
		        gets[r.status] = gets.get(r.status, 0) + 1

		ths = [threading.Thread(target=status) for _ in range(3)]
		for t in ths:
		    t.start()
		c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
		bad = []
		for i in range(0, len(data), CH):
		    c.request("PATCH", loc, data[i:i + CH],
		              {"Content-Type": "application/octet-stream",
		               "Content-Range": "%d-%d" % (i, i + CH - 1)})
		    r = c.getresponse()
		    body = r.read()
		    if r.status != 202:
		        bad.append((i // CH, r.status, body[:80]))
		done.set()
		for t in ths:
		    t.join()
		print("patches %d refused %d %s" % (len(data) // CH, len(bad), bad[:2]))
		print("gets %d other %d %s" % (sum(gets.values()),
		      sum(n for st, n in gets.items() if st != 204), gets))
	EOF
	)
	echo "$out"
	case $out in
	*"patches 200 refused 0 "*) ok "200 chunked PATCHes under concurrent status GETs all 202" ;;
	*) fail "chunked PATCHes under concurrent status GETs: $out" ;;
	esac
	case $out in
	*"gets "[1-9]*" other 0 "*) ok "every status GET meanwhile is 204" ;;
	*) fail "status GETs meanwhile: $out" ;;
	esac
	req PUT "$(with_query "$loc" "digest=$(dg "$T/chunks")")"
	expect_status "PUT after the chunks completes the blob" 201
	req GET "/v2/$R/blobs/$(dg "$T/chunks")"
	expect_body_file "blob pushed under status GETs is right" "$T/chunks"
fi

finish
