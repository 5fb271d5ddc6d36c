#!/usr/bin/env bash
# Upload leftovers and the collector: a monolithic POST cut by `kill -9`
# leaves its file (and its session row: the row is committed before the
# body streams in), and a file in uploads/ that no session owns (what a
# crash between a session's file and its row leaves; the API cannot make
# one on demand, so it is laid down by hand). After a restart, `berth gc`
# removes both once they are older than --upload-ttl, never an orphan
# younger than an hour, and counts them as uploads.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh

start_registry || { fail "upload_leftovers: registry did not start"; exit 1; }
head -c $((20 * 1024 * 1024)) /dev/urandom >"$T/20m"
D=$(dg "$T/20m")

# ---- a monolithic POST of 20 MiB at 2 MiB/s, the server killed mid-body
curl -sS -o /dev/null -X POST --limit-rate 2M -H 'Content-Type: application/octet-stream' \
	--data-binary "@$T/20m" "$URL/v2/left/blobs/uploads/?digest=$D" 2>/dev/null &
CURL_PID=$!
leftover=
for _ in $(seq 1 100); do
	f=$(find "$T/data/uploads" -type f -size +1M 2>/dev/null | head -1)
	[ -n "$f" ] && { leftover=$(basename "$f"); break; }
	sleep 0.1
done
kill -9 "$BERTH_PID"
wait "$BERTH_PID" 2>/dev/null
BERTH_PID=
wait "$CURL_PID" 2>/dev/null
if [ -n "$leftover" ]; then ok "the POST's file is being written when the server is killed"; else fail "no upload file grew past 1 MiB"; fi
size=$(stat -c %s "$T/data/uploads/$leftover" 2>/dev/null || echo 0)
check "kill -9 left part of the body in uploads/ ($size bytes)" test "$size" -gt 0 -a "$size" -lt $((20 * 1024 * 1024))

# A file no session owns, and a young one (past --upload-ttl but under
# the hour's floor).
orphan=0a1b2c3d-0000-4000-8000-00000000beef
young=0a1b2c3d-0000-4000-8000-00000000cafe
head -c 4096 /dev/urandom >"$T/data/uploads/$orphan"
head -c 100 /dev/urandom >"$T/data/uploads/$young"
touch -d '2 hours ago' "$T/data/uploads/$leftover" "$T/data/uploads/$orphan"
touch -d '10 minutes ago' "$T/data/uploads/$young"

start_registry --upload-ttl 1 || { fail "upload_leftovers: restart failed"; exit 1; }

out=$("$BERTH_BIN" gc --server "$URL" --dry-run --json 2>&1)
expect_eq "dry run: two uploads would go" 2 "$(jq '.uploads.deleted' <<<"$out")"
check "dry run: the files stay" test -e "$T/data/uploads/$leftover" -a -e "$T/data/uploads/$orphan"

out=$("$BERTH_BIN" gc --server "$URL" --json 2>&1)
expect_eq "gc: the leftover and the orphan counted as uploads" 2 "$(jq '.uploads.deleted' <<<"$out")"
expect_eq "gc: their bytes counted" $((size + 4096)) "$(jq '.uploads.bytes' <<<"$out")"
expect_eq "gc: the killed POST's session reported as abandoned" "left abandoned $size" \
	"$(jq -r --arg u "$leftover" '.deleted[] | select(.upload == $u) | "\(.repository) \(.reason) \(.size)"' <<<"$out")"
expect_eq "gc: the file without session reported as an orphan" " orphan 4096" \
	"$(jq -r --arg u "$orphan" '.deleted[] | select(.upload == $u) | "\(.repository) \(.reason) \(.size)"' <<<"$out")"
check "gc: the leftover file is gone" test ! -e "$T/data/uploads/$leftover"
check "gc: the orphan file is gone" test ! -e "$T/data/uploads/$orphan"
check "gc: the young orphan stays (an hour at least)" test -e "$T/data/uploads/$young"
check "gc: the orphan's removal is logged" grep -q "\"upload\":\"$orphan\".*\"reason\":\"orphan\"" "$T/berth.log"
req GET "/v2/left/blobs/uploads/$leftover"
expect_error "the purged session is unknown: 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN

line=$("$BERTH_BIN" gc --server "$URL" 2>&1)
check "a second run deletes nothing ($line)" grep -q "deleted 0 manifests, 0 blobs (0 B), 0 uploads" <<<"$line"

# The blob can still be pushed whole.
req POST "/v2/left/blobs/uploads/?digest=$D" -H 'Content-Type: application/octet-stream' --data-binary "@$T/20m"
expect_status "the 20 MiB blob pushed again: 201" 201

finish
