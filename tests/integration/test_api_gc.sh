#!/usr/bin/env bash
# Garbage collection through the API and `berth gc`: three images sharing a
# base layer, two tags and one manifest deleted, then a dry run and a run;
# the report's bytes equal what the test computes, the files are gone, the
# shared layer and the kept image still pull byte for byte, `berth check`
# is clean. Also: abandoned uploads, bad requests, logs and metrics.
. "$(dirname "$0")/api_lib.sh"
REGISTRY_UNDER_TEST=berth

GRACE=2
start_berth --gc-grace "$GRACE" --upload-ttl 2

# image PREFIX REPO: config + own layer + the shared base, manifest in
# $T/PREFIX.json; blob files $T/PREFIX.cfg, $T/PREFIX.layer.
mkblob base.layer "the shared base layer, bytes of a distro $RANDOM"
image() {
	local p=$1 repo=$2
	mkblob "$p.cfg" "{\"architecture\":\"amd64\",\"os\":\"linux\",\"x\":\"$p\"}"
	mkblob "$p.layer" "layer of $p $RANDOM$RANDOM"
	push_blob "$repo" "$T/base.layer" && push_blob "$repo" "$T/$p.cfg" &&
		push_blob "$repo" "$T/$p.layer" || return 1
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s},{"mediaType":"%s","digest":"%s","size":%s}]}' \
		"$OCI_MANIFEST" "$OCI_CONFIG" "$(dg "$T/$p.cfg")" "$(sz "$T/$p.cfg")" \
		"$OCI_LAYER" "$(dg "$T/base.layer")" "$(sz "$T/base.layer")" \
		"$OCI_LAYER" "$(dg "$T/$p.layer")" "$(sz "$T/$p.layer")" >"$T/$p.json"
}
blob_file() { local d=${1#sha256:}; echo "$T/data/blobs/sha256/${d:0:2}/$d"; }
nfiles() { find "$T/data/blobs" -type f | wc -l; }

image one app/one && push_manifest app/one v1 "$T/one.json" "$OCI_MANIFEST" &&
	push_manifest app/one latest "$T/one.json" "$OCI_MANIFEST"
image two app/two && push_manifest app/two v1 "$T/two.json" "$OCI_MANIFEST"
image three app/three && push_manifest app/three v1 "$T/three.json" "$OCI_MANIFEST"
expect_eq "7 blob files before" 7 "$(nfiles)" # base + 3 configs + 3 layers
# What must go: one's and two's config and layer; the base stays (three).
want_bytes=$(($(sz "$T/one.cfg") + $(sz "$T/one.layer") + $(sz "$T/two.cfg") + $(sz "$T/two.layer")))
gone=("$(dg "$T/one.cfg")" "$(dg "$T/one.layer")" "$(dg "$T/two.cfg")" "$(dg "$T/two.layer")")
kept=("$(dg "$T/base.layer")" "$(dg "$T/three.cfg")" "$(dg "$T/three.layer")")

# Nothing is garbage yet.
req POST /v2/_berth/gc
expect_status "gc with nothing to collect answers 200" 200
expect_jq "nothing deleted" '.manifests.deleted + .blobs.deleted + .uploads.deleted' 0
expect_jq "report is not a dry run" '.dry_run' false

req DELETE /v2/app/one/manifests/v1
expect_status "delete tag one:v1" 202
req DELETE /v2/app/one/manifests/latest
expect_status "delete tag one:latest" 202
req DELETE "/v2/app/two/manifests/$(dg "$T/two.json")"
expect_status "delete manifest two by digest" 202

# Within the grace of the pushes nothing goes.
out=$("$BERTH_BIN" gc --server "$URL" --json 2>&1)
expect_eq "gc within the grace deletes nothing" 0 "$(jq '.blobs.deleted + .manifests.deleted' <<<"$out")"
check "the report says what waits" test "$(jq '.waiting.count' <<<"$out")" -ge 1
check "the report has the next due time" jq -e '.waiting.next_due | test("Z$")' <<<"$out"
sleep $((GRACE + 1))

out=$("$BERTH_BIN" gc --server "$URL" --dry-run --json 2>&1)
expect_eq "dry run: flagged" true "$(jq '.dry_run' <<<"$out")"
expect_eq "dry run: 1 manifest" 1 "$(jq '.manifests.deleted' <<<"$out")"
expect_eq "dry run: 4 blobs" 4 "$(jq '.blobs.deleted' <<<"$out")"
expect_eq "dry run: bytes freed" "$want_bytes" "$(jq '.bytes_freed' <<<"$out")"
expect_eq "dry run deletes no file" 7 "$(nfiles)"
dry_items=$(jq -c '[.deleted[] | .kind + " " + .digest] | sort' <<<"$out")

out=$("$BERTH_BIN" gc --server "$URL" --json 2>&1)
rc=$?
expect_eq "berth gc exits 0" 0 "$rc"
expect_eq "run: 1 manifest (two's went with its delete)" 1 "$(jq '.manifests.deleted' <<<"$out")"
expect_eq "run: 4 blobs" 4 "$(jq '.blobs.deleted' <<<"$out")"
expect_eq "run: bytes freed = sizes of the blobs no manifest references" "$want_bytes" "$(jq '.bytes_freed' <<<"$out")"
expect_eq "run: blob bytes = bytes freed" "$want_bytes" "$(jq '.blobs.bytes' <<<"$out")"
expect_eq "run deletes what the dry run listed" "$dry_items" "$(jq -c '[.deleted[] | .kind + " " + .digest] | sort' <<<"$out")"
expect_eq "every deletion has a reason" unreferenced "$(jq -r '[.deleted[].reason] | unique | join(",")' <<<"$out")"
expect_eq "nothing waits" 0 "$(jq '.waiting.count' <<<"$out")"
expect_eq "3 blob files left" 3 "$(nfiles)"
for d in "${gone[@]}"; do
	check "file of $d removed" test ! -e "$(blob_file "$d")"
	req GET "/v2/app/one/blobs/$d"
	expect_status "collected blob $d answers 404" 404
done
for d in "${kept[@]}"; do check "file of $d kept" test -s "$(blob_file "$d")"; done
# The shared layer and the kept image still pull byte for byte.
req GET /v2/app/three/manifests/v1
expect_body_file "three's manifest pulls" "$T/three.json"
for f in base.layer three.cfg three.layer; do
	req GET "/v2/app/three/blobs/$(dg "$T/$f")"
	expect_body_file "three's $f pulls byte for byte" "$T/$f"
done
req GET "/v2/app/one/manifests/$(dg "$T/one.json")"
expect_error "collected manifest one: 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN

# A second run finds nothing; the summary line form.
line=$("$BERTH_BIN" gc --server "$URL" 2>&1)
expect_eq "berth gc summary exits 0" 0 "$?"
check "summary line says nothing deleted" grep -q "deleted 0 manifests, 0 blobs" <<<"$line"

# Abandoned uploads: no byte for --upload-ttl (2 s).
req POST /v2/app/one/blobs/uploads/
up=$(loc_path)
req PATCH "$up" -H 'Content-Type: application/octet-stream' --data-binary 'half a layer'
expect_status "a PATCH of half a layer" 202
uuid=${up##*/}
uuid=${uuid%%\?*}
check "upload file exists" test -e "$T/data/uploads/$uuid"
sleep 3
out=$("$BERTH_BIN" gc --server "$URL" --json 2>&1)
expect_eq "abandoned upload purged" 1 "$(jq '.uploads.deleted' <<<"$out")"
expect_eq "its bytes counted" 12 "$(jq '.uploads.bytes' <<<"$out")"
expect_eq "reported as abandoned" "upload $uuid abandoned" "$(jq -r '.deleted[0] | .kind + " " + .upload + " " + .reason' <<<"$out")"
check "upload file removed" test ! -e "$T/data/uploads/$uuid"
req GET "$up"
expect_error "purged upload: 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN

# Bad requests to the endpoint.
req POST /v2/_berth/gc -d '{"dry_run":"yes"}'
expect_error "dry_run must be a boolean: 400 UNSUPPORTED" 400 UNSUPPORTED
req POST /v2/_berth/gc -d '{"dryrun":true}'
expect_status "unknown key: 400" 400
req POST /v2/_berth/gc -d 'not json'
expect_status "not JSON: 400" 400
req GET /v2/_berth/gc
expect_status "GET on the gc endpoint: 405" 405

# Logs: one JSON line per deletion; metrics.
n=$(grep '"msg":"gc deleted"' "$T/berth.log" | jq -r 'select(.kind=="blob") | .digest' | sort | tr '\n' ' ')
expect_eq "one log line per deleted blob" "$(printf '%s\n' "${gone[@]}" | sort | tr '\n' ' ')" "$n"
expect_eq "the manifest's log line carries repository, size, reason" '["app/one",true,"unreferenced"]' \
	"$(grep '"msg":"gc deleted"' "$T/berth.log" | jq -c 'select(.kind=="manifest") | [.repository, (.size > 0), .reason]')"
check "dry run logged as would-delete" grep -q '"msg":"gc would delete"' "$T/berth.log"
req GET /metrics
m() { awk -v k="$1" '$1==k {print $2}' "$T/b"; }
expect_eq "metric: blobs deleted" 4 "$(m 'berth_gc_deleted_total{kind="blob"}')"
expect_eq "metric: blob bytes deleted" "$want_bytes" "$(m 'berth_gc_deleted_bytes_total{kind="blob"}')"
expect_eq "metric: uploads deleted" 1 "$(m 'berth_gc_deleted_total{kind="upload"}')"
expect_eq "metric: storage blobs" 3 "$(m berth_storage_blobs)"
expect_eq "metric: storage bytes" "$(($(sz "$T/base.layer") + $(sz "$T/three.cfg") + $(sz "$T/three.layer")))" "$(m berth_storage_blob_bytes)"
expect_eq "metric: queue empty" 0 "$(m berth_gc_queue_items)"
check "metric: runs counted" test "$(m 'berth_gc_runs_total{result="ok"}')" -ge 6

finish
if [ -x "$BERTH_BIN" ] && "$BERTH_BIN" help 2>&1 | grep -q '^  check'; then
	out=$("$BERTH_BIN" check --data "$T/data" 2>&1)
	expect_eq "berth check is clean after the runs ($out)" 0 "$?"
else
	fail "berth check is missing"
fi

# --gc-interval runs the collector inside the server.
mkblob lone "an unreferenced blob $RANDOM"
start_berth --gc-grace 1 --gc-interval 1
push_blob app/one "$T/lone"
for _ in $(seq 1 40); do
	[ -e "$(blob_file "$(dg "$T/lone")")" ] || break
	sleep 0.25
done
check "--gc-interval collected an unreferenced blob" test ! -e "$(blob_file "$(dg "$T/lone")")"
check "interval runs are logged" grep -q '"trigger":"interval"' "$T/berth.log"
stop_berth
