#!/usr/bin/env bash
# buildah and podman against the registry, each with a private vfs store:
# buildah builds FROM scratch and pushes (OCI and Docker formats), podman
# pulls back, re-pushes to another repository, pulls a platform out of a
# multi-arch index, and pushes a manifest list it assembled itself.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh

# FROM scratch needs no namespaces, but nothing here may try to create them.
export BUILDAH_ISOLATION=chroot
BSTORE=(--root "$T/bs" --runroot "$T/bsr" --storage-driver vfs)
PSTORE=(--root "$T/ps" --runroot "$T/psr" --storage-driver vfs)

run() {
	local rc t0=$SECONDS
	echo "+ $*" >>"$T/clients.log"
	timeout 120 "$@" >"$T/last.out" 2>"$T/last.err"
	rc=$?
	cat "$T/last.out" "$T/last.err" >>"$T/clients.log"
	echo "= rc $rc in $((SECONDS - t0)) s" >>"$T/clients.log"
	return $rc
}
bd() { run buildah "${BSTORE[@]}" "$@"; }
pd() { run podman "${PSTORE[@]}" "$@"; }
why() { echo "$1 ($(tail_msg "$T/last.err"))"; }
# pd_file IMAGE PATH: PATH's content through podman image mount.
pd_file() {
	local m
	pd image mount "$1" || return 1
	m=$(cat "$T/last.out")
	cat "$m/$2" 2>/dev/null
	pd image unmount "$1"
}

if ! start_registry; then
	fail "podman.registry_start: $REGISTRY_UNDER_TEST did not answer"
	exit 1
fi
SP=(--signature-policy "$POLICY")
NV=(--tls-verify=false)

# 1. buildah: FROM scratch, copy one file, commit, push (OCI).
printf 'hello from buildah\n' >"$T/hello.txt"
if bd from "${SP[@]}" --name bw scratch && bd copy bw "$T/hello.txt" /hello.txt &&
	bd config --cmd /hello --label org.example.name=bd bw &&
	bd commit "${SP[@]}" bw bd/img:v1; then
	ok buildah.build_scratch
else
	fail "buildah.build_scratch: $(why 'buildah from/copy/commit failed')"
	exit 1
fi
BID=$(buildah "${BSTORE[@]}" inspect -t image -f '{{.FromImageID}}' bd/img:v1 2>/dev/null)
if bd push "${SP[@]}" "${NV[@]}" --digestfile "$T/bd.dig" bd/img:v1 "docker://$REG/bd/img:v1"; then
	BD=$(cat "$T/bd.dig")
	expect_eq buildah.push_digest "$BD" "$(reg_head_digest bd/img v1)"
	expect_eq buildah.push_content_type application/vnd.oci.image.manifest.v1+json \
		"$(reg_content_type bd/img v1)"
	expect_eq buildah.push_config "sha256:$BID" "$(reg_manifest bd/img v1 | jq -r .config.digest)"
else
	fail "buildah.push: $(why 'buildah push failed')"
	BD=
fi

# Docker schema2 push of the same image.
if bd push "${SP[@]}" "${NV[@]}" --format v2s2 --digestfile "$T/bd2.dig" bd/img:v1 \
	"docker://$REG/bd/docker:v1"; then
	expect_eq buildah.push_v2s2_digest "$(cat "$T/bd2.dig")" "$(reg_head_digest bd/docker v1)"
	expect_eq buildah.push_v2s2_content_type application/vnd.docker.distribution.manifest.v2+json \
		"$(reg_content_type bd/docker v1)"
else
	fail "buildah.push_v2s2: $(why 'buildah push --format v2s2 failed')"
fi

# 2. podman pull into its own store: same digest, same config, same file.
IMG=$REG/bd/img:v1
if pd pull "${SP[@]}" "${NV[@]}" "$IMG"; then
	expect_eq podman.pull_digest "$BD" "$(podman "${PSTORE[@]}" inspect -f '{{.Digest}}' "$IMG" 2>/dev/null)"
	expect_eq podman.pull_image_id "$BID" "$(podman "${PSTORE[@]}" inspect -f '{{.Id}}' "$IMG" 2>/dev/null)"
	expect_eq podman.pull_file "hello from buildah" "$(pd_file "$IMG" hello.txt)"
