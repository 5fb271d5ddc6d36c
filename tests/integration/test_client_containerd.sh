#!/usr/bin/env bash
# containerd's ctr (what kubelet's runtime does) against the registry,
# through a private containerd with the native snapshotter: pull with
# --plain-http and through a hosts.toml entry, unpack and read a file,
# push to another repository (blob mounts), multi-arch index and Docker
# schema2 pulls. Images are pushed first by skopeo from hand-built layouts.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh

export CONTAINERD_SNAPSHOTTER=native
c() { run ctr -a "$CTD_SOCK" -n berth-test "$@"; }
cq() { timeout 60 ctr -a "$CTD_SOCK" -n berth-test "$@" 2>>"$T/clients.log"; }
why() { echo "$1 (ctr: $(tail_msg "$T/last.out"))"; }
sk() { run skopeo --policy "$POLICY" copy --dest-tls-verify=false "$@"; }
# image_digest REF: target digest in `ctr images ls`.
image_digest() { cq images ls | awk -v r="$1" '$1 == r { print $3 }'; }
# mounted_file REF PATH [PLATFORM]: PATH's content in the unpacked image.
mounted_file() {
	local m=$T/mnt.$RANDOM out
	mkdir -p "$m"
	c images mount ${3:+--platform "$3"} "$1" "$m" || return 1
	out=$(cat "$m/$2" 2>/dev/null)
	c images unmount --rm "$m"
	printf '%s' "$out"
}
# layer_file DIGEST PATH: PATH's content inside a layer blob of the content store.
layer_file() { cq content get "$1" | tar -xzO "./$2" 2>/dev/null; }

if ! start_registry; then
	fail "ctr.registry_start: $REGISTRY_UNDER_TEST did not answer"
	exit 1
