#!/usr/bin/env bash
# The review-app life cycle with real clients: skopeo and docker push three
# review images and a main image (sharing a base layer), pulls of main run
# all along (curl, like kubelet's runtime, and containerd's ctr), two review
# apps are deleted (skopeo delete, a tag DELETE), `berth gc` collects them
# online; main and the remaining review app still pull with every client,
# the collected ones are gone with their files, `berth check` is clean.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh

export CONTAINERD_SNAPSHOTTER=native
GRACE=3
why() { echo "$1 ($(tail_msg "$T/last.out"))"; }
sk() { run skopeo --policy "$POLICY" "$@"; }
c() { run ctr -a "$CTD_SOCK" -n berth-gc "$@"; }
nfiles() { find "$T/data/blobs" -type f | wc -l; }
blob_file() { local d=${1#sha256:}; echo "$T/data/blobs/sha256/${d:0:2}/$d"; }

if ! start_berth --gc-grace "$GRACE"; then
	fail "gc.clients: berth did not start"
	exit 1
fi
L=$T/layout
for n in main pr-1 pr-2 pr-3; do
	make_oci_image "$L" "$n" "hello from $n" || { fail "gc.clients: build $n"; exit 1; }
	eval "M_${n//-/_}=\$IMG_MANIFEST_DIGEST C_${n//-/_}=\$IMG_CONFIG_DIGEST A_${n//-/_}=\${IMG_LAYERS##* }"
done
BASE=${IMG_LAYERS%% *} # the same base layer in every image
for n in main pr-1 pr-2; do
	sk copy --dest-tls-verify=false "oci:$L:$n" "docker://$REG/review/app:$n" ||
		{ fail "gc.clients: skopeo copy $n: $(why)"; exit 1; }
done
check "skopeo pushed 3 images sharing a base layer" test "$(nfiles)" -eq 7

# docker pushes pr-3 (loaded from the layout through skopeo's docker-archive).
if start_dockerd; then
	sk copy "oci:$L:pr-3" "docker-archive:$T/pr3.tar:review/web:pr-3" &&
		run "$DOCKER" load -i "$T/pr3.tar" &&
		run "$DOCKER" tag review/web:pr-3 "$REG/review/web:pr-3" &&
		run "$DOCKER" push "$REG/review/web:pr-3"
	check "docker pushed review/web:pr-3" test "$?" = 0
else
	fail "gc.clients: dockerd did not start"
fi
WEB=$(reg_head_digest review/web pr-3)
check "review/web:pr-3 is in the registry" test -n "$WEB"

if ! start_containerd; then
	fail "gc.clients: containerd did not start"
	exit 1
fi
c images pull --plain-http "$REG/review/app:main"
check "ctr pulled main before the deletes" test "$?" = 0

# Pulls of main run during the deletes and the collection: manifest, then
# every blob it lists, compared with the layout's bytes.
pull_main() {
	local i=0 bad=0 man d
	while [ ! -e "$T/stop" ] && [ $i -lt 2000 ]; do
		i=$((i + 1))
		man=$(curl -sS --max-time 2 -H "Accept: $MANIFEST_ACCEPT" "$URL/v2/review/app/manifests/main") || { bad=$((bad + 1)); continue; }
		for d in $(jq -r '.config.digest, .layers[].digest' <<<"$man" 2>/dev/null); do
			[ "$(curl -sS --max-time 2 "$URL/v2/review/app/blobs/$d" | sha256sum | cut -d' ' -f1)" = "${d#sha256:}" ] ||
				bad=$((bad + 1))
		done
	done
	echo "$i $bad" >"$T/pulls"
}
pull_main &
PULLER=$!

# The review apps age past the grace; then PR 1 and PR 2 close.
sleep $((GRACE + 1))
sk delete --tls-verify=false "docker://$REG/review/app:pr-1"
check "skopeo delete of review/app:pr-1" test "$?" = 0
check "tag DELETE of review/app:pr-2" test "$(reg_code DELETE /v2/review/app/manifests/pr-2)" = 202

out=$("$BERTH_BIN" gc --server "$URL" --json 2>"$T/gc.err")
gc_rc=$?
check "berth gc exits 0 ($(cat "$T/gc.err"))" test "$gc_rc" = 0
# pr-1's manifest went with skopeo's delete (by digest); pr-2's with gc.
expect_eq "1 manifest collected (pr-2's)" 1 "$(jq '.manifests.deleted' <<<"$out")"
# pr-1 and pr-2: each a config and an app layer; the base stays for main.
expect_eq "4 blobs collected" 4 "$(jq '.blobs.deleted' <<<"$out")"
want=$(for d in "$C_pr_1" "$A_pr_1" "$C_pr_2" "$A_pr_2"; do stat -c %s "$L/blobs/sha256/${d#sha256:}"; done | awk '{ s += $1 } END { print s }')
expect_eq "bytes freed = the two apps' configs and layers" "$want" "$(jq '.bytes_freed' <<<"$out")"
for d in "$C_pr_1" "$A_pr_1" "$C_pr_2" "$A_pr_2"; do
	check "file $d removed" test ! -e "$(blob_file "$d")"
done
# docker re-compresses what it loaded: pr-3's blobs are what its manifest
# in the registry lists.
WEB_BLOBS=$(reg_manifest review/web pr-3 | jq -r '.config.digest, .layers[].digest')
for d in "$BASE" "$C_main" "$A_main" $WEB_BLOBS; do
	check "file $d kept" test -s "$(blob_file "$d")"
done
touch "$T/stop"
wait "$PULLER"
read -r npulls nbad <"$T/pulls"
check "main pulled $npulls times during deletes and collection" test "$npulls" -gt 3
expect_eq "no pull of main failed or mismatched" 0 "$nbad"

# Every client still pulls what is left; the collected images are gone.
c images rm "$REG/review/app:main" >/dev/null
c content prune references >/dev/null 2>&1
c images pull --plain-http "$REG/review/app:main"
check "ctr pulls main after the collection" test "$?" = 0
c images pull --plain-http "$REG/review/web:pr-3"
check "ctr pulls review/web:pr-3 after the collection" test "$?" = 0
sk copy --src-tls-verify=false "docker://$REG/review/app:main" "oci:$T/back:main"
check "skopeo copies main back" test "$?" = 0
expect_eq "main's manifest digest round-trips" "$M_main" "$(oci_ref_digest "$T/back" main)"
expect_eq "main's file content round-trips" "hello from main" "$(oci_layout_file "$T/back" main hello.txt)"
if [ -n "${DOCKERD_PID:-}" ]; then
	run "$DOCKER" rmi "$REG/review/web:pr-3" review/web:pr-3
	run "$DOCKER" pull "$REG/review/web:pr-3"
	check "docker pulls review/web:pr-3 after the collection" test "$?" = 0
fi
sk inspect --tls-verify=false "docker://$REG/review/app:pr-1"
check "review/app:pr-1 is gone" test "$?" != 0
check "pr-1's manifest answers 404" test "$(reg_code GET "/v2/review/app/manifests/$M_pr_1")" = 404
check "pr-2's layer answers 404" test "$(reg_code GET "/v2/review/app/blobs/$A_pr_2")" = 404

stop_berth
if grep -q 'Sanitizer\|runtime error:' "$T/berth.log"; then
	fail "no sanitizer report in the server log"
else
	ok "no sanitizer report in the server log"
fi
out=$("$BERTH_BIN" check --data "$T/data" 2>&1)
check "berth check is clean ($out)" test "$?" = 0
