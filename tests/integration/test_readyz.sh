#!/usr/bin/env bash
# Probes: /readyz answers 503 with a reason while the data directory
# cannot serve (renamed away, an empty directory in its place, its index
# file gone, and, in a mount namespace of the test's own, a tmpfs mounted
# over it or the volume remounted read-only) and 200 again once it is
# back; /healthz (liveness) stays 200 throughout, and each change is
# logged once.
. "$(dirname "$0")/api_lib.sh"

D=$T/data
start_berth || { fail "readyz: berth did not start"; exit 1; }
mk_image app/web v1 || fail "readyz: push blobs"
push_manifest app/web v1 "$T/v1.json" "$OCI_MANIFEST" || fail "readyz: push manifest"

# probe NAME WANT_READY WANT_REASON: /readyz's status and body, /healthz
probe() {
	req GET /readyz
	if [ "$2" = 200 ]; then
		expect_status "$1: /readyz 200" 200
		expect_body "$1: /readyz says ok" ok
	else
		expect_status "$1: /readyz 503" 503
		expect_eq "$1: /readyz gives the reason" "not ready: $3" "$(body)"
		expect_eq "$1: plain text" text/plain "$(ctype)"
	fi
	req HEAD /readyz
	expect_status "$1: HEAD /readyz" "$2"
	req GET /healthz
	expect_status "$1: /healthz stays 200" 200
}

probe "at start" 200
mv "$D" "$T/away"
probe "data directory renamed away" 503 "data directory is gone"
mkdir "$D"
probe "an empty directory in its place" 503 "data directory is not the one opened at start"
rmdir "$D"
mv "$T/away" "$D"
probe "data directory back" 200
req GET /v2/app/web/manifests/v1
expect_status "pulls work once it is back" 200

mv "$D/meta/data.mdb" "$D/meta/data.mdb.x"
probe "index file gone" 503 "index file meta/data.mdb is gone"
mv "$D/meta/data.mdb.x" "$D/meta/data.mdb"
probe "index file back" 200
rmdir "$D/uploads"
probe "uploads/ gone" 503 "uploads/ is not writable (No such file or directory)"
mkdir "$D/uploads"
probe "uploads/ back" 200

# each change is one log line, not one per probe
expect_eq "not-ready logged once per outage" 3 \
	"$(grep -c '"msg":"data directory not usable, not ready"' "$T/berth.log")"
expect_eq "back-to-ready logged once per outage" 3 \
	"$(grep -c '"msg":"data directory usable again"' "$T/berth.log")"
grep -q '"reason":"data directory is gone"' "$T/berth.log" &&
	ok "the log gives the reason" || fail "the log gives the reason"

if ! mount_ns_usable; then
	echo "skip readyz mount part (needs unshare -m, i.e. root or CAP_SYS_ADMIN)"
	grep -v -- '/readyz -> 503;' "$T/server_errors" >"$T/server_errors.x" || true
	mv "$T/server_errors.x" "$T/server_errors"
	finish
	exit 0
fi

# ---- in a mount namespace of the test's own: a tmpfs over the data
# directory, and blobs/ read-only (a volume ext4 remounted read-only after
# an error looks the same to access(2); the data directory itself cannot
# be remounted read-only while LMDB holds its file open for writing)
stop_berth
mount_ns_start
# blobs/ as a mount point of its own, so it can go read-only
if ! ns mount --bind "$D/blobs" "$D/blobs"; then
	fail "readyz: bind mount in the namespace"
	finish
	exit 1
fi
start_berth || { fail "readyz: berth did not start in the namespace"; exit 1; }
probe "in the namespace" 200

ns mount -t tmpfs -o size=1m tmpfs "$D"
probe "a tmpfs over the data directory" 503 "data directory is not the one opened at start"
ns umount "$D"
probe "the tmpfs gone" 200

ns mount -o remount,bind,ro "$D/blobs"
probe "blobs/ read-only" 503 "blobs/sha256/ is not writable (Read-only file system)"
req GET "/v2/app/web/blobs/$IMG_LAYER"
expect_status "pulls still answer with blobs/ read-only" 200
# back to one mount (with blobs/ a mount of its own, a push's rename
# from uploads/ would cross mounts: EXDEV)
ns umount "$D/blobs"
probe "blobs/ writable again" 200
mkblob after "pushed after the probes"
push_blob app/web "$T/after"
expect_status "pushes work again" 201

# the 503s above are the probe's answers, not server errors
grep -v -- '/readyz -> 503;' "$T/server_errors" >"$T/server_errors.x" || true
mv "$T/server_errors.x" "$T/server_errors"
finish
