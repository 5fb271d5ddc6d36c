#!/usr/bin/env bash
# The review-app lifecycle through the API, with short durations standing
# in for days: TTL labels at push (manifest annotation, config label,
# index annotation, bad values refused, a re-push resets), a policy with
# keep_last and protect, idle_after sparing a recently pulled tag, pins
# (a pinned expired tag survives and goes once its pin is gone; a pinned
# index keeps its children and blobs), repository and prefix deletes that
# free exactly the bytes the query announced, dry runs that change
# nothing, the cleanup query's filters and paging, policy reload on SIGHUP
# and on a file change (a broken file keeps the old policy), the audit
# lines, and few write transactions for many pulls.
. "$(dirname "$0")/api_lib.sh"
REGISTRY_UNDER_TEST=berth

GRACE=1
POLICY=$T/policy.json
cat >"$POLICY" <<'EOF'
{
  "rules": [
    {"repositories": ["review/**"], "tags": ["pr-*", "main"], "keep_last": 2,
     "protect": ["main"]},
    {"repositories": ["idle/*"], "idle_after": "4s"}
  ]
}
EOF

# A bad policy stops the start with the file, line and path.
cat >"$T/bad_policy.json" <<'EOF'
{
  "rules": [
    {"repositories": ["a/**"],
     "expire_after": "3x"}
  ]
}
EOF
out=$("$BERTH_BIN" serve --listen 127.0.0.1:1 --data "$T/nodata" --policy "$T/bad_policy.json" 2>&1)
rc=$?
expect_eq "bad policy at start: exit 2" 2 "$rc"
if [[ $out == *"bad_policy.json:4: rules[0].expire_after"* ]]; then ok "bad policy at start names file:line and path"; else fail "bad policy message: $out"; fi

start_berth --gc-grace "$GRACE" --policy "$POLICY"

gc() { req POST /v2/_berth/gc -H 'Content-Type: application/json' --data-binary "${1:-}"; cp "$T/b" "$T/report.json"; }
rep() { jq -r "$1" "$T/report.json"; }
tags_of() { req GET "/v2/$1/tags/list"; jq -r '(.tags // []) | join(",")' "$T/b"; }
manifest_status() { req GET "/v2/$1/manifests/$2"; echo "$ST"; }
digest_of() { req HEAD "/v2/$1/manifests/$2"; hdr Docker-Content-Digest; }
blob_file() { local d=${1#sha256:}; echo "$T/data/blobs/sha256/${d:0:2}/$d"; }
query() { req GET "/v2/_berth/tags?$1"; cp "$T/b" "$T/q.json"; }
qrow() { jq -r --arg r "$1" --arg t "$2" ".tags[] | select(.repository == \$r and .tag == \$t) | $3" "$T/q.json"; }

# image REPO TAG NAME [ANNOTATIONS_JSON] [LABELS_JSON]: config (with
# config.Labels) + one layer pushed, the manifest put under TAG; leaves
# $T/NAME.json and the status of the manifest PUT in ST.
image() {
	local repo=$1 tag=$2 p=$3 ann=${4:-} lab=${5:-"{}"}
	mkblob "$p.cfg" "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Labels\":$lab},\"x\":\"$p $RANDOM\"}"
	mkblob "$p.layer" "layer bytes of $p $RANDOM$RANDOM"
	push_blob "$repo" "$T/$p.cfg" && push_blob "$repo" "$T/$p.layer" || return 1
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}]%s}' \
		"$OCI_MANIFEST" "$OCI_CONFIG" "$(dg "$T/$p.cfg")" "$(sz "$T/$p.cfg")" \
		"$OCI_LAYER" "$(dg "$T/$p.layer")" "$(sz "$T/$p.layer")" \
		"${ann:+,\"annotations\":$ann}" >"$T/$p.json"
	req PUT "/v2/$repo/manifests/$tag" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/$p.json"
}
image_bytes() { echo $(($(sz "$T/$1.cfg") + $(sz "$T/$1.layer"))); }