fi
L=$T/layout
make_oci_image "$L" app "hello from containerd" || { fail "ctr.build_image"; exit 1; }
APP=$IMG_MANIFEST_DIGEST APP_CFG=$IMG_CONFIG_DIGEST APP_LAYERS=$IMG_LAYERS
APP_TOP=${APP_LAYERS##* }
make_oci_index "$L" multi "content amd64" "content arm64" || { fail "ctr.build_index"; exit 1; }
if ! sk "oci:$L:app" "docker://$REG/sk/img:v1" || ! sk --all "oci:$L:multi" "docker://$REG/sk/multi:v1" ||
	! sk --format v2s2 "oci:$L:app" "docker://$REG/sk/docker:v1"; then
	fail "ctr.seed: skopeo copy failed: $(tail_msg "$T/last.out")"
	exit 1
fi
DOCKER_V2=$(reg_head_digest sk/docker v1)

if ! start_containerd; then
	fail "ctr.containerd_start: $(grep -E 'level=(fatal|error)' "$T/ctd/containerd.log" | tail -n 1 | tail -c 400)"
	exit 1
fi

# 1. Pull over plain HTTP; the default pull unpacks into the snapshotter.
IMG=$REG/sk/img:v1
if c images pull --plain-http "$IMG"; then
	expect_eq ctr.pull_digest "$APP" "$(image_digest "$IMG")"
	expect_eq ctr.pull_unpacked_file "hello from containerd" "$(mounted_file "$IMG" hello.txt)"
	expect_eq ctr.pull_unpacked_base "berth test base amd64" "$(mounted_file "$IMG" etc/berth-release)"
	expect_eq ctr.pull_layer_blob "hello from containerd" "$(layer_file "$APP_TOP" hello.txt)"
	got=$(cq content get "$APP" | sha256sum | cut -d' ' -f1)
	expect_eq ctr.pull_manifest_bytes "$APP" "sha256:$got"
else
	fail "ctr.pull: $(why 'ctr images pull --plain-http failed')"
fi

# 2. Push to another repository: same digest, every blob present there.
if c images push --plain-http "$REG/ct/img:v1" "$IMG"; then
	expect_eq ctr.push_digest "$APP" "$(reg_head_digest ct/img v1)"
	n=0
	for b in $APP_CFG $APP_LAYERS; do reg_blob_exists ct/img "$b" && n=$((n + 1)); done
	expect_eq ctr.push_blobs 3 "$n"
else
	fail "ctr.push: $(why 'ctr images push --plain-http failed')"
fi

# 3. Same pull through certs.d/HOST/hosts.toml (an http server entry, as on
# a node), after removing the image and letting containerd collect its
# content so that everything is fetched again.
mkdir -p "$T/certs.d/$REG"
cat >"$T/certs.d/$REG/hosts.toml" <<EOF
server = "http://$REG"

[host."http://$REG"]
  capabilities = ["pull", "resolve", "push"]
EOF
c images rm --sync "$IMG"
if cq content get "$APP_TOP" >/dev/null 2>&1; then
	fail "ctr.gc_before_hosts_pull: layer still in the content store after images rm --sync"
fi
if c images pull --hosts-dir "$T/certs.d" "$IMG"; then
	expect_eq ctr.hosts_pull_digest "$APP" "$(image_digest "$IMG")"
	expect_eq ctr.hosts_pull_layer_blob "hello from containerd" "$(layer_file "$APP_TOP" hello.txt)"
	expect_eq ctr.hosts_pull_unpacked_file "hello from containerd" "$(mounted_file "$IMG" hello.txt)"
else
	fail "ctr.hosts_pull: $(why 'ctr images pull --hosts-dir failed')"
fi
if c images push --hosts-dir "$T/certs.d" "$REG/ct/hosts:v1" "$IMG"; then
	expect_eq ctr.hosts_push_digest "$APP" "$(reg_head_digest ct/hosts v1)"
else
	fail "ctr.hosts_push: $(why 'ctr images push --hosts-dir failed')"
fi

# 4. Multi-arch index: the default platform is unpacked, the others fetched
# with --all-platforms; then the whole index is pushed elsewhere.
MI=$REG/sk/multi:v1
if c images pull --plain-http --all-platforms "$MI"; then
	expect_eq ctr.index_digest "$IDX_DIGEST" "$(image_digest "$MI")"
	got=$(cq content get "$IDX_ARM64" | sha256sum | cut -d' ' -f1)
	expect_eq ctr.index_child_arm64 "$IDX_ARM64" "sha256:$got"
	expect_eq ctr.index_arm64_layer "content arm64" "$(layer_file "${IDX_ARM64_LAYERS##* }" hello.txt)"
	expect_eq ctr.index_amd64_unpacked "content amd64" "$(mounted_file "$MI" hello.txt linux/amd64)"
	if c images push --plain-http "$REG/ct/multi:v1" "$MI"; then
		expect_eq ctr.index_push_digest "$IDX_DIGEST" "$(reg_head_digest ct/multi v1)"
		expect_eq ctr.index_push_child_arm64 "$IDX_ARM64" "$(reg_head_digest ct/multi "$IDX_ARM64")"
		expect_eq ctr.index_push_child_amd64 "$IDX_AMD64" "$(reg_head_digest ct/multi "$IDX_AMD64")"
	else
		fail "ctr.index_push: $(why 'ctr images push of the index failed')"
	fi
else
	fail "ctr.index_pull: $(why 'ctr images pull --all-platforms failed')"
fi

# 5. Docker schema2 image.
if c images pull --plain-http "$REG/sk/docker:v1"; then
	expect_eq ctr.docker_v2_digest "$DOCKER_V2" "$(image_digest "$REG/sk/docker:v1")"
	expect_eq ctr.docker_v2_type application/vnd.docker.distribution.manifest.v2+json \
		"$(cq images ls | awk -v r="$REG/sk/docker:v1" '$1 == r { print $2 }')"
	expect_eq ctr.docker_v2_file "hello from containerd" "$(mounted_file "$REG/sk/docker:v1" hello.txt)"
else
	fail "ctr.docker_v2_pull: $(why 'ctr images pull of a schema2 image failed')"
fi

# 6. Pull by digest.
if c images pull --plain-http "$REG/sk/multi@$IDX_AMD64"; then
	expect_eq ctr.pull_by_digest "$IDX_AMD64" "$(image_digest "$REG/sk/multi@$IDX_AMD64")"
else
	fail "ctr.pull_by_digest: $(why 'ctr images pull @digest failed')"
fi
exit 0
