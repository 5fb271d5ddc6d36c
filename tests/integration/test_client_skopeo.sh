#!/usr/bin/env bash
# skopeo against the registry: OCI layout round trip, Docker schema2 and
# manifest-list conversion, multi-arch index with --all, registry-to-registry
# copy, inspect, list-tags, delete. Every check compares digests or content.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh

DOCKER_V2=application/vnd.docker.distribution.manifest.v2+json
DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
OCI_MAN=application/vnd.oci.image.manifest.v1+json
OCI_IDX=application/vnd.oci.image.index.v1+json

# sk ARGS...: skopeo with a private policy and a bounded run; output to a log.
sk() {
	echo "+ skopeo $*" >>"$T/skopeo.log"
	timeout 120 skopeo --policy "$POLICY" "$@" >>"$T/skopeo.log" 2>&1
}
skq() { timeout 60 skopeo --policy "$POLICY" "$@" 2>>"$T/skopeo.log"; }
why() { echo "$1 (skopeo: $(tail_msg "$T/skopeo.log"))"; }

if ! start_registry; then
	fail "skopeo.registry_start: $REGISTRY_UNDER_TEST did not answer"
	exit 1
fi

# skopeo (like podman and buildah) with --tls-verify=false tries HTTPS
# first: a TLS hello on the plain port must fail fast and leave the
# server answering plain HTTP.
t0=$SECONDS
if timeout 10 curl -sk --max-time 8 -o /dev/null "https://$REG/v2/" 2>/dev/null; then
	fail "skopeo.https_probe: HTTPS answered on the plain HTTP port"
else
	expect_eq skopeo.https_probe_fast "fast 200" \
		"$([ $((SECONDS - t0)) -le 3 ] && echo fast || echo slow) $(reg_code GET /v2/)"
fi

L=$T/layout
make_oci_image "$L" app "hello from skopeo" || { fail "skopeo.build_image"; exit 1; }
APP=$IMG_MANIFEST_DIGEST APP_CFG=$IMG_CONFIG_DIGEST APP_LAYERS=$IMG_LAYERS
make_oci_index "$L" multi "content amd64" "content arm64" || { fail "skopeo.build_index"; exit 1; }

# 1. OCI layout -> registry keeps the manifest byte for byte.
if sk copy --dest-tls-verify=false "oci:$L:app" "docker://$REG/sk/img:v1"; then
	expect_eq skopeo.push_oci_digest "$APP" "$(reg_head_digest sk/img v1)"
	expect_eq skopeo.push_oci_content_type "$OCI_MAN" "$(reg_content_type sk/img v1)"
	expect_eq skopeo.push_oci_by_digest "$APP" "$(reg_head_digest sk/img "$APP")"
	got=$($CURL "$URL/v2/sk/img/blobs/$APP_CFG" | sha256sum | cut -d' ' -f1)
	expect_eq skopeo.config_blob_get "$APP_CFG" "sha256:$got"
else
	fail "skopeo.push_oci: $(why 'copy oci -> registry failed')"
fi

# 2. Registry -> new OCI layout: same digest, same file content.
B=$T/back
if sk copy --src-tls-verify=false "docker://$REG/sk/img:v1" "oci:$B:v1"; then
	expect_eq skopeo.pull_oci_digest "$APP" "$(oci_ref_digest "$B" v1)"
	expect_eq skopeo.pull_oci_file "hello from skopeo" "$(oci_layout_file "$B" v1 hello.txt)"
	expect_eq skopeo.pull_oci_base_file "berth test base amd64" "$(oci_layout_file "$B" v1 etc/berth-release)"
else
	fail "skopeo.pull_oci: $(why 'copy registry -> oci failed')"
fi

# 3. Conversion to Docker schema2 on push.
if sk copy --dest-tls-verify=false --format v2s2 "oci:$L:app" "docker://$REG/sk/v2s2:v1"; then
	expect_eq skopeo.v2s2_content_type "$DOCKER_V2" "$(reg_content_type sk/v2s2 v1)"
	d=$(reg_head_digest sk/v2s2 v1)
	body_d=$(sha256sum < <(reg_manifest sk/v2s2 v1) | cut -d' ' -f1)
	expect_eq skopeo.v2s2_digest_matches_body "$d" "sha256:$body_d"
	expect_eq skopeo.v2s2_config_media_type application/vnd.docker.container.image.v1+json \
		"$(reg_manifest sk/v2s2 v1 | jq -r .config.mediaType)"
	i=$(skq inspect --tls-verify=false "docker://$REG/sk/v2s2:v1" | jq -r .Digest)
	expect_eq skopeo.v2s2_inspect_digest "$d" "$i"
	if sk copy --src-tls-verify=false "docker://$REG/sk/v2s2:v1" "oci:$B:v2s2"; then
		expect_eq skopeo.v2s2_pull_file "hello from skopeo" "$(oci_layout_file "$B" v2s2 hello.txt)"
	else
		fail "skopeo.v2s2_pull_file: $(why 'copy failed')"
	fi
else
	fail "skopeo.v2s2_push: $(why 'copy --format v2s2 failed')"
fi