# ---- TTL labels at push ----
image ttl/app short s1 '' '{"quay.expires-after":"2s"}'
expect_status "push with config label quay.expires-after=2s" 201
image ttl/app annot s2 '{"berth.expires-after":"3s","quay.expires-after":"1w"}'
expect_status "push with annotation berth.expires-after" 201
image ttl/app keep s3
expect_status "push without a label" 201
image ttl/app bad s4 '{"quay.expires-after":"3x"}'
expect_error "annotation 3x refused" 400 MANIFEST_INVALID
if jq -r '.errors[0].detail' "$T/b" | grep -q 'quay.expires-after'; then ok "the error names the label"; else fail "detail: $(body)"; fi
image ttl/app bad2 s5 '' '{"berth.expires-after":"-1d"}'
expect_error "config label -1d refused" 400 MANIFEST_INVALID
if jq -r '.errors[0].detail' "$T/b" | grep -q 'label berth.expires-after'; then ok "the error names the config label"; else fail "detail: $(body)"; fi
expect_eq "refused pushes made no tag" "annot,keep,short" "$(tags_of ttl/app)"
# an index takes its own annotations
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s}],"annotations":{"berth.expires-after":"90m"}}' \
	"$OCI_INDEX" "$OCI_MANIFEST" "$(dg "$T/s3.json")" "$(sz "$T/s3.json")" >"$T/idx.json"
push_manifest ttl/app multi "$T/idx.json" "$OCI_INDEX"
expect_status "index with berth.expires-after" 201
query "repository=ttl/**"
expect_eq "config label: expires_by" "ttl label quay.expires-after" "$(qrow ttl/app short .expires_by)"
expect_eq "berth.* wins over quay.*" "ttl label berth.expires-after" "$(qrow ttl/app annot .expires_by)"
pushed=$(qrow ttl/app annot .pushed)
expires=$(qrow ttl/app annot .expires)
expect_eq "expiry = push + 3s" 3 $(($(date -d "$expires" +%s) - $(date -d "$pushed" +%s)))
expect_eq "index: 90m" 5400 $(($(date -d "$(qrow ttl/app multi .expires)" +%s) - $(date -d "$(qrow ttl/app multi .pushed)" +%s)))
expect_eq "no label: never" null "$(qrow ttl/app keep .expires)"
# a later push of the same tag without the label clears it; with, resets
req PUT /v2/ttl/app/manifests/multi -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/s3.json"
query "repository=ttl/app"
expect_eq "re-push without label clears the expiry" null "$(qrow ttl/app multi .expires)"

sleep 3.2
query "repository=ttl/**&expired=true"
expect_eq "expired=true lists the two expired" "annot,short" "$(jq -r '[.tags[].tag] | sort | join(",")' "$T/q.json")"
expect_eq "expired rows carry bytes only they hold" "$(image_bytes s1)" "$(qrow ttl/app short .unique_size)"
# dry run: reports, changes nothing
gc '{"dry_run": true}'
expect_status "dry run 200" 200
expect_eq "dry run reports the expired tags" "annot,short" "$(rep '[.tags_expired[] | select(.repository == "ttl/app") | .tag] | sort | join(",")')"
expect_eq "dry run: reason of a TTL" "ttl label quay.expires-after" "$(rep '.tags_expired[] | select(.tag == "short") | .reason')"
expect_eq "dry run: bytes it would free" "$(image_bytes s1)" "$(rep '.tags_expired[] | select(.tag == "short") | .bytes')"
expect_eq "dry run changed nothing" "annot,keep,multi,short" "$(tags_of ttl/app)"
gc ''
expect_status "run 200" 200
expect_eq "run expired the two" "annot,short" "$(rep '[.tags_expired[] | select(.repository == "ttl/app") | .tag] | sort | join(",")')"
expect_eq "tags left" "keep,multi" "$(tags_of ttl/app)"
expect_eq "expired tag is gone" 404 "$(manifest_status ttl/app short)"
expect_eq "untouched tag stays" 200 "$(manifest_status ttl/app keep)"
sleep 1.2
gc ''
for p in s1 s2; do
	[ ! -e "$(blob_file "$(dg "$T/$p.layer")")" ] && [ ! -e "$(blob_file "$(dg "$T/$p.cfg")")" ] &&
		ok "$p's blob files are gone past the grace" || fail "$p's blobs still on disk"
