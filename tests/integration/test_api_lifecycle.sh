#!/usr/bin/env bash
# HTTP API: whole push/pull flows the way docker and containerd drive them
# (existence checks, streamed uploads, mounts, ?ns= everywhere), concurrent
# pushes and pulls, and persistence across a restart.
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_lifecycle: registry did not start"; exit 1; }

R=life/app
NS='ns=docker.io'

# --- docker-style push: check, stream, commit, check again
push_layer_docker() { # push_layer_docker REPO FILE
	local d loc
	d=$(dg "$2")
	req HEAD "/v2/$1/blobs/$d"
	[ "$ST" = 404 ] || { fail "docker push: HEAD before upload of $(basename "$2") is 404 $(ctx)"; return; }
	req POST "/v2/$1/blobs/uploads/"
	loc=$(loc_path)
	req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' --data-binary "@$2"
	[ "$ST" = 202 ] || { fail "docker push: PATCH of $(basename "$2") $(ctx)"; return; }
	loc=$(loc_path)
	req PUT "$(with_query "$loc" "digest=$d")"
	[ "$ST" = 201 ] || { fail "docker push: PUT of $(basename "$2") $(ctx)"; return; }
	req HEAD "/v2/$1/blobs/$d"
	[ "$ST" = 200 ] || { fail "docker push: HEAD after upload of $(basename "$2") $(ctx)"; return; }
	ok "docker-style push of $(basename "$2") into $1"
}
mkblob cfg '{"architecture":"amd64","os":"linux","config":{"Env":["A=1"]}}'
head -c 1500000 /dev/urandom >"$T/layer1"
head -c 20000 /dev/urandom >"$T/layer2"
for f in cfg layer1 layer2; do push_layer_docker "$R" "$T/$f"; done
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s},{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$D2_MANIFEST" "$D2_CONFIG" "$(dg "$T/cfg")" "$(sz "$T/cfg")" \
	"$D2_LAYER" "$(dg "$T/layer1")" "$(sz "$T/layer1")" \
	"$D2_LAYER" "$(dg "$T/layer2")" "$(sz "$T/layer2")" >"$T/m.json"
M=$(dg "$T/m.json")
req PUT "/v2/$R/manifests/1.0?$NS" -H "Content-Type: $D2_MANIFEST" --data-binary "@$T/m.json"
expect_status "PUT manifest with ?ns= is 201" 201
expect_hdr "PUT manifest with ?ns= digest" Docker-Content-Digest "$M"

# --- containerd-style pull with ?ns= on every request
pull_image() { # pull_image NAME REPO REF MANIFEST_FILE
	local n=$1 repo=$2 ref=$3 mf=$4 d b bad=
	req HEAD "/v2/$repo/manifests/$ref?$NS"
	[ "$ST" = 200 ] || bad="HEAD manifest $(ctx)"
	d=$(hdr Docker-Content-Digest)
	[ -z "$bad" ] && [ "$d" != "$(dg "$mf")" ] && bad="HEAD digest '$d'"
	if [ -z "$bad" ]; then
		req GET "/v2/$repo/manifests/$d?$NS"
		[ "$ST" = 200 ] && cmp -s "$T/b" "$mf" || bad="GET manifest by digest $(ctx)"
	fi
	if [ -z "$bad" ]; then
		for b in $(jq -r '[.config.digest] + [.layers[].digest] | .[]' "$mf"); do
			req GET "/v2/$repo/blobs/$b?$NS"
			if [ "$ST" != 200 ] || [ "$(dg "$T/b")" != "$b" ]; then bad="GET blob $b $(ctx)"; break; fi
		done
	fi
	if [ -z "$bad" ]; then ok "$n"; else fail "$n: $bad"; fi
}
pull_image "containerd-style pull with ?ns=" "$R" 1.0 "$T/m.json"
req GET "/v2/$R/tags/list?$NS"
expect_jq "tags/list with ?ns=" .tags '["1.0"]'
req GET "/v2/?$NS"
expect_status "GET /v2/?ns= is 200" 200

# --- second repository via cross-repo mounts (docker does this)
for f in cfg layer1 layer2; do
	req POST "/v2/life/other/blobs/uploads/?mount=$(dg "$T/$f")&from=$R"
	expect_status "mount $f into life/other is 201" 201
done
push_manifest life/other latest "$T/m.json" "$D2_MANIFEST"
expect_status "push the manifest into life/other" 201
pull_image "pull from the mounted repository" life/other latest "$T/m.json"

# --- multi-arch index
mkblob cfg2 '{"architecture":"arm64","os":"linux"}'
push_blob "$R" "$T/cfg2" || fail "push cfg2"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$OCI_MANIFEST" "$OCI_CONFIG" "$(dg "$T/cfg2")" "$(sz "$T/cfg2")" \
	"$OCI_LAYER" "$(dg "$T/layer2")" "$(sz "$T/layer2")" >"$T/arm.json"
push_manifest "$R" "$(dg "$T/arm.json")" "$T/arm.json" "$OCI_MANIFEST" || fail "push arm manifest by digest"
push_manifest "$R" "$M" "$T/m.json" "$D2_MANIFEST" || fail "push amd64 manifest by digest"
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"arm64","os":"linux"}}]}' \
	"$OCI_INDEX" "$D2_MANIFEST" "$M" "$(sz "$T/m.json")" "$OCI_MANIFEST" "$(dg "$T/arm.json")" "$(sz "$T/arm.json")" >"$T/idx.json"