# 4. Multi-arch OCI index with --all: index and both children by digest.
if sk copy --all --dest-tls-verify=false "oci:$L:multi" "docker://$REG/sk/multi:v1"; then
	expect_eq skopeo.index_digest "$IDX_DIGEST" "$(reg_head_digest sk/multi v1)"
	expect_eq skopeo.index_content_type "$OCI_IDX" "$(reg_content_type sk/multi v1)"
	expect_eq skopeo.index_child_amd64 "$IDX_AMD64" "$(reg_head_digest sk/multi "$IDX_AMD64")"
	expect_eq skopeo.index_child_arm64 "$IDX_ARM64" "$(reg_head_digest sk/multi "$IDX_ARM64")"
	if sk copy --src-tls-verify=false --override-arch arm64 --override-variant v8 \
		"docker://$REG/sk/multi:v1" "oci:$B:arm"; then
		expect_eq skopeo.index_pull_arm64_digest "$IDX_ARM64" "$(oci_ref_digest "$B" arm)"
		expect_eq skopeo.index_pull_arm64_file "content arm64" "$(oci_layout_file "$B" arm hello.txt)"
	else
		fail "skopeo.index_pull_arm64: $(why 'copy --override-arch arm64 failed')"
	fi
else
	fail "skopeo.index_push: $(why 'copy --all failed')"
fi

# 5. OCI index -> Docker manifest list (--all --format v2s2).
if sk copy --all --format v2s2 --dest-tls-verify=false "oci:$L:multi" "docker://$REG/sk/list:v1"; then
	expect_eq skopeo.list_content_type "$DOCKER_LIST" "$(reg_content_type sk/list v1)"
	ok_children=0
	for c in $(reg_manifest sk/list v1 | jq -r '.manifests[].digest'); do
		[ "$(reg_head_digest sk/list "$c")" = "$c" ] &&
			[ "$(reg_content_type sk/list "$c")" = "$DOCKER_V2" ] &&
			ok_children=$((ok_children + 1))
	done
	expect_eq skopeo.list_children_docker_v2 2 "$ok_children"
else
	fail "skopeo.list_push: $(why 'copy --all --format v2s2 failed')"
fi

# 6. Registry -> registry copies between repositories (blobs must follow).
if sk copy --src-tls-verify=false --dest-tls-verify=false \
	"docker://$REG/sk/img:v1" "docker://$REG/sk/copy:v1"; then
	expect_eq skopeo.copy_repo_digest "$APP" "$(reg_head_digest sk/copy v1)"
	n=0
	for b in $APP_CFG $APP_LAYERS; do reg_blob_exists sk/copy "$b" && n=$((n + 1)); done
	expect_eq skopeo.copy_repo_blobs 3 "$n"
else
	fail "skopeo.copy_repo: $(why 'copy docker -> docker failed')"
fi
if sk copy --all --src-tls-verify=false --dest-tls-verify=false \
	"docker://$REG/sk/multi:v1" "docker://$REG/sk/multicopy:v1"; then
	expect_eq skopeo.copy_index_digest "$IDX_DIGEST" "$(reg_head_digest sk/multicopy v1)"
	n=0
	for b in $IDX_AMD64_LAYERS $IDX_ARM64_LAYERS; do
		reg_blob_exists sk/multicopy "$b" && n=$((n + 1))
	done
	expect_eq skopeo.copy_index_blobs 4 "$n"
else
	fail "skopeo.copy_index: $(why 'copy --all docker -> docker failed')"
fi

# 7. inspect: digest, and --raw is exactly the stored manifest.
j=$(skq inspect --tls-verify=false "docker://$REG/sk/img:v1")
expect_eq skopeo.inspect_digest "$APP" "$(printf '%s' "$j" | jq -r .Digest 2>/dev/null)"
raw=$(skq inspect --raw --tls-verify=false "docker://$REG/sk/img:v1" | sha256sum | cut -d' ' -f1)
expect_eq skopeo.inspect_raw_digest "$APP" "sha256:$raw"
j=$(skq inspect --tls-verify=false --override-arch arm64 --override-variant v8 "docker://$REG/sk/multi:v1")
# On an index, .Digest is the index's; the config read is the arm64 child's.
expect_eq skopeo.inspect_index_arm64 "$IDX_DIGEST arm64" \
	"$(printf '%s' "$j" | jq -r '"\(.Digest) \(.Architecture)"' 2>/dev/null)"

# 8. list-tags.
sk copy --src-tls-verify=false --dest-tls-verify=false "docker://$REG/sk/img:v1" "docker://$REG/sk/img:v2"
tags=$(skq list-tags --tls-verify=false "docker://$REG/sk/img" | jq -r '.Tags | sort | join(",")' 2>/dev/null)
expect_eq skopeo.list_tags "v1,v2" "$tags"

# 9. delete: the manifest is gone from that repository only.
if sk delete --tls-verify=false "docker://$REG/sk/copy:v1"; then
	body=$($CURL -H "Accept: $MANIFEST_ACCEPT" -w '\n%{http_code}' "$URL/v2/sk/copy/manifests/$APP")
	code=$(printf '%s' "$body" | tail -n 1)
	errc=$(printf '%s' "$body" | sed '$d' | jq -r '.errors[0].code' 2>/dev/null)
	expect_eq skopeo.delete_get_by_digest "404 MANIFEST_UNKNOWN" "$code $errc"
	expect_eq skopeo.delete_tag_gone 404 "$(reg_code HEAD /v2/sk/copy/manifests/v1 -H "Accept: $MANIFEST_ACCEPT")"
	expect_eq skopeo.delete_other_repo_kept "$APP" "$(reg_head_digest sk/img v1)"
else
	fail "skopeo.delete: $(why 'skopeo delete failed')"
fi
exit 0