done
[ -e "$(blob_file "$(dg "$T/s3.layer")")" ] && ok "the kept image's layer stays" || fail "kept layer gone"
if grep '"msg":"tag expired"' "$T/berth.log" | grep -q '"repository":"ttl/app","tag":"short".*"reason":"ttl label quay.expires-after"'; then
	ok "audit line: tag expired with its reason"
else
	fail "no audit line for ttl/app:short: $(grep -m2 'tag expired' "$T/berth.log")"
fi

# ---- policy: keep_last 2, protect main ----
for i in 1 2 3 4; do
	image review/web "pr-$i" "w$i"
	[ "$i" = 2 ] && image review/web main wmain
	sleep 1.05 # push times are whole seconds
done
image review/web latest wlatest # no rule matches "latest": never expires
query "repository=review/web"
expect_eq "keep_last: the two oldest expire" "pr-1,pr-2" "$(jq -r '[.tags[] | select(.expires_by != null and (.expires_by | test("keep_last"))) | .tag] | sort | join(",")' "$T/q.json")"
expect_eq "protected main never expires" null "$(qrow review/web main .expires)"
expect_eq "unmatched tag never expires" null "$(qrow review/web latest .expires)"
expect_eq "reason names the rule" "policy rule 1 (keep_last 2)" "$(qrow review/web pr-1 .expires_by)"
gc ''
expect_eq "keep_last 2 + protect main + unmatched latest" "latest,main,pr-3,pr-4" "$(tags_of review/web)"
if grep '"msg":"tag expired"' "$T/berth.log" | grep -q '"tag":"pr-1".*"reason":"policy rule 1 (keep_last 2)"'; then ok "audit line names the policy rule"; else fail "no audit line for pr-1"; fi

# ---- idle_after: a pull spares a tag ----
image idle/app a ia
image idle/app b ib
sleep 3
req GET /v2/idle/app/manifests/a # a pull (flushed by the run, or read from memory)
sleep 2
query "repository=idle/app"
expect_eq "idle_after: the unpulled tag is expired" true "$(jq -r '.tags[] | select(.tag == "b") | (.expires != null)' "$T/q.json")"
[ "$(qrow idle/app a .last_pulled)" != null ] && ok "last_pulled recorded for a" || fail "last_pulled of a: $(qrow idle/app a .last_pulled)"
gc ''
expect_eq "idle_after spares the pulled tag" "a" "$(tags_of idle/app)"
query "repository=idle/app&idle_for=1h"
expect_eq "idle_for=1h: nothing that idle" 0 "$(jq '.tags | length' "$T/q.json")"
query "repository=idle/app&idle_for=1s"
expect_eq "idle_for=1s: a" "a" "$(jq -r '[.tags[].tag] | join(",")' "$T/q.json")"

# ---- pins ----
image pin/app pr-9 p9 '{"berth.expires-after":"1s"}'
D9=$(digest_of pin/app pr-9)
sleep 1.2
gc '{"pins": ["registry.example:5000/pin/app:pr-9"]}'
expect_eq "pins in force" 1 "$(rep .pins)"
expect_eq "pinned expired tag survives" "pr-9" "$(tags_of pin/app)"
expect_eq "the report says a pin kept it" "registry.example:5000/pin/app:pr-9" "$(rep '.kept_by_pins[] | select(.tag == "pr-9") | .pin')"
query "repository=pin/**"
expect_eq "query: pinned" true "$(qrow pin/app pr-9 .pinned)"
gc '' # no pins key: the stored pins stay in force
expect_eq "stored pins still hold" "pr-9" "$(tags_of pin/app)"
# a restart does not drop them
stop_berth
start_berth --gc-grace "$GRACE" --policy "$POLICY"
gc ''
expect_eq "pins survive a restart" "pr-9" "$(tags_of pin/app)"
gc '{"pins": []}'
expect_eq "first run after the pin went: expired" "" "$(tags_of pin/app)"
expect_eq "report: expired pr-9" "pr-9" "$(rep '[.tags_expired[] | select(.repository == "pin/app") | .tag] | join(",")')"

