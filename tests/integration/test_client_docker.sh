#!/usr/bin/env bash
# docker (CI's path) against the registry, through a private dockerd using
# the vfs driver: push, digest agreement, rmi + pull (image ID and file
# content), cross-repository mount on push, pull by digest, multi-arch pulls.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh

# d ARGS...: the Debian docker client, bounded, output kept in a log.
d() {
	echo "+ docker $*" >>"$T/docker.log"
	timeout 120 "$DOCKER" "$@" >"$T/last.out" 2>&1
	local rc=$?
	cat "$T/last.out" >>"$T/docker.log"
	return $rc
}
why() { echo "$1 (docker: $(tail_msg "$T/last.out" 2))"; }
push_digest() { sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\) size.*/\1/p' "$T/last.out" | tail -n 1; }
image_id() { timeout 30 "$DOCKER" image inspect -f '{{.Id}}' "$1" 2>/dev/null; }
# container_file IMAGE PATH: PATH's content, read through docker create +
# docker export (nothing is run).
container_file() {
	local c out
	c=$(timeout 30 "$DOCKER" create "$1" 2>>"$T/docker.log") || return 1
	out=$(timeout 60 "$DOCKER" export "$c" 2>>"$T/docker.log" | tar -xO "$2" 2>/dev/null)
	timeout 30 "$DOCKER" rm -f "$c" >/dev/null 2>&1
	printf '%s' "$out"
}
container_file_digest() {
	local c out
	c=$(timeout 30 "$DOCKER" create "$1" 2>>"$T/docker.log") || return 1
	out=$(timeout 60 "$DOCKER" export "$c" 2>>"$T/docker.log" | tar -xO "$2" 2>/dev/null |
		sha256sum | cut -d' ' -f1)
	timeout 30 "$DOCKER" rm -f "$c" >/dev/null 2>&1
	printf 'sha256:%s' "$out"
}

if ! start_registry; then
	fail "docker.registry_start: $REGISTRY_UNDER_TEST did not answer"
	exit 1
fi

L=$T/layout
# 3 MiB of random bytes in the app layer so the push streams a real body.
make_oci_image "$L" app "hello from docker" amd64 3072 || { fail "docker.build_image"; exit 1; }
CFG=$IMG_CONFIG_DIGEST BIG=$IMG_BIG_DIGEST
make_oci_index "$L" multi "content amd64" "content arm64" || { fail "docker.build_index"; exit 1; }
if ! timeout 120 skopeo --policy "$POLICY" copy "oci:$L:app" "docker-archive:$T/app.tar:ci/app:v1" \
	>>"$T/skopeo.log" 2>&1; then
	fail "docker.build_archive: $(tail_msg "$T/skopeo.log")"
	exit 1
fi

if ! start_dockerd; then
	fail "docker.dockerd_start: $(grep -E 'level=(fatal|error)' "$T/dockerd.log" | tail -n 1 | tail -c 400)"
	exit 1
fi

if ! d load -i "$T/app.tar"; then
	fail "docker.load: $(why 'docker load failed')"
	exit 1
fi
# The image ID docker gives is the config digest: it must survive push+pull.
expect_eq docker.load_image_id "$CFG" "$(image_id ci/app:v1)"

IMG=$REG/ci/app:v1
d tag ci/app:v1 "$IMG"
if d push "$IMG"; then
	P=$(push_digest)
	expect_eq docker.push_digest_head "$P" "$(reg_head_digest ci/app v1)"
	expect_eq docker.push_content_type application/vnd.docker.distribution.manifest.v2+json \
		"$(reg_content_type ci/app v1)"
	body=$(reg_manifest ci/app v1 | sha256sum | cut -d' ' -f1)
	expect_eq docker.push_body_digest "$P" "sha256:$body"
	n=0 want=0
	for b in $(reg_manifest ci/app v1 | jq -r '.config.digest, .layers[].digest'); do
		want=$((want + 1))
		got=$($CURL "$URL/v2/ci/app/blobs/$b" | sha256sum | cut -d' ' -f1)
		[ "sha256:$got" = "$b" ] && n=$((n + 1))
	done
	expect_eq docker.push_blobs_content "3/3" "$n/$want"
else
	fail "docker.push: $(why 'docker push failed')"
	P=
fi

# Same image, second tag in the same repository: nothing is uploaded again.
d tag ci/app:v1 "$REG/ci/app:v2"
if d push "$REG/ci/app:v2"; then
	expect_eq docker.push_retag_digest "$P" "$(push_digest)"
	expect_eq docker.push_retag_layers_exist 2 "$(grep -c ': Layer already exists' "$T/last.out")"
else
	fail "docker.push_retag: $(why 'docker push v2 failed')"
fi

