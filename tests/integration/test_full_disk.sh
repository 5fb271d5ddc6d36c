#!/usr/bin/env bash
# A full data volume: berth serves from a 48 MiB tmpfs mounted in a mount
# namespace of the test's own (a holder process keeps it alive across
# restarts). Pushes fill it until one is refused with 507 DENIED and
# nothing of it is visible; with the volume at 0 bytes free, manifest and
# tag DELETEs and a collection run still work and free space; pushes work
# again; after a restart every acknowledged blob and manifest is there.
# The free-space guard is off (--min-free 0): this is what happens when the
# volume really fills (test_min_free.sh has the guard).
. "$(dirname "$0")/api_lib.sh"

if ! mount_ns_usable; then
	echo "skip full_disk (needs unshare -m, i.e. root or CAP_SYS_ADMIN)"
	exit 0
fi

NOSPACE_DETAIL="no space left on the data volume"
D=$T/data
mkdir -p "$D"

mount_ns_start
if ! ns mount -t tmpfs -o size=48m tmpfs "$D"; then
	fail "full_disk: mounting a tmpfs in the namespace"
	exit 1
fi
# free bytes of the data volume, seen from inside the namespace
avail() { ns df -B1 --output=avail "$D" | tail -1 | tr -d ' '; }

start_berth --gc-grace 1 --min-free 0 || { fail "full_disk: berth did not start"; exit 1; }