# a pinned index (by digest) keeps its children and their blobs
image pin/multi c1 pc1
image pin/multi c2 pc2
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s},{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$OCI_INDEX" "$OCI_MANIFEST" "$(dg "$T/pc1.json")" "$(sz "$T/pc1.json")" "$OCI_MANIFEST" "$(dg "$T/pc2.json")" "$(sz "$T/pc2.json")" >"$T/pidx.json"
push_manifest pin/multi v1 "$T/pidx.json" "$OCI_INDEX"
DI=$(dg "$T/pidx.json")
for t in c1 c2 v1; do req DELETE "/v2/pin/multi/manifests/$t"; done
expect_status "tags deleted" 202
sleep 2.2 # past the grace after the push (whole seconds)
gc "{\"pins\": [\"127.0.0.1/pin/multi@$DI\"]}"
expect_eq "pinned index kept by the collector" 200 "$(manifest_status pin/multi "$DI")"
expect_eq "its child manifest kept" 200 "$(manifest_status pin/multi "$(dg "$T/pc1.json")")"
req GET "/v2/pin/multi/blobs/$(dg "$T/pc2.layer")"
expect_status "its child's layer kept" 200
expect_eq "report: kept by the pin" "$DI" "$(rep '.kept_by_pins[] | select(.repository == "pin/multi") | .digest')"
sleep 1.2
gc ''
expect_eq "still kept on the next runs" 200 "$(manifest_status pin/multi "$DI")"
gc '{"pins": ["sha256:'"$(printf %064d 0)"'"]}'
sleep 2.2 # past the grace after the last read of the index
gc ''
expect_eq "pin gone: the index goes" 404 "$(manifest_status pin/multi "$DI")"
[ ! -e "$(blob_file "$(dg "$T/pc2.layer")")" ] && ok "and its children's blobs" || fail "child layer still there"
gc '{"pins": ["no such reference!"]}'
expect_error "a malformed pin is refused" 400 UNSUPPORTED
gc '{"pins": "x"}'
expect_error "pins must be an array" 400 UNSUPPORTED

# ---- repository and prefix deletes free what the query said ----
image review/pr-42/web pr-42 rw
image review/pr-42/api pr-42 ra
image review/pr-42/api old rold
image review/pr-43/web pr-43 r43
DOLD=$(digest_of review/pr-42/api old)
gc '{"pins": ["127.0.0.1:5000/review/pr-42/api@'"$DOLD"'"]}'
query "repository=review/pr-42/**"
q_web=$(qrow review/pr-42/web pr-42 .unique_size)
q_api=$(qrow review/pr-42/api pr-42 .unique_size)
expect_eq "query: unique_size = the image's blobs" "$(image_bytes rw)" "$q_web"
expect_eq "query: total size = manifest + blobs" $(($(image_bytes rw) + $(sz "$T/rw.json"))) "$(qrow review/pr-42/web pr-42 .size)"
req DELETE /v2/_berth/repositories/review/pr-42/
expect_error "a prefix needs ?prefix=true" 400 UNSUPPORTED
req DELETE "/v2/_berth/repositories/review/pr-42/web?prefix=true"
expect_error "?prefix=true needs a trailing /" 400 UNSUPPORTED
req DELETE "/v2/_berth/repositories/review/pr-42/?prefix=true"
expect_status "prefix delete" 200
cp "$T/b" "$T/del.json"
expect_eq "both repositories" "review/pr-42/api,review/pr-42/web" "$(jq -r '[.repositories[].repository] | sort | join(",")' "$T/del.json")"
expect_eq "the delete frees what the query said" $((q_web + q_api)) "$(jq .bytes "$T/del.json")"
expect_eq "the pinned manifest stays, the answer says so" "$DOLD" "$(jq -r '.repositories[] | select(.repository == "review/pr-42/api") | .kept[0].digest' "$T/del.json")"
expect_eq "pinned manifest still pulls" 200 "$(manifest_status review/pr-42/api "$DOLD")"
req DELETE "/v2/review/pr-42/api/manifests/$DOLD"
expect_error "an OCI delete of a pinned manifest is refused" 403 DENIED
if jq -r '.errors[0].detail' "$T/b" | grep -q "in use by the cluster (pin 127.0.0.1:5000/review/pr-42/api@"; then ok "the refusal names the pin"; else fail "detail: $(body)"; fi
req GET "/v2/review/pr-42/api/blobs/$(dg "$T/rold.layer")"
expect_status "and its layer" 200
expect_eq "the other repositories' tags are gone" 404 "$(manifest_status review/pr-42/web pr-42)"
expect_eq "another prefix untouched" 200 "$(manifest_status review/pr-43/web pr-43)"
sleep 1.2
gc ''
expect_eq "the collection frees exactly that" "$(jq .bytes "$T/del.json")" "$(rep .blobs.bytes)"
if grep '"msg":"tag expired"' "$T/berth.log" | grep -q '"repository":"review/pr-42/web","tag":"pr-42".*"reason":"repository delete"'; then ok "audit line: repository delete"; else fail "no repository delete audit line"; fi
query "repository=review/pr-43/web"
q43=$(qrow review/pr-43/web pr-43 .unique_size)
req DELETE /v2/_berth/repositories/review/pr-43/web
expect_status "repository delete" 200
expect_eq "one repository delete frees the query's bytes" "$q43" "$(jq .bytes "$T/b")"
req DELETE /v2/_berth/repositories/review/pr-43/web
expect_error "deleting it again: NAME_UNKNOWN" 404 NAME_UNKNOWN
req DELETE "/v2/_berth/repositories/nothing/here/?prefix=true"
expect_error "an empty prefix: NAME_UNKNOWN" 404 NAME_UNKNOWN
req DELETE "/v2/_berth/repositories/Bad..Name"
expect_error "a bad name" 400 NAME_INVALID
sleep 1.2
gc ''
expect_eq "collection after the delete" "$q43" "$(rep .blobs.bytes)"

# ---- the query: filters, paging, bad parameters ----
for i in 1 2 3 4 5; do image page/app "t$i" "pg$i"; done
query "repository=page/app&n=2"
expect_eq "page 1" "t1,t2" "$(jq -r '[.tags[].tag] | join(",")' "$T/q.json")"
expect_eq "next cursor" "page/app:t2" "$(jq -r .next "$T/q.json")"
expect_hdr_re "Link header" Link '^</v2/_berth/tags\?n=2&last=page/app:t2>; rel="next"$'
query "repository=page/app&n=2&last=page/app:t2"
expect_eq "page 2" "t3,t4" "$(jq -r '[.tags[].tag] | join(",")' "$T/q.json")"
query "repository=page/app&n=2&last=page/app:t4"
expect_eq "last page" "t5" "$(jq -r '[.tags[].tag] | join(",")' "$T/q.json")"
expect_eq "no next on the last page" null "$(jq -r .next "$T/q.json")"
query "expired=false&repository=page/*"
expect_eq "expired=false" 5 "$(jq '.tags | length' "$T/q.json")"
for bad in "expired=maybe" "idle_for=3x" "n=0" "n=10001" "repository=A%20B" "last=nocolon"; do
	req GET "/v2/_berth/tags?$bad"
	expect_error "query $bad refused" 400 UNSUPPORTED
done

# ---- policy reload: SIGHUP, file change, broken file ----
cat >"$POLICY" <<'EOF'
{"rules": [{"repositories": ["page/**"], "expire_after": "1s"}]}
EOF
# until SECONDS CMD...: CMD retried every 0.1 s until it succeeds (the
# policy file is looked at every second)
until_ok() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@"; do
		[ $SECONDS -ge "$end" ] && return 1
		sleep 0.1
	done
}
expired_count_is() { query "repository=page/app&expired=true" && [ "$(jq '.tags | length' "$T/q.json")" = "$1" ]; }
kill -HUP "$BERTH_PID"
sleep 0.5
grep -q '"msg":"policy reloaded"' "$T/berth.log" && ok "SIGHUP: policy reloaded" || fail "no reload line"
query "repository=page/app&expired=true"
expect_eq "the new policy applies" 5 "$(jq '.tags | length' "$T/q.json")"
printf '{"rules": [{"repositories": [], "keep_last": 1}]}' >"$T/policy.new"
mv "$T/policy.new" "$POLICY" # a new file, as a ConfigMap update
until_ok 5 grep -q '"msg":"policy reload failed, the previous one stays"' "$T/berth.log"
grep -q '"msg":"policy reload failed, the previous one stays"' "$T/berth.log" && ok "a broken file is reported" || fail "no reload failure line"
if grep '"msg":"policy reload failed' "$T/berth.log" | grep -q 'rules\[0\].repositories'; then ok "the failure names the path"; else fail "failure line: $(grep -m1 'reload failed' "$T/berth.log")"; fi
query "repository=page/app&expired=true"
expect_eq "the previous policy stays" 5 "$(jq '.tags | length' "$T/q.json")"
req GET /metrics
expect_eq "the failed reload is counted" 1 \
	"$(sed -n 's/^berth_reload_total{file="policy",result="failed"} //p' "$T/b")"
