#!/usr/bin/env bash
# The review-app lifecycle end to end with berth's own commands against the
# real server (no stand-in berth):
#  1. `berth gc --pins-from-kubernetes` through a stand-in Kubernetes API
#     (python3 over HTTPS with a test CA, as in test_cli_gc_kube.sh) whose
#     lists come from tests/integration/fixtures/kube-e2e/{before,after}/
#     with this berth's 127.0.0.1:PORT, digests filled in: a Deployment
#     scaled to 0 keeps its expired tag (kept_by_pins), an old ReplicaSet
#     keeps an untagged manifest by digest, a pod's imageID keeps the digest
#     it runs; the pins stay for a run without pin options; once the cluster
#     changed, the next run expires and collects them. A 401 from the API:
#     exit 1 and the registry untouched (no run: log and metrics).
#  2. `berth rm`: a tag, a prefix while a pinned manifest stays (and a blob
#     another repository shares), twice (exit 0), the JSON report, and a
#     collection past the grace freeing exactly the bytes announced.
#  3. `berth ls`: the table against the API's rows (TTL label, policy,
#     pin), --expired, --json equal to GET /v2/_berth/tags.
#  4. With --auth: a janitor robot ({"gc": true}, delete on review/**)
#     deletes a prefix and runs the collector; a user with delete on
#     review/pr-42/* only may delete one repository but not the prefix
#     (401 insufficient_scope, nothing deleted); a reader may not delete;
#     `berth ls` shows each user only what they may pull; anonymous
#     GET /v2/_berth/tags is 401.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh
. tests/integration/auth_lib.sh
. tests/integration/kube_lib.sh
# shellcheck disable=SC2034 # read by api_lib.sh
REGISTRY_UNDER_TEST=berth

unset BERTH_SERVER BERTH_USER BERTH_PASSWORD_FILE BERTH_TOKEN_FILE \
	BERTH_REGISTRY_HOSTS BERTH_KUBE_SA_DIR KUBERNETES_SERVICE_HOST \
	KUBERNETES_SERVICE_PORT BERTH_PORT
# Everything here is on 127.0.0.1: no proxy in between.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
FIX=$PWD/tests/integration/fixtures/kube-e2e

missing=
for tool in python3 openssl jq curl timeout; do
	command -v "$tool" >/dev/null || missing="$missing $tool"
done
python3 -c 'import ssl, http.server' 2>/dev/null || missing="$missing python3-ssl"
if [ -n "$missing" ]; then
	fail "lifecycle.tools: missing$missing (scripts/deps.sh test)"
	exit 1
fi

# ---- helpers ----------------------------------------------------------

# run CMD ARGS...: berth CMD ARGS (bounded); RC, OUT, ERR.
run() {
	timeout 120 "$BERTH_BIN" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
nlines() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }
# expect_out NAME WANT: exit 0, nothing on stderr, stdout exactly WANT.
expect_out() {
	if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$OUT" = "$2" ]; then
		ok "$1"
	else
		fail "$1: want exit 0 and '$2'; got exit $RC, stdout '${OUT:0:800}', stderr '${ERR:0:400}'"
	fi
}
# expect_fail NAME CMD EXIT ERE: exit EXIT, nothing on stdout, one line
# "berth CMD: …" on stderr matching ERE.
expect_fail() {
	if [ "$RC" = "$3" ] && [ -z "$OUT" ] && [ "$(nlines "$ERR")" = 1 ] &&
		[[ $ERR == "berth $2: "* ]] && [[ $ERR =~ $4 ]]; then
		ok "$1"
	else
		fail "$1: want exit $3 and one line /$4/; got exit $RC, stdout '${OUT:0:300}', stderr '${ERR:0:400}'"
	fi
}
# jcheck NAME FILE FILTER [ARGS...]: jq -e FILTER on FILE is true.
jcheck() {
	local n=$1 f=$2 flt=$3
	shift 3
	if jq -e "$@" "$flt" "$f" >/dev/null 2>&1; then
		ok "$n"
	else
		fail "$n: not ($flt) in $(head -c 1500 "$f" | tr '\n' ' ')"
	fi
}
# hb BYTES: the CLI's human size (B below 1 KiB, else one decimal).
hb() {
	awk -v b="$1" 'BEGIN {
		if (b < 1024) { printf "%d B", b; exit }
		split("KiB MiB GiB TiB", u, " "); v = b / 1024; i = 1
		while (v >= 1024 && i < 4) { v /= 1024; i++ }
		printf "%.1f %s", v, u[i] }'
}