push_manifest "$R" multi "$T/idx.json" "$OCI_INDEX"
expect_status "push a multi-arch index" 201
req GET "/v2/$R/manifests/multi?$NS"
expect_body_file "pull the index" "$T/idx.json"
expect_hdr "index Content-Type" Content-Type "$OCI_INDEX"
pull_image "pull the arm64 child by digest" "$R" "$(dg "$T/arm.json")" "$T/arm.json"

# --- tag overwrite keeps the old manifest by digest
push_manifest "$R" 1.0 "$T/arm.json" "$OCI_MANIFEST"
expect_status "overwrite tag 1.0" 201
req GET "/v2/$R/manifests/1.0"
expect_hdr "tag 1.0 now points at the new manifest" Docker-Content-Digest "$(dg "$T/arm.json")"
req GET "/v2/$R/manifests/$M"
expect_status "old manifest still pullable by digest" 200

# --- concurrent pushes of different tags and concurrent pulls
pids=()
for i in $(seq 1 8); do
	curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $D2_MANIFEST" \
		--data-binary "@$T/m.json" "$URL/v2/$R/manifests/par$i" >"$T/par.$i" &
	pids+=($!)
done
wait "${pids[@]}"
expect_eq "8 concurrent tag pushes all 201" "$(printf '201%.0s' $(seq 1 8))" "$(cat "$T"/par.{1..8})"
req GET "/v2/$R/tags/list"
expect_eq "every concurrently pushed tag is listed" 8 "$(jq '[.tags[] | select(startswith("par"))] | length' "$T/b")"
pids=()
for i in $(seq 1 16); do
	curl -sS --max-time 30 -o "$T/pull.$i" "$URL/v2/$R/blobs/$(dg "$T/layer1")" &
	pids+=($!)
done
wait "${pids[@]}"
good=0
for i in $(seq 1 16); do [ "$(dg "$T/pull.$i")" = "$(dg "$T/layer1")" ] && good=$((good + 1)); done
expect_eq "16 concurrent pulls of a 1.5 MB blob all correct" 16 "$good"

# --- persistence across a restart
stop_berth
start_registry || { fail "registry did not restart"; exit 1; }
pull_image "image pulled after restart" life/other latest "$T/m.json"
pull_image "arm64 image pulled after restart" "$R" 1.0 "$T/arm.json"
req GET "/v2/$R/manifests/multi"
expect_body_file "index intact after restart" "$T/idx.json"
req GET "/v2/$R/tags/list"
expect_jq "tags intact after restart" '.tags | sort' "$(printf '%s\n' 1.0 multi par{1..8} | LC_ALL=C sort | jq -R . | jq -sc .)"
req GET /v2/_catalog
expect_jq "catalog intact after restart" '.repositories' '["life/app","life/other"]'

# --- work continues after the restart
mkblob post "pushed after the restart"
check "push a blob after restart" push_blob "$R" "$T/post"
req DELETE "/v2/life/other/manifests/$M"
expect_status "delete a manifest after restart" 202
req GET "/v2/life/other/manifests/latest"
expect_status "deleted manifest is gone after restart" 404
req GET "/v2/$R/manifests/$M"
expect_status "same manifest in the other repository is untouched" 200

if berth_only "health after the lifecycle"; then
	req GET /healthz
	expect_status "healthz after the lifecycle" 200
	req GET /readyz
	expect_status "readyz after the lifecycle" 200
fi

finish