R=full/repo
# push_mono FILE: one monolithic POST ?digest= with the whole body
push_mono() {
	req POST "/v2/$R/blobs/uploads/?digest=$(dg "$1")" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$1"
}
# expect_nospace NAME: 507, OCI error JSON, DENIED with the detail
expect_nospace() {
	expect_error "$1" 507 DENIED
	expect_jq "$1: detail says the volume is full" '.errors[0].detail' "\"$NOSPACE_DETAIL\""
}
# blob_file DIGEST: its file under blobs/ (inside the namespace), if any
blob_file() {
	local h=${1#sha256:}
	ns sh -c "ls '$D/blobs/sha256/${h:0:2}/$h' 2>/dev/null"
}

# --- two small images, pushed while there is room: one kept, one deleted
mk_image "$R" keep || fail "push keep image blobs"
KEEP_CFG=$IMG_CFG KEEP_LAYER=$IMG_LAYER
push_manifest "$R" keep "$T/keep.json" "$OCI_MANIFEST" || fail "push keep manifest"
MKEEP=$(dg "$T/keep.json")
mk_image "$R" gone || fail "push gone image blobs"
GONE_LAYER=$IMG_LAYER
push_manifest "$R" gone1 "$T/gone.json" "$OCI_MANIFEST" || fail "push gone1"
push_manifest "$R" gone2 "$T/gone.json" "$OCI_MANIFEST" || fail "push gone2"
MGONE=$(dg "$T/gone.json")
# Many tags on it: deleting it rewrites dozens of index pages, more than
# LMDB's freelist holds, so the delete's commit must find new pages (on a
# full volume without head room it failed: 500 "Input/output error").
NTAGS=${FULL_DISK_TAGS:-1500}
urls=()
for i in $(seq 1 "$NTAGS"); do urls+=("$URL/v2/$R/manifests/t$i"); done
printf '%s\n' "${urls[@]}" | xargs -n 250 curl -sS -o /dev/null -w '%{http_code}\n' \
	-X PUT -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/gone.json" >"$T/tagput"
expect_eq "$NTAGS more tags on the image to delete" "$NTAGS" "$(grep -c '^201$' "$T/tagput")"

# --- fill the volume with 1-4 MiB blobs until a push is refused
ACKED=() # digests answered 201 (unreferenced: the collector takes them)
FAILED=
for i in $(seq 1 40); do
	f=$T/fill.$i
	head -c $(((1 + RANDOM % 4) * 1048576)) /dev/urandom >"$f"
	push_mono "$f"
	if [ "$ST" = 201 ]; then
		ACKED+=("$(dg "$f")")
		rm -f "$f"
		continue
	fi
	FAILED=$f
	break
done
if [ -z "$FAILED" ]; then
	fail "a push is refused once the volume is full (40 pushes went through)"
else
	ok "a push is refused once the volume is full (after ${#ACKED[@]} pushes)"
	expect_nospace "push on a full volume is 507 DENIED"
	FD=$(dg "$FAILED")
	req HEAD "/v2/$R/blobs/$FD"
	expect_status "refused blob is not visible (HEAD 404)" 404
	req GET "/v2/$R/blobs/$FD"
	expect_error "refused blob is not visible (GET 404)" 404 BLOB_UNKNOWN
	expect_eq "refused blob has no file under blobs/" "" "$(blob_file "$FD")"
	expect_eq "refused one-shot upload left no file under uploads/" "" \
		"$(ns sh -c "ls -A '$D/uploads'")"
fi
# the acknowledged ones are all there
bad=0
for d in "${ACKED[@]}"; do
	req HEAD "/v2/$R/blobs/$d"
	[ "$ST" = 200 ] || bad=$((bad + 1))
done
expect_eq "every acknowledged blob is served on the full volume" 0 "$bad"

# --- 0 bytes free: fill what is left with a file of the test's
ns dd if=/dev/zero of="$D/filler" bs=64k 2>/dev/null
expect_eq "the volume has 0 bytes free" 0 "$(avail)"
f=$T/small
head -c 300000 /dev/urandom >"$f"
push_mono "$f"
expect_nospace "push at 0 bytes free is 507 DENIED"
expect_eq "refused push at 0 free has no file under blobs/" "" "$(blob_file "$(dg "$f")")"
req POST "/v2/$R/blobs/uploads/"
if [ "$ST" = 202 ]; then
	# session created from the index's head room: its PATCH must fail
	# cleanly, the session stays resumable
	L=$(loc_path)
	req PATCH "$L" -H 'Content-Type: application/octet-stream' --data-binary "@$f"
	expect_nospace "chunk at 0 bytes free is 507 DENIED"
	req GET "$L"
	expect_status "the session survives the refused chunk" 204
	expect_hdr "nothing of the refused chunk is kept" Range "0-0"
	req DELETE "$L"
	expect_status "the session can be cancelled at 0 free" 204
else
	expect_nospace "upload start at 0 bytes free is 507 DENIED"
fi

# deletes are how an operator gets out
req DELETE "/v2/$R/manifests/gone2"
expect_status "tag DELETE at 0 bytes free is 202" 202
req DELETE "/v2/$R/manifests/$MGONE"
expect_status "manifest DELETE at 0 bytes free is 202" 202
req GET "/v2/$R/manifests/gone1"
expect_error "deleted manifest's tag is gone" 404 MANIFEST_UNKNOWN
req GET "/v2/$R/manifests/keep"
expect_status "the kept manifest still serves" 200

FREE0=$(avail)
sleep 2.5 # past --gc-grace 1 (whole seconds)
req POST /v2/_berth/gc
expect_status "collection run at 0 bytes free is 200" 200
FREE1=$(avail)
if [ "$FREE1" -gt $((FREE0 + 4 * 1048576)) ]; then
	ok "the run freed space ($FREE0 -> $FREE1 bytes free)"
else
	fail "the run freed space: $FREE0 -> $FREE1 bytes free $(ctx)"
fi
req HEAD "/v2/$R/blobs/$GONE_LAYER"
expect_status "the deleted image's layer was collected" 404
if [ ${#ACKED[@]} -gt 0 ]; then
	req HEAD "/v2/$R/blobs/${ACKED[0]}"
	expect_status "an unreferenced filler blob was collected" 404
	expect_eq "its file is gone" "" "$(blob_file "${ACKED[0]}")"
fi
ns rm -f "$D/filler"

# --- pushes work again
AFTER=()
for i in 1 2 3; do
	f=$T/after.$i
	head -c $((i * 1048576)) /dev/urandom >"$f"
	push_mono "$f"
	expect_status "push $i after the collection is 201" 201
	AFTER+=("$f")
done
mk_image "$R" again || fail "push again image blobs"
push_manifest "$R" again "$T/again.json" "$OCI_MANIFEST"
expect_status "manifest push after the collection is 201" 201
MAGAIN=$(dg "$T/again.json")

# --- restart in the same namespace: what was acknowledged is there
stop_berth
expect_eq "berth exits 0 on SIGTERM" 0 "$?"
start_berth --gc-grace 1 --min-free 0 || { fail "full_disk: berth did not start again"; exit 1; }
for f in "${AFTER[@]}"; do
	d=$(dg "$f")
	req GET "/v2/$R/blobs/$d"
	expect_status "blob $(basename "$f") is there after the restart" 200
	expect_eq "blob $(basename "$f") has its digest after the restart" "$d" "$(dg "$T/b")"
done
for d in "$KEEP_CFG" "$KEEP_LAYER"; do
	req GET "/v2/$R/blobs/$d"
	expect_eq "kept image's blob $d has its digest after the restart" "$d" "$(dg "$T/b")"
done
for ref in keep again; do
	req GET "/v2/$R/manifests/$ref"
	expect_status "manifest $ref is there after the restart" 200
done
req GET "/v2/$R/manifests/keep"
expect_eq "manifest keep has its digest" "$MKEEP" "$(dg "$T/b")"
req GET "/v2/$R/manifests/again"
expect_eq "manifest again has its digest" "$MAGAIN" "$(dg "$T/b")"

# --- offline check: no blob file without its index row (a push whose
# index write was refused removes the file it had put in place)
stop_berth
out=$(ns "$REAL_BIN" check --data "$D" 2>&1)
echo "$out" | sed 's/^/  check: /'
expect_eq "berth check finds no orphan blob file after the full volume" 0 \
	"$(echo "$out" | grep -c 'orphan file')"
expect_eq "berth check finds every indexed blob's file, of its size" 0 \
	"$(echo "$out" | grep -c 'file missing\|: file size')"
start_berth --gc-grace 1 --min-free 0 || { fail "full_disk: berth did not start after the check"; exit 1; }

# 507s above are expected answers, not server errors: keep finish's
# 5xx check for everything else
grep -v -- '-> 507;' "$T/server_errors" >"$T/server_errors.x" || true
mv "$T/server_errors.x" "$T/server_errors"
finish
