#!/usr/bin/env bash
# Review-app expiry with real clients. docker builds the images FROM
# scratch (COPY only: nothing runs, no network; `docker build` itself, no
# buildah needed), the review apps with `docker build --label
# quay.expires-after=2s` (the label lands in the config blob's
# config.Labels): pr-7 with the classic builder, pr-9 with BuildKit; main,
# built the same way without a label, shares pr-7's base layer. skopeo
# pushes pr-8, an OCI image whose manifest carries the annotation
# berth.expires-after=2s. berth runs with --gc-grace 2. The tag query shows
# the three expiries and the labels they came from, main none. Past the
# TTL and the grace: a dry run changes nothing; ctr pulls pr-7 (still
# tagged: only a run deletes tags); `berth gc --server` expires the three
# tags, collects the stale pr-8 and pr-9 at once and keeps pr-7's image
# (pulled within the grace) until the next run grace+1 s later. Then
# docker, skopeo and ctr fail on pr-7 with "manifest unknown"/"not found",
# pull main with the digest docker pushed, the review apps' own blob files
# are gone, main's (and the shared base layer) stay, `berth check` is clean.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh

export CONTAINERD_SNAPSHOTTER=native
GRACE=2
TTL=2
why() { echo "$1 ($(tail_msg "$T/last.out" 2))"; }
d() { run "$DOCKER" "$@"; }
sk() { run skopeo --policy "$POLICY" "$@"; }
c() { run ctr -a "$CTD_SOCK" -n berth-ret "$@"; }
cq() { timeout 60 ctr -a "$CTD_SOCK" -n berth-ret "$@" 2>>"$T/clients.log"; }
blob_file() { local d=${1#sha256:}; echo "$T/data/blobs/sha256/${d:0:2}/$d"; }
push_digest() { sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\) size.*/\1/p' "$T/last.out" | tail -n 1; }
ctr_digest() { cq images ls | awk -v r="$1" '$1 == r { print $3 }'; }
# blobs_of REPO TAG: config and layer digests of the manifest in the registry.
blobs_of() { reg_manifest "$1" "$2" | jq -r '.config.digest, .layers[].digest' 2>/dev/null; }
# said_not_found: the client's output names the registry's refusal.
said_not_found() { grep -Eqi 'manifest unknown|not found' "$T/last.out"; }
query() { $CURL "$URL/v2/_berth/tags?$1" >"$T/q.json"; }
qrow() { jq -r --arg t "$1" ".tags[] | select(.repository == \"review/web\" and .tag == \$t) | $2" "$T/q.json" 2>/dev/null; }
# container_file IMAGE PATH: PATH's content through docker create + export
# (the image has no command: create is given one; nothing runs).
container_file() {
	local id out
	id=$(timeout 30 "$DOCKER" create "$1" /app.txt 2>>"$T/clients.log") || return 1
	out=$(timeout 60 "$DOCKER" export "$id" 2>>"$T/clients.log" | tar -xO "$2" 2>/dev/null)
	timeout 30 "$DOCKER" rm -f "$id" >/dev/null 2>&1
	printf '%s' "$out"
}

if ! start_registry --gc-grace "$GRACE"; then
	fail "ret.clients: berth did not start"
	exit 1
fi
if ! start_dockerd; then
	fail "ret.clients: dockerd did not start: $(grep -E 'level=(fatal|error)' "$T/dockerd.log" | tail -n 1 | tail -c 400)"
	exit 1
fi
if ! start_containerd; then
	fail "ret.clients: containerd did not start: $(grep -E 'level=(fatal|error)' "$T/ctd/containerd.log" | tail -n 1 | tail -c 400)"
	exit 1
fi

# ---- build: FROM scratch + COPY; the same base.txt (same bytes, same
# mtime) first in main and pr-7, so the two share that layer.
# ctx NAME: a build context with base.txt and NAME's own app.txt.
ctx() {
	mkdir -p "$T/ctx-$1"
	printf 'berth review base\n' >"$T/ctx-$1/base.txt"
	printf 'hello from %s\n' "$1" >"$T/ctx-$1/app.txt"
	touch -d @0 "$T/ctx-$1/base.txt" "$T/ctx-$1/app.txt"
	printf 'FROM scratch\nCOPY base.txt /base.txt\nCOPY app.txt /app.txt\n' >"$T/ctx-$1/Dockerfile"
}
ctx main && ctx pr-7 && ctx pr-9
if DOCKER_BUILDKIT=0 d build -t review/web:main "$T/ctx-main"; then ok "docker build (classic) of main"; else fail "docker build of main: $(why 'failed')"; exit 1; fi
if DOCKER_BUILDKIT=0 d build --label quay.expires-after=${TTL}s -t review/web:pr-7 "$T/ctx-pr-7"; then
	ok "docker build (classic) --label quay.expires-after=${TTL}s of pr-7"
else
	fail "docker build of pr-7: $(why 'failed')"
	exit 1
fi
if DOCKER_BUILDKIT=1 d build --label quay.expires-after=${TTL}s -t review/web:pr-9 "$T/ctx-pr-9"; then
	ok "docker build (BuildKit) --label quay.expires-after=${TTL}s of pr-9"
else
	fail "docker build (BuildKit) of pr-9: $(why 'failed')"
	exit 1
fi
expect_eq "the label is in pr-7's image config" "${TTL}s" \
	"$(timeout 30 "$DOCKER" image inspect -f '{{index .Config.Labels "quay.expires-after"}}' review/web:pr-7 2>&1)"

# skopeo's image: an OCI layout whose manifest gets an annotation.
L=$T/layout
make_oci_image "$L" pr-8 "hello from pr-8" || { fail "ret.clients: build pr-8"; exit 1; }
jq -c --arg v "${TTL}s" '.annotations = {"berth.expires-after": $v}' \
	"$L/blobs/sha256/${IMG_MANIFEST_DIGEST#sha256:}" >"$T/pr8.json"
M8=$(oci_put_blob "$L" "$T/pr8.json")
oci_add_ref "$L" application/vnd.oci.image.manifest.v1+json "$M8" pr-8
B8="$IMG_CONFIG_DIGEST $IMG_LAYERS"

# ---- push: main first (no label), then the review apps.
declare -A PUSHED
for t in main pr-7 pr-9; do
	if d tag "review/web:$t" "$REG/review/web:$t" && d push "$REG/review/web:$t"; then
		PUSHED[$t]=$(push_digest)
		cp "$T/last.out" "$T/push-$t.out"
		expect_eq "docker push $t: the digest docker printed is the registry's" \
			"${PUSHED[$t]}" "$(reg_head_digest review/web "$t")"
	else
		fail "docker push $t: $(why 'failed')"
	fi
done
[ -n "${PUSHED[pr-7]:-}" ] || exit 1
expect_eq "docker push pr-7: main's base layer already there" 1 "$(grep -c 'Layer already exists' "$T/push-pr-7.out")"
if sk copy --dest-tls-verify=false "oci:$L:pr-8" "docker://$REG/review/web:pr-8"; then
	expect_eq "skopeo pushed pr-8 with its annotated manifest" "$M8" "$(reg_head_digest review/web pr-8)"
else
	fail "skopeo copy pr-8: $(why 'failed')"
fi

MAIN_BLOBS=$(blobs_of review/web main)
P7_BLOBS=$(blobs_of review/web pr-7)
P9_BLOBS=$(blobs_of review/web pr-9)
# not_in LIST BLOB...: the BLOBs not in LIST (one a line).
not_in() { local l=$1 b; shift; for b in "$@"; do grep -qx "$b" <<<"$l" || echo "$b"; done | sort -u; }
# what goes: pr-8's and pr-9's own blobs in the 1st run, pr-7's in the 2nd
# shellcheck disable=SC2086 # digest lists, split on purpose
GONE1=$(not_in "$MAIN_BLOBS"$'\n'"$P7_BLOBS" $P9_BLOBS $B8)
# shellcheck disable=SC2086
GONE2=$(not_in "$MAIN_BLOBS"$'\n'"$P9_BLOBS" $P7_BLOBS)
expect_eq "pr-7 and main share 1 blob (the base layer)" 1 "$(comm -12 <(sort <<<"$P7_BLOBS") <(sort <<<"$MAIN_BLOBS") | grep -c .)"
expect_eq "pr-7 holds 2 blobs of its own (config, app layer)" 2 "$(grep -c . <<<"$GONE2")"
GONE2_BYTES=$(for b in $GONE2; do stat -c %s "$(blob_file "$b")"; done | awk '{ s += $1 } END { print s + 0 }')
for b in $GONE1 $GONE2 $MAIN_BLOBS; do
	[ -s "$(blob_file "$b")" ] || fail "blob file of $b: want it after the pushes, got none"
done

# ---- the query: expiries from the labels
query "repository=review/**"
expect_eq "pr-7 (classic build): expires_by" "ttl label quay.expires-after" "$(qrow pr-7 .expires_by)"
pushed=$(qrow pr-7 .pushed) expires=$(qrow pr-7 .expires)
if [ -n "$pushed" ] && [ "$pushed" != null ] && [ -n "$expires" ] && [ "$expires" != null ]; then
	expect_eq "pr-7: expires = pushed + ${TTL}s" "$TTL" $(($(date -d "$expires" +%s) - $(date -d "$pushed" +%s)))
else
	fail "pr-7: pushed/expires want two times got '$pushed' '$expires' ($(head -c 400 "$T/q.json"))"
fi
expect_eq "pr-9 (BuildKit): expires_by" "ttl label quay.expires-after" "$(qrow pr-9 .expires_by)"
expect_eq "pr-8 (manifest annotation): expires_by" "ttl label berth.expires-after" "$(qrow pr-8 .expires_by)"
expect_eq "main: no expiry" "null null" "$(qrow main .expires) $(qrow main .expires_by)"

# ---- past the TTL and the grace
sleep $((TTL > GRACE ? TTL + 1 : GRACE + 1))
query "repository=review/**&expired=true"
expect_eq "expired=true lists the review apps, not main" "pr-7,pr-8,pr-9" \
	"$(jq -r '[.tags[].tag] | sort | join(",")' "$T/q.json" 2>&1)"

out=$(timeout 60 "$BERTH_BIN" gc --server "$URL" --dry-run --json 2>"$T/gc.err")
expect_eq "berth gc --dry-run exits 0" "0 " "$? $(cat "$T/gc.err")"
expect_eq "dry run: would expire" "pr-7,pr-8,pr-9" \
	"$(jq -r '[.tags_expired[] | select(.repository == "review/web") | .tag] | sort | join(",")' <<<"$out" 2>&1)"
expect_eq "dry run: reasons of pr-7, pr-8, pr-9" \
	"ttl label quay.expires-after,ttl label berth.expires-after,ttl label quay.expires-after" \
	"$(jq -r '[.tags_expired | sort_by(.tag)[] | .reason] | join(",")' <<<"$out" 2>&1)"
expect_eq "dry run deleted nothing" "main,pr-7,pr-8,pr-9" \
	"$($CURL "$URL/v2/review/web/tags/list" | jq -r '.tags | sort | join(",")')"

# A node pulls pr-7 past its TTL, just before the run: the tag is only
# deleted by a run, and its image then survives it by the grace.
if c images pull --plain-http "$REG/review/web:pr-7"; then
	expect_eq "ctr pulls pr-7 past its TTL, before the run" "${PUSHED[pr-7]}" "$(ctr_digest "$REG/review/web:pr-7")"
else
	fail "ctr pull of pr-7 past its TTL, before the run: $(why 'failed')"
fi

line=$(timeout 60 "$BERTH_BIN" gc --server "$URL" 2>"$T/gc.err")
expect_eq "berth gc (1st) exits 0" "0 " "$? $(cat "$T/gc.err")"
# pr-8 and pr-9 are stale: they go now; pr-7's manifest waits for the grace.
want="gc: deleted 2 manifests, $(grep -c . <<<"$GONE1") blobs (*), 0 uploads; freed * in *; 1 waiting (next due *); 3 tags expired"
# shellcheck disable=SC2053 # a glob on purpose
if [[ $line == $want ]]; then ok "1st run's summary line: $line"; else fail "1st run's summary line: want '$want' got '$line'"; fi
expect_eq "tags left after the 1st run" main "$($CURL "$URL/v2/review/web/tags/list" | jq -r '.tags | sort | join(",")')"
for b in $GONE1; do
	check "1st run: pr-8's/pr-9's blob file $b removed" test ! -e "$(blob_file "$b")"
done
for b in $GONE2; do
	check "1st run: pr-7's blob file $b kept (pulled within the grace)" test -s "$(blob_file "$b")"
done

sleep $((GRACE + 1))
out=$(timeout 60 "$BERTH_BIN" gc --server "$URL" --json 2>"$T/gc.err")
expect_eq "berth gc (2nd) exits 0" "0 " "$? $(cat "$T/gc.err")"
expect_eq "2nd run: nothing more expired, pr-7's manifest and its 2 blobs collected, nothing waiting" \
	"0 1 $(grep -c . <<<"$GONE2") 0" \
	"$(jq -r '"\(.tags_expired | length) \(.manifests.deleted) \(.blobs.deleted) \(.waiting.count)"' <<<"$out" 2>&1)"
expect_eq "2nd run: bytes freed = pr-7's config and app layer" "$GONE2_BYTES" "$(jq '.bytes_freed' <<<"$out" 2>&1)"
aud=$(grep '"msg":"tag expired"' "$T/berth.log")
if grep -q '"repository":"review/web","tag":"pr-7".*"reason":"ttl label quay.expires-after"' <<<"$aud"; then
	ok "audit line: tag expired review/web:pr-7 with its reason"
else
	fail "audit line for pr-7: want tag expired + reason, got '$(head -c 400 <<<"$aud")'"
fi
expect_eq "one audit line per expired tag" 3 "$(grep -c . <<<"$aud")"

# ---- the clients: pr-7 is gone everywhere
d rmi "$REG/review/web:pr-7" review/web:pr-7
if timeout 30 "$DOCKER" image inspect "$REG/review/web:pr-7" >/dev/null 2>&1; then
	fail "docker rmi pr-7: the image is still there"
fi
if d pull "$REG/review/web:pr-7"; then
	fail "docker pull of expired pr-7: want a refusal, got success"
else
	check "docker pull pr-7 refused: $(tail_msg "$T/last.out")" said_not_found
fi
if sk inspect --tls-verify=false "docker://$REG/review/web:pr-7"; then
	fail "skopeo inspect of expired pr-7: want a refusal, got success"
else
	check "skopeo inspect pr-7 refused: $(tail_msg "$T/last.out")" grep -qi 'manifest unknown\|not found' "$T/last.out"
fi
c images rm "$REG/review/web:pr-7"
c content prune references
if c images pull --plain-http "$REG/review/web:pr-7"; then
	fail "ctr pull of expired pr-7: want a refusal, got success"
else
	check "ctr pull pr-7 refused: $(tail_msg "$T/last.out")" grep -qi 'not found' "$T/last.out"
fi
for t in pr-8 pr-9; do
	if sk inspect --tls-verify=false "docker://$REG/review/web:$t"; then
		fail "skopeo inspect of expired $t: want a refusal, got success"
	else
		check "skopeo inspect $t refused: $(tail_msg "$T/last.out")" said_not_found
	fi
done
expect_eq "pr-7's manifest by digest answers 404" 404 "$(reg_code GET "/v2/review/web/manifests/${PUSHED[pr-7]}")"
expect_eq "pr-8's manifest by digest answers 404" 404 "$(reg_code GET "/v2/review/web/manifests/$M8")"

# ---- main pulls with all three, the digest docker pushed
d rmi "$REG/review/web:main" review/web:main
if d pull "$REG/review/web:main"; then
	expect_eq "docker pulls main: digest" "Digest: ${PUSHED[main]}" "$(grep -o 'Digest: sha256:[0-9a-f]*' "$T/last.out")"
	expect_eq "docker pulls main: its file" "hello from main" "$(container_file "$REG/review/web:main" app.txt)"
else
	fail "docker pull main: $(why 'failed')"
fi
if sk inspect --tls-verify=false "docker://$REG/review/web:main"; then
	expect_eq "skopeo inspect main: digest" "${PUSHED[main]}" "$(jq -r .Digest "$T/last.out")"
else
	fail "skopeo inspect main: $(why 'failed')"
fi
if c images pull --plain-http "$REG/review/web:main"; then
	expect_eq "ctr pulls main: digest" "${PUSHED[main]}" "$(ctr_digest "$REG/review/web:main")"
else
	fail "ctr pull main: $(why 'failed')"
fi

# ---- the files
for b in $GONE1 $GONE2; do
	check "review apps' blob file $b removed" test ! -e "$(blob_file "$b")"
done
for b in $MAIN_BLOBS; do
	check "main's blob file $b kept" test -s "$(blob_file "$b")"
done

stop_berth
if grep -q 'Sanitizer\|runtime error:' "$T/berth.log"; then
	fail "sanitizer report in the server log: $(grep -m1 'Sanitizer\|runtime error:' "$T/berth.log")"
else
	ok "no sanitizer report in the server log"
fi
out=$(timeout 120 "$BERTH_BIN" check --data "$T/data" 2>&1)
rc=$?
check "berth check is clean (rc $rc: $out)" test "$rc" = 0