n=$(sed -n 's/^berth_reload_total{file="policy",result="ok"} //p' "$T/b")
[ "${n:-0}" -ge 1 ] && ok "the successful reloads are counted ($n)" || fail "policy reloads ok: '$n'"
printf '{"rules": [{"repositories": ["page/**"], "keep_last": 4}]}' >"$T/policy.new"
mv "$T/policy.new" "$POLICY"
until_ok 5 expired_count_is 1
query "repository=page/app&expired=true"
expect_eq "a changed file is picked up without a signal" "1 policy rule 1 (keep_last 4)" "$(jq -r '"\(.tags | length) \(.tags[0].expires_by)"' "$T/q.json")"

# A ConfigMap volume: the file is a symlink through ..data, which the
# kubelet swaps to a new directory on an update.
CM=$T/cm
mkdir -p "$CM/..2026_12_03_01" "$CM/..2026_12_03_02"
printf '{"rules": [{"repositories": ["page/**"], "keep_last": 3}]}' >"$CM/..2026_12_03_01/policy.json"
printf '{"rules": [{"repositories": ["page/**"], "keep_last": 2}]}' >"$CM/..2026_12_03_02/policy.json"
ln -s ..2026_12_03_01 "$CM/..data"
ln -s ..data/policy.json "$CM/policy.json"
stop_berth
start_berth --gc-grace "$GRACE" --policy "$CM/policy.json"
query "repository=page/app&expired=true"
expect_eq "policy through ..data: keep_last 3" 2 "$(jq '.tags | length' "$T/q.json")"
ln -s ..2026_12_03_02 "$CM/..data_tmp" && mv -T "$CM/..data_tmp" "$CM/..data"
until_ok 5 expired_count_is 3
query "repository=page/app&expired=true"
expect_eq "a ..data swap is picked up: keep_last 2" 3 "$(jq '.tags | length' "$T/q.json")"

# ---- last-pull times: few write transactions for many pulls ----
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
f0=$(metric berth_index_flush_txns_total)
w0=$(metric berth_index_write_txns_total)
for i in $(seq 1 400); do echo "url = \"$URL/v2/page/app/manifests/t$((i % 5 + 1))\""; echo "output = /dev/null"; done >"$T/pulls.cfg"
curl -s -H "$ACCEPT_ALL" -K "$T/pulls.cfg"
sleep 6
f1=$(metric berth_index_flush_txns_total)
w1=$(metric berth_index_write_txns_total)
if [ -n "$f0" ] && [ -n "$f1" ] && [ $((f1 - f0)) -ge 1 ] && [ $((f1 - f0)) -le 3 ] && [ $((w1 - w0)) -le 3 ]; then
	ok "400 pulls: $((f1 - f0)) flush txns, $((w1 - w0)) write txns"
else
	fail "400 pulls caused flush txns $f0 -> $f1, write txns $w0 -> $w1"
fi
query "repository=page/app"
[ "$(qrow page/app t3 .last_pulled)" != null ] && ok "last_pulled after the storm" || fail "last_pulled of t3 missing"

finish