AUTHH=() # curl arguments of every registry request (a bearer token)
# pblob REPO FILE: POST + PUT of one blob.
pblob() {
	local d
	d=$(dg "$2")
	req POST "/v2/$1/blobs/uploads/" "${AUTHH[@]}"
	[ "$ST" = 202 ] || { echo "pblob: POST $(ctx)" >&2; return 1; }
	req PUT "$(with_query "$(loc_path)" "digest=$d")" "${AUTHH[@]}" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$2"
	[ "$ST" = 201 ] || { echo "pblob: PUT $(ctx)" >&2; return 1; }
}
# image REPO TAG NAME [ANNOTATIONS_JSON] [SHARED_LAYER_FILE]: a config and
# a layer of its own (plus SHARED_LAYER_FILE as a second layer) pushed,
# the manifest $T/NAME.json put under TAG; status in ST, digest in DIG.
image() {
	local repo=$1 tag=$2 p=$3 ann=${4:-} shared=${5:-} extra=
	mkblob "$p.cfg" "{\"architecture\":\"amd64\",\"os\":\"linux\",\"x\":\"$p $RANDOM\"}"
	mkblob "$p.layer" "layer bytes of $p $RANDOM$RANDOM"
	pblob "$repo" "$T/$p.cfg" && pblob "$repo" "$T/$p.layer" || { ST=000; return 1; }
	if [ -n "$shared" ]; then
		pblob "$repo" "$shared" || { ST=000; return 1; }
		extra=$(printf ',{"mediaType":"%s","digest":"%s","size":%s}' "$OCI_LAYER" "$(dg "$shared")" "$(sz "$shared")")
	fi
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}%s]%s}' \
		"$OCI_MANIFEST" "$OCI_CONFIG" "$(dg "$T/$p.cfg")" "$(sz "$T/$p.cfg")" \
		"$OCI_LAYER" "$(dg "$T/$p.layer")" "$(sz "$T/$p.layer")" "$extra" \
		"${ann:+,\"annotations\":$ann}" >"$T/$p.json"
	DIG=$(dg "$T/$p.json")
	req PUT "/v2/$repo/manifests/$tag" "${AUTHH[@]}" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/$p.json"
	[ "$ST" = 201 ] || echo "image $repo:$tag: $(ctx)" >&2
}
# own_bytes NAME...: config + own layer bytes of the images NAME.
own_bytes() {
	local s=0 p
	for p in "$@"; do s=$((s + $(sz "$T/$p.cfg") + $(sz "$T/$p.layer"))); done
	echo "$s"
}
tags_of() { req GET "/v2/$1/tags/list" "${AUTHH[@]}"; jq -r '(.tags // []) | join(",")' "$T/b" 2>/dev/null; }
mstatus() { req GET "/v2/$1/manifests/$2" "${AUTHH[@]}"; echo "$ST"; }
blob_file() { local d=${1#sha256:}; echo "$T/data/blobs/sha256/${d:0:2}/$d"; }
# on_disk NAME...: every blob of the images NAME is a file; gone_disk: none.
on_disk() { local p; for p in "$@"; do [ -e "$(blob_file "$(dg "$T/$p.cfg")")" ] && [ -e "$(blob_file "$(dg "$T/$p.layer")")" ] || return 1; done; }
gone_disk() { local p; for p in "$@"; do [ ! -e "$(blob_file "$(dg "$T/$p.cfg")")" ] && [ ! -e "$(blob_file "$(dg "$T/$p.layer")")" ] || return 1; done; }
gc_runs_metric() { curl -s --max-time 10 "$URL/metrics" | awk '$1 ~ /^berth_gc_runs_total/ { s += $2 } END { print s + 0 }'; }
gc_run_lines() { grep -c '"msg":"gc run"' "$T/berth.log"; }
# rows FILE: "repo:tag" of a tag list JSON, comma-separated.
rows() { jq -r '[.tags[] | "\(.repository):\(.tag)"] | join(",")' "$1" 2>/dev/null; }

# fresh_berth ARGS...: the running berth stopped cleanly, a new one on an
# empty data directory.
fresh_berth() {
	if [ -n "$BERTH_PID" ]; then
		if kill -0 "$BERTH_PID" 2>/dev/null; then ok "$1: berth still running before the restart"; else fail "$1: berth died"; fi
		stop_berth
		expect_eq "$1: clean shutdown" 0 "$?"
	fi
	shift
	rm -rf "$T/data"
	start_registry "$@" || { fail "berth did not start: $(tail -3 "$T/berth.log" | tr '\n' ' ')"; exit 1; }
}

# ======================================================================
# 1. berth gc --pins-from-kubernetes against the real berth
# ======================================================================
POLICY=$T/policy.json
cat >"$POLICY" <<'EOF'
{"rules": [{"repositories": ["review/**"], "tags": ["pr-*"], "expire_after": "2s"}]}
EOF
GRACE=1
fresh_berth "kube" --gc-grace "$GRACE" --policy "$POLICY"

# ---- a test CA, a certificate for 127.0.0.1, two service accounts
if ! kube_certs; then
	fail "kube.certificates: openssl failed: $(tail -3 "$T/openssl.log" | tr '\n' ' ')"
	exit 1
fi
GOOD_TOK="eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6cmVnaXN0cnk6YmVydGgtZ2MifQ.$(kube_rand)"
kube_sa sa "$GOOD_TOK" "$T/pki/ca.crt"
kube_sa sa-wrong "revoked.$(kube_rand)" "$T/pki/ca.crt"

# ---- the stand-in Kubernetes API: the seven list endpoints, answered
# from $T/kube/<resource>-<page>.json read at each request (so the test
# can change the cluster), bearer token checked, every request logged.
mkdir -p "$T/kube"
if ! kube_start "$T/kube" "$GOOD_TOK"; then
	fail "kube.api_stand_in_started: $(tail -3 "$T/kube.err" 2>/dev/null | tr '\n' ' ')"
	exit 1
fi
export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KPORT
export BERTH_KUBE_SA_DIR=$T/sa
# cluster SET: the fixtures of SET (before|after) with this berth's
# host:port and the digests pushed, as the stand-in's answers.
cluster() {
	local f out bad=
	rm -f "$T/kube"/*.json
	for f in "$FIX/$1"/*.json; do
		out=$T/kube/$(basename "$f")
		sed -e "s|@REG@|$REG|g" -e "s|@D_OLD@|$D_OLD|g" -e "s|@D_POD@|$D_POD|g" \
			-e "s|@D_NEW7@|$D_NEW7|g" "$f" >"$out"
		jq -e '.items | type == "array"' "$out" >/dev/null 2>&1 || bad="$bad $(basename "$f")"
		grep -q '@[A-Z_0-9]*@' "$out" && bad="$bad $(basename "$f"):placeholder"
	done
	if [ -z "$bad" ] && [ "$(ls "$T/kube" | wc -l)" = 7 ]; then ok "kube.fixtures_$1_rendered"; else fail "kube.fixtures_$1_rendered:$bad"; fi
	: >"$T/kube.log"
}
# kgc ARGS...: berth gc --server URL ARGS; the JSON report in $T/rep.json.
kgc() {
	: >"$T/kube.log"
	run gc --server "$URL" --timeout 60 "$@"
	printf '%s' "$OUT" >"$T/rep.json"
}
expect_listed_cluster() {
	if [ "$(grep -c ' -> 200 ' "$T/kube.log")" = 7 ] && [ "$(wc -l <"$T/kube.log")" = 7 ]; then
		ok "$1"
	else
		fail "$1: $(tr '\n' ';' <"$T/kube.log")"
	fi
}
manifest_digests_deleted() { jq -r '[.deleted[]? | select(.kind == "manifest") | .digest] | sort | join(",")' "$T/rep.json" 2>/dev/null; }
has_deleted() { jq -e --arg d "$1" 'any(.deleted[]?; .kind == "manifest" and .digest == $d)' "$T/rep.json" >/dev/null 2>&1; }
kept_pin() { jq -r --arg r "$1" --arg k "$2" '[.kept_by_pins[]? | select(.repository == $r and (.tag == $k or .digest == $k)) | .pin] | first // ""' "$T/rep.json" 2>/dev/null; }
expired_list() { jq -r '[.tags_expired[]? | "\(.repository):\(.tag)"] | sort | join(",")' "$T/rep.json" 2>/dev/null; }

# ---- the images: review/app:pr-1 (the app scaled to zero), its previous
# release by digest only, an unpinned pr-2; review/api:pr-7 pushed twice
# (the running pod still runs the first one).
image review/app pr-1 a1 && D_PR1=$DIG
image review/app prev a0 && D_OLD=$DIG
req DELETE /v2/review/app/manifests/prev
expect_status "kube.previous_release_untagged" 202
image review/app pr-2 a2 && D_PR2=$DIG
image review/api pr-7 p1 && D_POD=$DIG
image review/api pr-7 p2 && D_NEW7=$DIG
expect_eq "kube.images_pushed" "pr-1,pr-2 pr-7" "$(tags_of review/app) $(tags_of review/api)"
cluster before
sleep 3.2 # past the 2s policy and the grace (push times are whole seconds)
req GET "/v2/_berth/tags?repository=review/**&expired=true"
expect_eq "kube.policy_expired_all_three" "review/api:pr-7,review/app:pr-1,review/app:pr-2" "$(rows "$T/b")"

# dry run: the pins are listed, nothing changes
kgc --pins-from-kubernetes --dry-run --json
if [ "$RC" = 0 ] && [ -z "$ERR" ]; then ok "kube.dry_run_exit_0"; else fail "kube.dry_run_exit_0: exit $RC, '${ERR:0:300}'"; fi
jcheck "kube.dry_run_report" "$T/rep.json" '.dry_run == true and .pins == 4 and ([.tags_expired[] | .tag] == ["pr-2"])'
expect_eq "kube.dry_run_kept_pr1" "$REG/review/app:pr-1" "$(kept_pin review/app pr-1)"
expect_eq "kube.dry_run_changed_nothing" "pr-1,pr-2 pr-7" "$(tags_of review/app) $(tags_of review/api)"

runs0=$(gc_runs_metric)
lines0=$(gc_run_lines)
kgc --pins-from-kubernetes --json
if [ "$RC" = 0 ] && [ -z "$ERR" ] && jq -e . "$T/rep.json" >/dev/null 2>&1; then ok "kube.run_exit_0_json"; else fail "kube.run_exit_0_json: exit $RC, '${OUT:0:300}', '${ERR:0:300}'"; fi
expect_listed_cluster "kube.run_listed_seven_resources"
jcheck "kube.run_four_pins_in_force" "$T/rep.json" '.pins == 4 and .dry_run == false'
expect_eq "kube.scaled_to_zero_tag_kept_by_pin" "$REG/review/app:pr-1" "$(kept_pin review/app pr-1)"
jcheck "kube.scaled_to_zero_kept_from_policy" "$T/rep.json" 'any(.kept_by_pins[]; .tag == "pr-1" and .digest == $d and .kept_from == "policy rule 1 (expire_after 2s)")' --arg d "$D_PR1"
expect_eq "kube.old_replicaset_digest_kept_by_pin" "$REG/review/app@$D_OLD" "$(kept_pin review/app "$D_OLD")"
expect_eq "kube.pod_image_id_kept_by_pin" "$REG/review/api@$D_POD" "$(kept_pin review/api "$D_POD")"
expect_eq "kube.running_tag_kept_by_pin" "$REG/review/api:pr-7" "$(kept_pin review/api pr-7)"
expect_eq "kube.only_unpinned_tag_expired" "review/app:pr-2" "$(expired_list)"
expect_eq "kube.unpinned_manifest_collected_same_run" "$D_PR2" "$(manifest_digests_deleted)"
expect_eq "kube.run_counted" "$((runs0 + 1)) $((lines0 + 1))" "$(gc_runs_metric) $(gc_run_lines)"
expect_eq "kube.tags_after_run" "pr-1 pr-7" "$(tags_of review/app) $(tags_of review/api)"
check "kube.kept_blobs_on_disk" on_disk a1 a0 p1 p2
check "kube.unpinned_blobs_freed" gone_disk a2
req GET "/v2/_berth/tags?repository=review/**"
jcheck "kube.query_shows_pins" "$T/b" '[.tags[] | select(.pinned) | "\(.repository):\(.tag)=\(.pin)"] == ["review/api:pr-7=\($r)/review/api:pr-7", "review/app:pr-1=\($r)/review/app:pr-1"]' --arg r "$REG"
# (these reads count as accesses: the next runs wait out the grace)
expect_eq "kube.old_release_pullable" 200 "$(mstatus review/app "$D_OLD")"
expect_eq "kube.pods_digest_pullable" 200 "$(mstatus review/api "$D_POD")"
expect_eq "kube.expired_unpinned_gone" 404 "$(mstatus review/app "$D_PR2")"
sleep $((GRACE + 1)).2

# A run without pin options: the stored pins still hold.
kgc --json
if [ "$RC" = 0 ] && [ "$(wc -l <"$T/kube.log")" = 0 ]; then ok "kube.plain_run_no_api_calls"; else fail "kube.plain_run_no_api_calls: exit $RC, $(wc -l <"$T/kube.log") API calls"; fi
jcheck "kube.plain_run_stored_pins_hold" "$T/rep.json" '.pins == 4 and .tags_expired == [] and ([.deleted[] | select(.kind == "manifest")] == [])'
expect_eq "kube.plain_run_old_release_still_kept" "$REG/review/app@$D_OLD" "$(kept_pin review/app "$D_OLD")"
# A run that keeps a pinned manifest queues it again at now + grace
# (storage/meta.h, meta_gc_step): the next run is a grace later, as
# CronJob runs are.
sleep $((GRACE + 1)).2

# ---- the cluster changes: the review app of PR 1 is deleted, the api pod
# was replaced by one running the current pr-7.
cluster after
kgc --pins-from-kubernetes --json
if [ "$RC" = 0 ] && [ -z "$ERR" ]; then ok "kube.after_exit_0"; else fail "kube.after_exit_0: exit $RC, '${ERR:0:300}'"; fi
expect_listed_cluster "kube.after_listed_seven_resources"
jcheck "kube.after_pins_replaced" "$T/rep.json" '.pins == 2'
expect_eq "kube.after_scaled_to_zero_tag_expired" "review/app:pr-1" "$(expired_list)"
expect_eq "kube.after_collected_pr1_old_release_old_pod_image" \
	"$(printf '%s\n' "$D_PR1" "$D_OLD" "$D_POD" | sort | paste -sd,)" "$(manifest_digests_deleted)"
expect_eq "kube.after_running_tag_still_kept" "$REG/review/api:pr-7" "$(kept_pin review/api pr-7)"
expect_eq "kube.after_no_other_kept" "review/api" "$(jq -r '[.kept_by_pins[].repository] | unique | join(",")' "$T/rep.json" 2>/dev/null)"
check "kube.after_blobs_freed" gone_disk a1 a0 p1
check "kube.after_current_blobs_kept" on_disk p2
expect_eq "kube.after_tags" " pr-7" "$(tags_of review/app) $(tags_of review/api)"
expect_eq "kube.after_pr1_manifest_gone" 404 "$(mstatus review/app "$D_PR1")"
expect_eq "kube.after_old_release_gone" 404 "$(mstatus review/app "$D_OLD")"
expect_eq "kube.after_old_pod_image_gone" 404 "$(mstatus review/api "$D_POD")"
expect_eq "kube.after_current_image_stays" 200 "$(mstatus review/api pr-7)"

# ---- the API refuses (a revoked token): exit 1, the registry untouched
image review/app pr-9 a9 && D_PR9=$DIG
sleep 3.2
runs0=$(gc_runs_metric)
lines0=$(gc_run_lines)
BERTH_KUBE_SA_DIR=$T/sa-wrong kgc --pins-from-kubernetes
expect_fail "kube.api_401_exit_1" gc 1 '^berth gc: kubernetes: cannot list pods: HTTP 401 Unauthorized$'
expect_eq "kube.api_401_was_asked" "GET /api/v1/pods limit=500 continue=- -> 401 page -" "$(cat "$T/kube.log")"
expect_eq "kube.api_401_expired_tag_still_there" "pr-9" "$(tags_of review/app)"
req GET "/v2/_berth/tags?repository=review/app&expired=true"
expect_eq "kube.api_401_tag_was_expired" "review/app:pr-9" "$(rows "$T/b")"
expect_eq "kube.api_401_no_gc_run_logged" "$lines0" "$(gc_run_lines)"
expect_eq "kube.api_401_gc_runs_total_unchanged" "$runs0" "$(gc_runs_metric)"
BERTH_KUBE_SA_DIR=$T/sa-wrong kgc --pins-from-kubernetes --dry-run --json
expect_fail "kube.api_401_dry_run_exit_1" gc 1 'HTTP 401 Unauthorized$'
expect_eq "kube.api_401_dry_run_no_run" "$runs0" "$(gc_runs_metric)"
# the same run with the right token does expire it
cluster after
kgc --pins-from-kubernetes --json
expect_eq "kube.good_token_expires_it" "review/app:pr-9" "$(expired_list)"
expect_eq "kube.good_token_collects_it" "$D_PR9" "$(manifest_digests_deleted)"
expect_eq "kube.good_token_one_run" "$((runs0 + 1)) $((lines0 + 1))" "$(gc_runs_metric) $(gc_run_lines)"
kube_stop
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT BERTH_KUBE_SA_DIR

# ======================================================================
# 2. berth rm end to end
# ======================================================================
POLICY2=$T/policy2.json
cat >"$POLICY2" <<'EOF'
{"rules": [{"repositories": ["ls/**"], "tags": ["tmp-*"], "expire_after": "1s"}]}
EOF
fresh_berth "rm" --gc-grace "$GRACE" --policy "$POLICY2"
mkblob shared.layer "a base layer shared by pr-42/api and pr-43/web $RANDOM"
image review/pr-42/web pr-42 w1
image review/pr-42/web cache w2
image review/pr-42/api pr-42 k1 '' "$T/shared.layer"
image review/pr-42/api old k0 && D_K0=$DIG
image review/pr-43/web pr-43 c1 '' "$T/shared.layer"
image review/pr-51/web pr-51 x1
image review/pr-51/worker pr-51 x2
printf '# in use\n%s\n' "$REG/review/pr-42/api@$D_K0" >"$T/pins.txt"
kgc --pins-file "$T/pins.txt" --json
jcheck "rm.pin_stored" "$T/rep.json" '.pins == 1 and .manifests.deleted == 0'

run rm --server "$URL" review/pr-42/web:pr-42
expect_out "rm.tag_deleted" "deleted tag review/pr-42/web:pr-42"
expect_eq "rm.tag_gone_from_tags_list" "cache" "$(tags_of review/pr-42/web)"
run rm --server "$URL" review/pr-42/web:pr-42
expect_out "rm.tag_twice_not_found" "review/pr-42/web:pr-42: not found, nothing to delete"

B42=$(own_bytes w1 w2 k1) # the shared layer and the pinned image stay
run rm --server "$URL" --prefix review/pr-42/
expect_out "rm.prefix_deleted_pinned_kept" "deleted repository review/pr-42/api: 2 tags, 1 manifest
kept $D_K0 in review/pr-42/api: in use (pin $REG/review/pr-42/api@$D_K0)
deleted repository review/pr-42/web: 1 tag, 2 manifests
deleted 2 repositories under review/pr-42/: 3 tags, 3 manifests; frees $(hb "$B42") at the next collection"
A42=
[[ $OUT =~ frees\ ([0-9]+)\ B\ at ]] && A42=${BASH_REMATCH[1]}
req GET /v2/review/pr-42/web/tags/list
expect_error "rm.prefix_web_repository_gone" 404 NAME_UNKNOWN
expect_eq "rm.prefix_api_tags_gone" "" "$(tags_of review/pr-42/api)"
expect_eq "rm.prefix_cache_tag_gone" 404 "$(mstatus review/pr-42/web cache)"
expect_eq "rm.prefix_pinned_manifest_pulls" 200 "$(mstatus review/pr-42/api "$D_K0")"
req GET "/v2/review/pr-42/api/blobs/$(dg "$T/k0.layer")"
expect_status "rm.prefix_pinned_layer_pulls" 200
expect_eq "rm.other_prefix_untouched" "pr-43 pr-51" "$(tags_of review/pr-43/web) $(tags_of review/pr-51/web)"
run rm --server "$URL" --prefix review/pr-42/
if [ "$RC" = 0 ] && [ -z "$ERR" ] &&
	{ [ "$OUT" = "review/pr-42/: not found, nothing to delete" ] ||
		[[ $OUT == *"under review/pr-42/: 0 tags, 0 manifests; frees 0 B at the next collection" ]]; }; then
	ok "rm.prefix_twice_exit_0_nothing_more"
else
	fail "rm.prefix_twice_exit_0_nothing_more: exit $RC, '$OUT', '$ERR'"
fi
expect_eq "rm.prefix_twice_pinned_still_there" 200 "$(mstatus review/pr-42/api "$D_K0")"

B51=$(own_bytes x1 x2)
run rm --server "$URL" --json --prefix review/pr-51/
printf '%s' "$OUT" >"$T/rm51.json"
if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$(nlines "$OUT")" = 1 ]; then ok "rm.json_one_line"; else fail "rm.json_one_line: exit $RC, '${OUT:0:400}', '$ERR'"; fi
jcheck "rm.json_report" "$T/rm51.json" '([.repositories[].repository] == ["review/pr-51/web", "review/pr-51/worker"]) and .tags == 2 and .manifests == 2 and .kept == 0'
expect_eq "rm.json_bytes_are_the_unique_blobs" "$B51" "$(jq -r .bytes "$T/rm51.json" 2>/dev/null)"
run rm --server "$URL" --prefix review/pr-51/
expect_out "rm.json_prefix_twice_not_found" "review/pr-51/: not found, nothing to delete"
run rm --server "$URL" --strict --prefix review/pr-51/
expect_fail "rm.strict_twice_fails" rm 1 '^berth rm: review/pr-51/: NAME_UNKNOWN'

sleep $((GRACE + 1)).2
kgc --json
if [ "$RC" = 0 ] && [ -n "$A42" ]; then
	expect_eq "rm.gc_frees_exactly_what_was_announced" "$((A42 + $(jq -r .bytes "$T/rm51.json")))" "$(jq -r .blobs.bytes "$T/rep.json")"
else
	fail "rm.gc_frees_exactly_what_was_announced: exit $RC, announced '$A42', '${OUT:0:300}' '$ERR'"
fi
expect_eq "rm.announced_is_the_unique_bytes" "$B42" "$A42"
# (the manifests went with the repositories; the run takes their blobs)
jcheck "rm.gc_took_the_ten_blobs" "$T/rep.json" '.manifests.deleted == 0 and .blobs.deleted == 10 and .tags_expired == []'
check "rm.gc_freed_the_files" gone_disk w1 w2 k1 x1 x2
check "rm.gc_kept_pinned_and_other" on_disk k0 c1
if [ -e "$(blob_file "$(dg "$T/shared.layer")")" ]; then ok "rm.shared_layer_kept"; else fail "rm.shared_layer_kept: gone"; fi
expect_eq "rm.other_prefix_still_pulls" 200 "$(mstatus review/pr-43/web pr-43)"

# ======================================================================
# 3. berth ls end to end (same server)
# ======================================================================
image ls/app pinned lp '{"berth.expires-after":"2s"}'
printf '%s\n' "$REG/review/pr-42/api@$D_K0" "$REG/ls/app:pinned" >"$T/pins.txt"
kgc --pins-file "$T/pins.txt" --json
jcheck "ls.pins_stored" "$T/rep.json" '.pins == 2'
image ls/app keep lk
image ls/app later ll '{"berth.expires-after":"1h"}'
image ls/app old-1 lo '{"berth.expires-after":"2s"}'
image ls/app tmp-1 lt
sleep 3.2
req GET "/v2/_berth/tags?repository=ls/**"
cp "$T/b" "$T/api_ls.json"
expect_eq "ls.api_rows" "ls/app:keep,ls/app:later,ls/app:old-1,ls/app:pinned,ls/app:tmp-1" "$(rows "$T/api_ls.json")"
run ls --server "$URL" --repository 'ls/**'
printf '%s\n' "$OUT" >"$T/table"
if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$(nlines "$OUT")" = 7 ]; then ok "ls.header_five_rows_totals"; else fail "ls.header_five_rows_totals: exit $RC, '$OUT', '$ERR'"; fi
expect_eq "ls.header" "REPOSITORY TAG DIGEST PUSHED LAST PULLED EXPIRES PINNED SIZE UNIQUE" "$(head -1 "$T/table" | tr -s ' ')"
expect_eq "ls.columns_aligned" 1 "$(head -6 "$T/table" | awk '{ print length($0) }' | sort -u | wc -l)"
declare -A EXP=(
	[keep]='never'
	[later]='in (59|60)m \(ttl label berth\.expires-after\)'
	[old-1]='expired [0-9]+s ago \(ttl label berth\.expires-after\)'
	[pinned]='expired [0-9]+s ago \(ttl label berth\.expires-after\)'
	[tmp-1]='expired [0-9]+s ago \(policy rule 1 \(expire_after 1s\)\)'
)
i=2
while IFS=$'\t' read -r tag dig pinned size uniq; do
	line=$(sed -n "${i}p" "$T/table" | tr -s ' ')
	re="^ls/app $tag ${dig:7:12} [0-9]+s ago never ${EXP[$tag]} $pinned $(hb "$size") $(hb "$uniq")\$"
	if [[ $line =~ $re ]]; then ok "ls.row_$tag"; else fail "ls.row_$tag: '$line' !~ /$re/"; fi
	i=$((i + 1))
done < <(jq -r '.tags[] | [.tag, .digest, (if .pinned then "yes" else "no" end), .size, .unique_size] | @tsv' "$T/api_ls.json")
expect_eq "ls.totals" "5 tags, $(hb "$(jq '[.tags[].size] | add' "$T/api_ls.json")") total, $(hb "$(jq '[.tags[].unique_size] | add' "$T/api_ls.json")") unique" "$(tail -1 "$T/table")"
expect_eq "ls.pinned_row_says_yes" "yes" "$(jq -r '.tags[] | select(.tag == "pinned") | if .pinned then "yes" else "no" end' "$T/api_ls.json")"

req GET "/v2/_berth/tags?repository=ls/**&expired=true"
cp "$T/b" "$T/api_ls_exp.json"
run ls --server "$URL" --repository 'ls/**' --expired
got=$(sed '1d;$d' <<<"$OUT" | awk '{ print $1 ":" $2 }' | paste -sd,)
expect_eq "ls.expired_rows_as_the_api" "$(rows "$T/api_ls_exp.json")" "$got"
if [[ ,$got, == *,ls/app:old-1,* && ,$got, == *,ls/app:tmp-1,* && ,$got, != *,ls/app:keep,* && ,$got, != *,ls/app:later,* ]]; then
	ok "ls.expired_filter"
else
	fail "ls.expired_filter: '$got'"
fi
expect_eq "ls.expired_totals" "$(jq '.tags | length' "$T/api_ls_exp.json") tags" "$(tail -1 <<<"$OUT" | cut -d, -f1)"

run ls --server "$URL" --repository 'ls/**' --json
printf '%s' "$OUT" >"$T/ls.json"
if [ "$RC" = 0 ] && [ -z "$ERR" ] && jq -e 'keys == ["tags"]' "$T/ls.json" >/dev/null 2>&1; then ok "ls.json_parses"; else fail "ls.json_parses: exit $RC, '${OUT:0:300}', '$ERR'"; fi
expect_eq "ls.json_equals_api_rows" "$(jq -cS .tags "$T/api_ls.json")" "$(jq -cS .tags "$T/ls.json" 2>/dev/null)"
run ls --server "$URL" --repository 'ls/**' --expired --json
expect_eq "ls.json_expired_equals_api" "$(jq -cS .tags "$T/api_ls_exp.json")" "$(printf '%s' "$OUT" | jq -cS .tags 2>/dev/null)"
run ls --server "$URL" --repository 'review/**'
expect_eq "ls.review_glob_rows" "review/pr-43/web:pr-43|1 tag" \
	"$(sed '1d;$d' <<<"$OUT" | awk '{ print $1 ":" $2 }' | paste -sd,)|$(tail -1 <<<"$OUT" | cut -d, -f1)"

# ======================================================================
# 4. with token auth
# ======================================================================
if [ -n "$BERTH_PID" ]; then
	if kill -0 "$BERTH_PID" 2>/dev/null; then ok "auth: berth still running before the restart"; else fail "auth: berth died"; fi
	stop_berth
	expect_eq "auth: clean shutdown" 0 "$?"
fi
auth_setup || { fail "auth.setup"; exit 1; }
H_JAN=$(auth_hash janitor-secret) && H_NAR=$(auth_hash narrow-secret) &&
	H_REA=$(auth_hash reader-secret) && H_OTH=$(auth_hash other-secret) || { fail "auth.hashes"; exit 1; }
cat >"$AUTH_FILE" <<EOF
{
  "service": "$AUTH_SERVICE",
  "issuer": "$AUTH_ISSUER",
  "realm": "$AUTH_REALM",
  "token_ttl": 300,
  "signing_key": "key.pem",
  "users": [
    {"name": "admin", "password_hash": "$H_ADMIN",
     "rules": [{"repositories": ["**"], "actions": ["*"]}, {"catalog": true}]},
    {"name": "janitor", "password_hash": "$H_JAN",
     "rules": [{"repositories": ["review/**"], "actions": ["pull", "delete"]}, {"gc": true}]},
    {"name": "narrow", "password_hash": "$H_NAR",
     "rules": [{"repositories": ["review/pr-42/*"], "actions": ["pull", "delete"]}]},
    {"name": "reader", "password_hash": "$H_REA",
     "rules": [{"repositories": ["review/**"], "actions": ["pull"]}]},
    {"name": "other", "password_hash": "$H_OTH",
     "rules": [{"repositories": ["apps/**"], "actions": ["pull"]}]}
  ],
  "anonymous": [{"repositories": ["public/**"], "actions": ["pull"]}]
}
EOF
run auth check "$AUTH_FILE"
expect_eq "auth.users_file_valid" 0 "$RC"
POLICY4=$T/policy4.json
cat >"$POLICY4" <<'EOF'
{"rules": [{"repositories": ["review/**"], "tags": ["pr-*"], "expire_after": "1h"}]}
EOF
rm -rf "$T/data"
start_registry --auth "$AUTH_FILE" --gc-grace "$GRACE" --policy "$POLICY4" ||
	{ fail "auth: berth did not start: $(tail -3 "$T/berth.log" | tr '\n' ' ')"; exit 1; }
for u in janitor narrow reader other; do printf '%s-secret\n' "$u" >"$T/$u.pw"; done
# as USER CMD ARGS...: berth CMD --server URL --user USER --password-file …
as() { local u=$1 c=$2; shift 2; run "$c" --server "$URL" --user "$u" --password-file "$T/$u.pw" --timeout 60 "$@"; }
REPOS="review/pr-42/web review/pr-42/api review/pr-43/web apps/web apps/api"
SCOPES=()
for r in $REPOS; do SCOPES+=("repository:$r:pull,push"); done
ADMIN_TOK=$(auth_token admin:admin-secret "${SCOPES[@]}")
[ -n "$ADMIN_TOK" ] && ok "auth.admin_token" || fail "auth.admin_token: none"
AUTHH=(-H "Authorization: Bearer $ADMIN_TOK")
# shellcheck disable=SC2034 # read by finish
FINISH_ARGS=("${AUTHH[@]}")
image review/pr-42/web pr-42 qw
image review/pr-42/api pr-42 qa
image review/pr-43/web pr-43 qc
image apps/web v1 qx
image apps/api v2 qy
expect_eq "auth.pushed" "pr-42 pr-42 pr-43 v1 v2" "$(for r in $REPOS; do tags_of "$r"; done | paste -sd' ')"

req GET /v2/_berth/tags
expect_error "auth.anonymous_query_401" 401 UNAUTHORIZED
expect_hdr_re "auth.anonymous_query_challenge" WWW-Authenticate "^Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\""
# berth ls signs in anonymously: only public/** (nothing here) is listed
run ls --server "$URL"
expect_out "auth.anonymous_ls_lists_nothing" "0 tags, 0 B total, 0 B unique"

# narrow: delete on review/pr-42/* only: no prefix delete
as narrow rm --prefix review/pr-42/
expect_fail "auth.narrow_prefix_refused" rm 1 '^berth rm: review/pr-42/: unauthorized: .*repository:review/pr-42/\*\*:delete'
expect_eq "auth.narrow_prefix_deleted_nothing" "pr-42 pr-42" "$(tags_of review/pr-42/web) $(tags_of review/pr-42/api)"
NT=$(auth_token narrow:narrow-secret 'repository:review/pr-42/**:delete')
expect_eq "auth.narrow_token_lacks_prefix_scope" "" \
	"$(cut -d. -f2 <<<"$NT" | tr '_-' '/+' | base64 -d 2>/dev/null | jq -r '[.access[]? | select(.name == "review/pr-42/**") | .actions[]] | join(",")' 2>/dev/null)"
req DELETE "/v2/_berth/repositories/review/pr-42/?prefix=true" -H "Authorization: Bearer $NT"
expect_error "auth.narrow_prefix_api_401" 401 UNAUTHORIZED
expect_hdr_re "auth.narrow_prefix_insufficient_scope" WWW-Authenticate 'scope="repository:review/pr-42/\*\*:delete",error="insufficient_scope"'
expect_eq "auth.narrow_prefix_api_deleted_nothing" "pr-42 pr-42" "$(tags_of review/pr-42/web) $(tags_of review/pr-42/api)"
as narrow rm review/pr-42/web
expect_out "auth.narrow_deletes_one_repository" "deleted repository review/pr-42/web: 1 tag, 1 manifest; frees $(hb "$(own_bytes qw)") at the next collection"
req GET /v2/review/pr-42/web/tags/list "${AUTHH[@]}"
expect_error "auth.narrow_repository_gone" 404 NAME_UNKNOWN

# reader: pull only
as reader rm review/pr-42/api:pr-42
expect_fail "auth.reader_cannot_delete_tag" rm 1 'unauthorized: user reader may not use repository:review/pr-42/api:delete'
as reader rm review/pr-42/api
expect_fail "auth.reader_cannot_delete_repository" rm 1 'unauthorized: user reader may not use repository:review/pr-42/api:delete'
as reader rm --prefix review/
expect_fail "auth.reader_cannot_delete_prefix" rm 1 'unauthorized: user reader may not use repository:review/\*\*:delete'
as reader gc
expect_fail "auth.reader_cannot_gc" gc 1 'registry:gc:\*'
expect_eq "auth.reader_deleted_nothing" "pr-42 pr-43" "$(tags_of review/pr-42/api) $(tags_of review/pr-43/web)"

# berth ls: each user sees the repositories they may pull
# expect_table_rows NAME WANT: berth ls's table rows ("repo:tag,…") are WANT.
expect_table_rows() {
	local got
	got=$(sed '1d;$d' <<<"$OUT" | awk '{ print $1 ":" $2 }' | paste -sd,)
	if [ "$RC" = 0 ] && [ "$got" = "$2" ]; then ok "$1"; else fail "$1: want rows '$2'; got exit $RC, '$(tr '\n' ';' <<<"$OUT")', '$ERR'"; fi
}
as other ls --json
printf '%s' "$OUT" >"$T/ls_other.json"
expect_eq "auth.ls_other_only_apps" "apps/api:v2,apps/web:v1" "$(rows "$T/ls_other.json")"
as other ls
expect_table_rows "auth.ls_other_table_rows" "apps/api:v2,apps/web:v1"
as reader ls --json
printf '%s' "$OUT" >"$T/ls_reader.json"
expect_eq "auth.ls_reader_only_review" "review/pr-42/api:pr-42,review/pr-43/web:pr-43" "$(rows "$T/ls_reader.json")"
as reader ls --repository '**'
expect_table_rows "auth.ls_reader_table_rows" "review/pr-42/api:pr-42,review/pr-43/web:pr-43"
# the API itself, with a token asked for one repository: the rows are what
# the users file lets the token's user pull, not only the token's scope
RT=$(auth_token reader:reader-secret repository:review/pr-43/web:pull)
req GET /v2/_berth/tags -H "Authorization: Bearer $RT"
expect_eq "auth.query_by_the_users_rules" "review/pr-42/api:pr-42,review/pr-43/web:pr-43" "$(rows "$T/b")"

# janitor: the prefix and the collector
as janitor rm --json --prefix review/pr-42/
printf '%s' "$OUT" >"$T/rmj.json"
if [ "$RC" = 0 ] && [ -z "$ERR" ]; then ok "auth.janitor_prefix_delete"; else fail "auth.janitor_prefix_delete: exit $RC, '${OUT:0:300}', '$ERR'"; fi
jcheck "auth.janitor_prefix_report" "$T/rmj.json" '[.repositories[].repository] == ["review/pr-42/api"] and .tags == 1 and .manifests == 1 and .bytes == $b' --argjson b "$(own_bytes qa)"
req GET /v2/review/pr-42/api/tags/list "${AUTHH[@]}"
expect_error "auth.janitor_prefix_gone" 404 NAME_UNKNOWN
expect_eq "auth.janitor_left_the_rest" "pr-43 v1" "$(tags_of review/pr-43/web) $(tags_of apps/web)"
sleep $((GRACE + 1)).2
as janitor gc
if [ "$RC" = 0 ] && [ -z "$ERR" ] && [[ $OUT =~ ^gc:\ deleted\ 0\ manifests,\ 4\ blobs\ \(([0-9]+)\ B\) ]] &&
	[ "${BASH_REMATCH[1]}" = "$(own_bytes qw qa)" ]; then
	ok "auth.janitor_gc_frees_both_deletes"
else
	fail "auth.janitor_gc_frees_both_deletes: want 4 blobs ($(own_bytes qw qa) B); exit $RC, '$OUT', '$ERR'"
fi
check "auth.janitor_gc_freed_files" gone_disk qw qa
check "auth.janitor_gc_kept_the_rest" on_disk qc qx qy

finish
