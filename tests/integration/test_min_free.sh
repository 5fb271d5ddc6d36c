#!/usr/bin/env bash
# --min-free: berth serves from a 64 MiB tmpfs mounted in a mount
# namespace of the test's own, with --min-free 24M. Pushes of 2 MiB blobs
# go through until the free space is below 24 MiB; from then on every
# request that adds data (a monolithic push, an upload's start, chunk and
# end, a mount, a manifest) is refused with 507 DENIED and a detail naming
# the guard and its figures, while the volume still has room. Pulls,
# listings, an upload's status, deletes and a collection run keep working;
# once a manifest delete and a run freed space, pushes work again. Bad
# --min-free values are refused at start.
. "$(dirname "$0")/api_lib.sh"

# ---- bad values: one line, exit 2 (no namespace needed)
for v in 12X -5 5.5 101% '1G,2G' ''; do
	out=$("$BERTH_BIN" serve --listen 127.0.0.1:1 --data "$T/never" --min-free "$v" 2>&1)
	rc=$?
	expect_eq "--min-free '$v' exits 2" 2 "$rc"
	expect_eq "--min-free '$v' is one line naming the flag" "1 1" \
		"$(printf '%s\n' "$out" | wc -l) $(printf '%s' "$out" | grep -c -- '--min-free')"
done
out=$(BERTH_MIN_FREE=lots "$BERTH_BIN" serve --listen 127.0.0.1:1 --data "$T/never" 2>&1)
expect_eq "BERTH_MIN_FREE=lots exits 2" "2 1" "$? $(printf '%s' "$out" | grep -c 'must be a size')"
printf '{"min_free": "1%%%%"}' >"$T/bad.json"
out=$("$BERTH_BIN" serve --listen 127.0.0.1:1 --data "$T/never" --config "$T/bad.json" 2>&1)
expect_eq "config min_free \"1%%\" exits 2" 2 "$?"
check "the data directory of a refused start was not created" test ! -e "$T/never"
check "serve --help lists --min-free with its default" \
	sh -c "'$BERTH_BIN' serve --help | grep -q -- '--min-free' && '$BERTH_BIN' serve --help | grep -q 'BERTH_MIN_FREE, default 1G,2%'"

if ! mount_ns_usable; then
	echo "skip min_free volume part (needs unshare -m, i.e. root or CAP_SYS_ADMIN)"
	exit 0
fi

MIN=$((24 * 1048576))
D=$T/data
mkdir -p "$D"

mount_ns_start
if ! ns mount -t tmpfs -o size=64m tmpfs "$D"; then
	fail "min_free: mounting a tmpfs in the namespace"
	exit 1
fi
avail() { ns df -B1 --output=avail "$D" | tail -1 | tr -d ' '; }

start_berth --gc-grace 1 --min-free 24M || { fail "min_free: berth did not start"; exit 1; }

R=guard/repo
push_mono() {
	req POST "/v2/$R/blobs/uploads/?digest=$(dg "$1")" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$1"
}
# expect_guard NAME: 507 DENIED, the detail names --min-free and the
# figures; the free bytes it gives are left in GUARD_FREE
expect_guard() {
	local d
	expect_error "$1" 507 DENIED
	d=$(jq -r '.errors[0].detail' "$T/b" 2>/dev/null)
	if [[ $d =~ ^free\ space\ on\ the\ data\ volume\ is\ below\ --min-free\ \(([0-9]+)\ bytes\ free,\ $MIN\ required\)$ ]]; then
		GUARD_FREE=${BASH_REMATCH[1]}
		ok "$1: detail names the guard and its figures"
	else
		GUARD_FREE=
		fail "$1: detail names the guard: got '$d'"
	fi
}