else
	fail "podman.pull: $(why 'podman pull failed')"
fi
if pd pull "${SP[@]}" "${NV[@]}" "$REG/bd/docker:v1"; then
	expect_eq podman.pull_v2s2_file "hello from buildah" "$(pd_file "$REG/bd/docker:v1" hello.txt)"
else
	fail "podman.pull_v2s2: $(why 'podman pull of the v2s2 image failed')"
fi

# 3. podman push to another repository; skopeo sees the same digest.
if pd push "${SP[@]}" "${NV[@]}" --digestfile "$T/pd.dig" "$IMG" "docker://$REG/pd/img:v1"; then
	PD=$(cat "$T/pd.dig")
	expect_eq podman.push_digest "$PD" "$(reg_head_digest pd/img v1)"
	si=$(timeout 60 skopeo --policy "$POLICY" inspect --tls-verify=false "docker://$REG/pd/img:v1" 2>/dev/null |
		jq -r .Digest)
	expect_eq podman.push_skopeo_inspect "$PD" "$si"
	# The format may differ (podman pushes the manifest it last pulled for
	# that image ID), the blobs may not.
	expect_eq podman.push_same_blobs \
		"$(reg_manifest bd/img v1 | jq -c '[.config.digest, .layers[].digest]')" \
		"$(reg_manifest pd/img v1 | jq -c '[.config.digest, .layers[].digest]')"
	n=0
	for b in $(reg_manifest pd/img v1 | jq -r '.config.digest, .layers[].digest'); do
		reg_blob_exists pd/img "$b" && n=$((n + 1))
	done
	expect_eq podman.push_blobs 2 "$n"
else
	fail "podman.push: $(why 'podman push failed')"
fi

# 4. A platform out of a multi-arch index, and pull by digest.
L=$T/layout
make_oci_index "$L" multi "content amd64" "content arm64" || { fail "podman.build_index"; exit 1; }
if timeout 120 skopeo --policy "$POLICY" copy --all --dest-tls-verify=false \
	"oci:$L:multi" "docker://$REG/pd/multi:v1" >>"$T/clients.log" 2>&1; then
	if pd pull "${SP[@]}" "${NV[@]}" --arch arm64 --variant v8 "$REG/pd/multi:v1"; then
		expect_eq podman.pull_index_arm64 "content arm64" "$(pd_file "$REG/pd/multi:v1" hello.txt)"
	else
		fail "podman.pull_index_arm64: $(why 'podman pull --arch arm64 failed')"
	fi
	if pd pull "${SP[@]}" "${NV[@]}" "$REG/pd/multi@$IDX_AMD64"; then
		expect_eq podman.pull_by_digest "content amd64" "$(pd_file "$REG/pd/multi@$IDX_AMD64" hello.txt)"
	else
		fail "podman.pull_by_digest: $(why 'podman pull @digest failed')"
	fi
else
	fail "podman.index_push: skopeo copy --all failed"
fi

# 5. A manifest list assembled by podman from two pushed images.
if pd manifest create pd/list && pd manifest add "${NV[@]}" pd/list "docker://$IMG" &&
	pd manifest add "${NV[@]}" --arch arm64 pd/list "docker://$REG/pd/multi@$IDX_ARM64" &&
	pd manifest push "${NV[@]}" --all --digestfile "$T/list.dig" pd/list \
		"docker://$REG/pd/list:v1"; then
	LD=$(cat "$T/list.dig")
	expect_eq podman.manifest_push_digest "$LD" "$(reg_head_digest pd/list v1)"
	n=0
	for c in $(reg_manifest pd/list v1 | jq -r '.manifests[].digest'); do
		[ "$(reg_head_digest pd/list "$c")" = "$c" ] && n=$((n + 1))
	done
	expect_eq podman.manifest_push_children 2 "$n"
	expect_eq podman.manifest_push_child_digests "$BD $IDX_ARM64" \
		"$(reg_manifest pd/list v1 | jq -r '[.manifests[].digest] | join(" ")')"
else
	fail "podman.manifest_push: $(why 'podman manifest create/add/push failed')"
fi
exit 0