# Second repository: every layer must be cross-mounted from ci/app.
d tag ci/app:v1 "$REG/ci/other:v1"
if d push "$REG/ci/other:v1"; then
	expect_eq docker.push_other_digest "$P" "$(push_digest)"
	expect_eq docker.push_other_mounted 2 "$(grep -c ': Mounted from ci/app' "$T/last.out")"
	expect_eq docker.push_other_head "$P" "$(reg_head_digest ci/other v1)"
else
	fail "docker.push_other: $(why 'docker push ci/other failed')"
fi

# rmi everything, pull back: same image ID, same files.
d rmi "$IMG" "$REG/ci/app:v2" "$REG/ci/other:v1" ci/app:v1
if [ -n "$(image_id "$IMG")" ]; then fail "docker.rmi: image still present"; fi
if d pull "$IMG"; then
	expect_eq docker.pull_digest "Digest: $P" "$(grep -o 'Digest: sha256:[0-9a-f]*' "$T/last.out")"
	expect_eq docker.pull_image_id "$CFG" "$(image_id "$IMG")"
	expect_eq docker.pull_file "hello from docker" "$(container_file "$IMG" hello.txt)"
	expect_eq docker.pull_big_file "$BIG" "$(container_file_digest "$IMG" big.bin)"
	expect_eq docker.pull_base_file "berth test base amd64" "$(container_file "$IMG" etc/berth-release)"
else
	fail "docker.pull: $(why 'docker pull failed')"
fi

# A missing tag: docker shows the registry's OCI error code.
if d pull "$REG/ci/app:missing"; then
	fail "docker.pull_missing_tag: pull of a missing tag succeeded"
else
	expect_eq docker.pull_missing_tag yes \
		"$(grep -q 'manifest unknown' "$T/last.out" && echo yes || tail_msg "$T/last.out")"
fi

# Pull by digest (what a Deployment pinned to a digest does).
d rmi "$IMG"
if d pull "$REG/ci/other@$P"; then
	expect_eq docker.pull_by_digest_id "$CFG" "$(image_id "$REG/ci/other@$P")"
else
	fail "docker.pull_by_digest: $(why 'docker pull @digest failed')"
fi

# Multi-arch index (pushed by skopeo): docker picks the platform's child.
if timeout 120 skopeo --policy "$POLICY" copy --all --dest-tls-verify=false \
	"oci:$L:multi" "docker://$REG/ci/multi:v1" >>"$T/skopeo.log" 2>&1; then
	if d pull "$REG/ci/multi:v1"; then
		expect_eq docker.pull_index_amd64 "content amd64" "$(container_file "$REG/ci/multi:v1" hello.txt)"
	else
		fail "docker.pull_index_amd64: $(why 'docker pull index failed')"
	fi
	if d pull --platform linux/arm64 "$REG/ci/multi:v1"; then
		expect_eq docker.pull_index_arm64 "content arm64" "$(container_file "$REG/ci/multi:v1" hello.txt)"
		expect_eq docker.pull_index_arm64_digest "Digest: $IDX_DIGEST" \
			"$(grep -o 'Digest: sha256:[0-9a-f]*' "$T/last.out")"
	else
		fail "docker.pull_index_arm64: $(why 'docker pull --platform linux/arm64 failed')"
	fi
else
	fail "docker.index_push: skopeo copy --all failed: $(tail_msg "$T/skopeo.log")"
fi

# docker build FROM an image in the registry (COPY and LABEL only: nothing
# runs), with the classic builder and with BuildKit, then push: only the new
# layer is uploaded, the base layers are already there.
mkdir -p "$T/ctx"
printf 'FROM %s\nCOPY built.txt /built.txt\nLABEL org.example.ci=yes\n' "$REG/ci/app:v1" >"$T/ctx/Dockerfile"
for b in classic:0 buildkit:1; do
	name=${b%%:*} tag=$REG/ci/built:$name
	printf 'built by docker %s\n' "$name" >"$T/ctx/built.txt"
	if DOCKER_BUILDKIT=${b#*:} d build -t "$tag" "$T/ctx"; then
		if d push "$tag"; then
			BP=$(push_digest)
			expect_eq "docker.build_${name}_push_digest" "$BP" "$(reg_head_digest ci/built "$name")"
			expect_eq "docker.build_${name}_push_uploads" 1 "$(grep -c ': Pushed' "$T/last.out")"
			d rmi "$tag"
			if d pull "$REG/ci/built@$BP"; then
				expect_eq "docker.build_${name}_pull_files" "built by docker $name|hello from docker" \
					"$(container_file "$REG/ci/built@$BP" built.txt)|$(container_file "$REG/ci/built@$BP" hello.txt)"
			else
				fail "docker.build_${name}_pull: $(why 'docker pull failed')"
			fi
		else
			fail "docker.build_${name}_push: $(why 'docker push failed')"
		fi
	else
		fail "docker.build_$name: $(why 'docker build failed')"
	fi
done
exit 0