# --- what the guard must leave working: an image to pull, one to delete,
# an upload session opened while there was room
mk_image "$R" keep || fail "push keep image blobs"
KEEP_LAYER=$IMG_LAYER
push_manifest "$R" keep "$T/keep.json" "$OCI_MANIFEST" || fail "push keep manifest"
head -c $((10 * 1048576)) /dev/urandom >"$T/big"
push_mono "$T/big"
expect_status "a 10 MiB layer while there is room" 201
BIG=$(dg "$T/big")
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$OCI_MANIFEST" "$OCI_CONFIG" "$IMG_CFG" "$(sz "$T/keep.cfg")" "$OCI_LAYER" "$BIG" "$(sz "$T/big")" >"$T/gone.json"
push_manifest "$R" gone "$T/gone.json" "$OCI_MANIFEST" || fail "push gone manifest"
MGONE=$(dg "$T/gone.json")
req POST "/v2/$R/blobs/uploads/"
expect_status "an upload session opened while there is room" 202
SESSION=$(loc_path)
head -c 100000 /dev/urandom >"$T/chunk"
req PATCH "$SESSION" -H 'Content-Type: application/octet-stream' --data-binary "@$T/chunk"
expect_status "its first chunk" 202

# --- fill with 2 MiB blobs until the guard refuses one
FILLED=0
REFUSED=
for i in $(seq 1 40); do
	f=$T/fill.$i
	head -c $((2 * 1048576)) /dev/urandom >"$f"
	push_mono "$f"
	if [ "$ST" = 201 ]; then
		FILLED=$((FILLED + 1))
		rm -f "$f"
		continue
	fi
	REFUSED=$f
	break
done
if [ -z "$REFUSED" ]; then
	fail "the guard refuses a push once free space is below 24M (40 pushes went through)"
	finish
	exit 1
fi
expect_guard "push below --min-free is 507 DENIED"
FREE=$(avail)
if [ -n "$GUARD_FREE" ] && [ "$GUARD_FREE" -lt "$MIN" ] && [ "$GUARD_FREE" -gt 0 ] &&
	[ "$FREE" -ge $((MIN - 2 * 1048576 - 1048576)) ]; then
	ok "refused before the volume is full: $GUARD_FREE bytes free in the detail, $FREE on the volume, after $FILLED pushes"
else
	fail "refused before the volume is full: detail says '${GUARD_FREE}' free, volume $FREE"
fi
if [ -n "$GUARD_FREE" ] && [ $((GUARD_FREE - FREE)) -le 1048576 ] && [ $((FREE - GUARD_FREE)) -le 1048576 ]; then
	ok "the detail's free bytes are the volume's ($GUARD_FREE vs $FREE)"
else
	fail "the detail's free bytes are the volume's: '${GUARD_FREE}' vs $FREE"
fi
RD=$(dg "$REFUSED")
req HEAD "/v2/$R/blobs/$RD"
expect_status "the refused blob is not visible" 404
n_uploads=$(ns sh -c "ls -A '$D/uploads' | wc -l")
expect_eq "the refused push left no upload file (only the open session's)" 1 "$n_uploads"

# --- every request that adds data is refused
req POST "/v2/$R/blobs/uploads/"
expect_guard "upload start below --min-free"
req POST "/v2/other/repo/blobs/uploads/?mount=$KEEP_LAYER&from=$R"
expect_guard "cross-repository mount below --min-free"
req PATCH "$SESSION" -H 'Content-Type: application/octet-stream' --data-binary "@$T/chunk"
expect_guard "upload chunk below --min-free"
# a big chunk is refused from its headers: its body is not read first
upload_bytes() {
	req GET /metrics
	sed -n 's/^berth_http_request_bytes_total{route="upload"} //p' "$T/b"
}
b0=$(upload_bytes)
head -c $((16 * 1048576)) /dev/zero >"$T/bigchunk"
req PATCH "$SESSION" -H 'Content-Type: application/octet-stream' --data-binary "@$T/bigchunk"
expect_guard "16 MiB chunk below --min-free"
b1=$(upload_bytes)
if [ -n "$b0" ] && [ -n "$b1" ] && [ $((b1 - b0)) -lt 1048576 ]; then
	ok "the refused 16 MiB chunk was not read ($((b1 - b0)) body bytes received)"
