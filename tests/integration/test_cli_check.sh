#!/usr/bin/env bash
# `berth check` and the data-directory lock: a registry filled over HTTP
# checks clean once stopped; while a server runs, check and a second serve
# on the same directory are refused (exit 2, the holder's pid named); a
# deleted blob file is found (exit 1); an old orphan file is removed by
# --repair, a young one kept; the registry serves as before afterwards.
. "$(dirname "$0")/api_lib.sh"

# check_run ARGS...: berth check; exit status in RC, stdout in OUT, stderr
# in ERR.
check_run() {
	"$BERTH_BIN" check "$@" >"$T/check.out" 2>"$T/check.err"
	RC=$?
	OUT=$(cat "$T/check.out")
	ERR=$(cat "$T/check.err")
}
# expect_check NAME EXIT ERE: exit status EXIT and stdout matching ERE.
expect_check() {
	if [ "$RC" = "$2" ] && [[ $OUT =~ $3 ]]; then
		ok "$1"
	else
		fail "$1: want exit $2 and /$3/; got exit $RC, stdout '${OUT:0:600}', stderr '${ERR:0:300}'"
	fi
}
# blob_file DIGEST: the path of a blob's file
blob_file() { local h=${1#sha256:}; echo "$T/data/blobs/sha256/${h:0:2}/$h"; }

out=$("$BERTH_BIN" --help 2>&1)
case "$out" in *check*) ok "help lists check" ;; *) fail "help lists check: $out" ;; esac
check_run --help
expect_check "check --help" 0 "--repair.*--deep.*--grace"
check_run --bogus
[ "$RC" = 2 ] && [[ $ERR == *--bogus* ]] && ok "check: unknown flag, exit 2" || fail "check --bogus: $RC $ERR"
check_run --data "$T/nothing-here"
[ "$RC" = 2 ] && [[ $ERR == *"not a berth data directory"* ]] && [ ! -e "$T/nothing-here" ] &&
	ok "check: not a data directory, exit 2, nothing created" || fail "check missing dir: $RC $ERR"

start_registry || { fail "cli_check: registry did not start"; exit 1; }
R=check/app
mk_image "$R" a || fail "push image a"
A_LAYER=$IMG_LAYER
push_manifest "$R" v1 "$T/a.json" "$OCI_MANIFEST" || fail "push v1"
mk_image "$R" b || fail "push image b"
B_LAYER=$IMG_LAYER
push_manifest "$R" v2 "$T/b.json" "$OCI_MANIFEST" || fail "push v2"
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s},{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$OCI_INDEX" "$OCI_MANIFEST" "$(dg "$T/a.json")" "$(sz "$T/a.json")" \
	"$OCI_MANIFEST" "$(dg "$T/b.json")" "$(sz "$T/b.json")" >"$T/index.json"
push_manifest "$R" latest "$T/index.json" "$OCI_INDEX" || fail "push index"
mkblob lone "a blob nothing references"
push_blob "$R" "$T/lone" || fail "push lone blob"

# While the server runs: check and a second server are refused.
check_run --data "$T/data"
if [ "$RC" = 2 ] && [ -z "$OUT" ] &&
	[[ $ERR == *"data directory $T/data is in use by another berth process (pid $BERTH_PID)"* ]]; then
	ok "check refused while the server runs (exit 2, pid named)"
else
	fail "check while serving: exit $RC, stdout '$OUT', stderr '$ERR'"
fi
out=$("$BERTH_BIN" serve --listen "127.0.0.1:$(free_port)" --data "$T/data" 2>&1)
rc=$?
expect_eq "second serve on the same data directory exits 2" 2 "$rc"
expect_eq "second serve names the holder" \
	"berth: data directory $T/data is in use by another berth process (pid $BERTH_PID)" "$out"
kill -0 "$BERTH_PID" 2>/dev/null && ok "first server unaffected" || fail "first server died"

stop_berth
check_run --data "$T/data"
expect_check "stopped registry checks clean" 0 "^check: 5 blobs, 3 manifests, 3 tags: 0 problems$"
check_run --data "$T/data" --deep
expect_check "deep check clean" 0 "^check: 5 blobs, 3 manifests, 3 tags: 0 problems$"
[ "$(cat "$T/data/lock" 2>/dev/null)" = "" ] && ok "lock file emptied after check" ||
	fail "lock file still holds $(cat "$T/data/lock")"

# A blob file deleted behind berth's back.
cp "$(blob_file "$B_LAYER")" "$T/b.layer.saved"
rm "$(blob_file "$B_LAYER")"
check_run --data "$T/data"
expect_check "missing blob file: exit 1, named" 1 "blob $B_LAYER : file missing"
expect_check "missing blob file: summary" 1 "check: 5 blobs, 3 manifests, 3 tags: 1 problem$"
check_run --data "$T/data" --repair
expect_check "missing blob file cannot be repaired" 1 "blob $B_LAYER : file missing \\(cannot be repaired\\).*1 left$"
cp "$T/b.layer.saved" "$(blob_file "$B_LAYER")"

# A blob file whose content changed: only --deep reads it.
cp "$(blob_file "$A_LAYER")" "$T/a.layer.saved"
printf 'X' | dd of="$(blob_file "$A_LAYER")" bs=1 count=1 conv=notrunc 2>/dev/null
check_run --data "$T/data"
expect_check "changed content unseen without --deep" 0 "0 problems$"
check_run --data "$T/data" --deep
expect_check "changed content found by --deep" 1 "blob $A_LAYER : content does not match its digest"
cp "$T/a.layer.saved" "$(blob_file "$A_LAYER")"

# Orphan files: a crash between rename and index commit.
printf 'orphaned bytes' >"$T/orphan"
OLD_D=$(dg "$T/orphan")
mkdir -p "$(dirname "$(blob_file "$OLD_D")")"
cp "$T/orphan" "$(blob_file "$OLD_D")"
touch -d '3 hours ago' "$(blob_file "$OLD_D")"
printf 'young orphan' >"$T/young"
YOUNG_D=$(dg "$T/young")
mkdir -p "$(dirname "$(blob_file "$YOUNG_D")")"
cp "$T/young" "$(blob_file "$YOUNG_D")"
check_run --data "$T/data"
expect_check "orphan files found" 1 "blob $OLD_D : orphan file"
expect_check "orphan files counted" 1 ": 2 problems$"
check_run --data "$T/data" --repair
expect_check "repair removes the old orphan and says so" 1 "repaired: removed orphan file $(blob_file "$OLD_D")"
expect_check "repair keeps the young orphan" 1 "note: kept 1 leftover.*2 problems, 1 repaired, 1 left$"
[ ! -e "$(blob_file "$OLD_D")" ] && [ -e "$(blob_file "$YOUNG_D")" ] &&
	ok "old orphan gone, young one still there" || fail "orphan files after repair"
check_run --data "$T/data" --repair --grace 0
expect_check "--grace 0 removes the young orphan" 0 "repaired: removed orphan file $(blob_file "$YOUNG_D").*1 repaired, 0 left$"
check_run --data "$T/data" --deep
expect_check "clean after the repairs" 0 "^check: 5 blobs, 3 manifests, 3 tags: 0 problems$"

# The registry serves as before, and the lock is free again.
start_registry || { fail "registry did not restart after check"; exit 1; }
req GET "/v2/$R/manifests/latest"
expect_status "index served after check" 200
req GET "/v2/$R/blobs/$B_LAYER"
expect_body_file "restored layer served" "$T/b.layer"
finish