else
	fail "the refused 16 MiB chunk was not read: upload body bytes $b0 -> $b1"
fi
rm -f "$T/bigchunk"
req PUT "$SESSION?digest=$(dg "$T/chunk")"
expect_guard "upload end below --min-free"
req PUT "/v2/$R/manifests/again" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/keep.json"
expect_guard "manifest push below --min-free"
req GET "/v2/$R/manifests/again"
expect_status "the refused manifest is not there" 404

# --- what keeps working
req GET "/v2/$R/manifests/keep"
expect_status "manifest pull below --min-free" 200
expect_body_file "manifest pull below --min-free gives the manifest" "$T/keep.json"
req GET "/v2/$R/blobs/$BIG"
expect_status "blob pull below --min-free" 200
expect_eq "blob pull below --min-free has its digest" "$BIG" "$(dg "$T/b")"
req HEAD "/v2/$R/blobs/$KEEP_LAYER"
expect_status "blob HEAD below --min-free" 200
req GET "/v2/$R/tags/list"
expect_jq "tags list below --min-free" .tags '["gone","keep"]'
req GET /v2/_catalog
expect_status "catalog below --min-free" 200
req GET "$SESSION"
expect_status "upload status below --min-free" 204
expect_hdr "the session kept its first chunk only" Range "0-99999"
req GET /readyz
expect_status "ready below --min-free (pulls are served)" 200

# --- a delete and a collection bring pushes back
req DELETE "/v2/$R/manifests/$MGONE"
expect_status "manifest DELETE below --min-free" 202
sleep 2.5 # past --gc-grace 1 (whole seconds)
req POST /v2/_berth/gc
expect_status "collection run below --min-free" 200
AFTER=$(avail)
if [ "$AFTER" -gt "$MIN" ]; then
	ok "the run freed space above the guard ($FREE -> $AFTER bytes free)"
else
	fail "the run freed space above the guard: $FREE -> $AFTER bytes free $(ctx)"
fi
push_mono "$REFUSED"
expect_status "the refused push goes through after the collection" 201
req PATCH "$SESSION" -H 'Content-Type: application/octet-stream' --data-binary "@$T/chunk"
expect_status "the session takes its chunk again" 202
cat "$T/chunk" "$T/chunk" >"$T/chunk2"
req PUT "$SESSION?digest=$(dg "$T/chunk2")"
expect_status "the session ends" 201
req PUT "/v2/$R/manifests/again" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/keep.json"
expect_status "manifest push after the collection" 201
req POST "/v2/other/repo/blobs/uploads/?mount=$KEEP_LAYER&from=$R"
expect_status "mount after the collection" 201

# --- --min-free 0 turns the guard off; a percentage counts the volume
stop_berth
ns dd if=/dev/zero of="$D/filler" bs=1M count=$(($(avail) / 1048576 - 20)) 2>/dev/null
start_berth --gc-grace 1 --min-free 0 || { fail "min_free: berth did not start with 0"; exit 1; }
head -c 1048576 /dev/urandom >"$T/one"
push_mono "$T/one"
expect_status "--min-free 0: a push with $(($(avail) / 1048576)) MiB free goes through" 201
stop_berth
start_berth --gc-grace 1 --min-free 50% || { fail "min_free: berth did not start with 50%"; exit 1; }
grep -q '"msg":"free space on the data volume is below --min-free' "$T/berth.log" &&
	ok "a start below the guard says so in the log" ||
	fail "a start below the guard says so in the log"
push_mono "$T/one"
expect_error "--min-free 50% of 64 MiB: refused with 20 MiB free" 507 DENIED
expect_jq "its detail requires half the volume" .errors[0].detail \
	"\"free space on the data volume is below --min-free ($(avail) bytes free, $((64 * 1048576 / 2)) required)\""

# 507s above are expected answers, not server errors
grep -v -- '-> 507;' "$T/server_errors" >"$T/server_errors.x" || true
mv "$T/server_errors.x" "$T/server_errors"
finish
