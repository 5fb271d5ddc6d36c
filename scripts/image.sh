#!/usr/bin/env bash
# Builds berth's container image from scratch with buildah: no base image, no
# network. The image holds the release binary, the shared libraries ldd finds
# for it (loader included), Debian's CA bundle and a minimal /etc; nothing
# else (no shell). Runs as root; buildah's storage is private to build/image.
#   scripts/image.sh build   build/release/berth -> build/image/berth.oci.tar,
#                            build/image/REF (berth:<version>), build/image/SIZE
#   scripts/image.sh push    skopeo copy of the archive to
#                            $REGISTRY/$IMAGE_NAME:$IMAGE_TAG, with $PUSH_FLAGS
# Labels: IMAGE_SOURCE, IMAGE_LICENSES; SOURCE_DATE_EPOCH fixes timestamps.
set -euo pipefail
umask 022

bin=build/release/berth
out=build/image
archive=$out/berth.oci.tar
certs=/etc/ssl/certs/ca-certificates.crt
bah=(buildah --root "$out/storage" --runroot "$out/run" --storage-driver vfs)
ctr=

die() {
	echo "image.sh: $*" >&2
	exit 1
}

# version prints the version the binary reports ("berth 0.1.0" -> 0.1.0).
version() {
	"$bin" --version | awk '{ print $2 }'
}

# revision prints the git commit, "-dirty" if the tree has changes, or
# "unknown" outside a git checkout.
revision() {
	local rev
	rev=$(git rev-parse HEAD 2>/dev/null) || { echo unknown; return; }
	[ -z "$(git status --porcelain 2>/dev/null)" ] || rev+=-dirty
	echo "$rev"
}

# created prints the build time in RFC 3339 UTC: SOURCE_DATE_EPOCH if set.
created() {
	date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%dT%H:%M:%SZ
}

# libs prints each path ldd resolves for the binary, the loader as ldd names
# it (/lib64/ld-linux-x86-64.so.2); fails if a library is not found.
libs() {
	ldd "$bin" | awk '
		/not found/ { print "image.sh: not found: " $1 > "/dev/stderr"; bad = 1 }
		$2 == "=>" && $3 ~ /^\// { print $3; next }
		$1 ~ /^\// { print $1 }
		END { exit bad }'
}

# etc writes passwd, group and nsswitch.conf for root and berth (65532).
etc() {
	local e=$1/etc
	printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' \
		'berth:x:65532:65532:berth:/var/lib/berth:/usr/sbin/nologin' >"$e/passwd"
	printf '%s\n' 'root:x:0:' 'berth:x:65532:' >"$e/group"
	printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$e/nsswitch.conf"
}

# stage fills directory $1 with the image's files, owners and modes; each
# library is the real file copied to the path ldd printed (symlinks followed).
stage() {
	local root=$1 list so sos=()
	list=$(libs)
	mapfile -t sos <<<"$list"
	rm -rf "$root"
	mkdir -p "$root"/{usr/bin,etc/ssl/certs,var/lib/berth,tmp}
	strip --strip-debug -o "$root/usr/bin/berth" "$bin" # debug info stays in build/release
	for so in "${sos[@]}"; do
		mkdir -p "$root${so%/*}"
		cp -L "$so" "$root$so"
	done
	cp -L "$certs" "$root$certs"
	etc "$root"
	chown 65532:65532 "$root/var/lib/berth"
	chmod 0750 "$root/var/lib/berth"
	chmod 1777 "$root/tmp"
	echo "image.sh: ${#sos[@]} libraries: ${sos[*]##*/}" >&2
}

# cleanup removes the working container, if one is left.
cleanup() {
	[ -z "$ctr" ] || "${bah[@]}" rm "$ctr" >/dev/null 2>&1 || true
}

# configure sets entrypoint, command, user and OCI labels on the container.
configure() {
	local ver=$1 l=org.opencontainers.image
	"${bah[@]}" config \
		--entrypoint '["/usr/bin/berth"]' \
		--cmd '["serve","--listen",":5000","--data","/var/lib/berth"]' \
		--user 65532:65532 --workingdir /var/lib/berth --port 5000/tcp \
		--env SSL_CERT_FILE="$certs" \
		--label "$l.title=berth" \
		--label "$l.description=berth, an OCI container registry" \
		--label "$l.source=${IMAGE_SOURCE:-https://github.com/berth-registry/berth}" \
		--label "$l.version=$ver" \
		--label "$l.revision=$(revision)" \
		--label "$l.licenses=${IMAGE_LICENSES:-NOASSERTION}" \
		--label "$l.created=$(created)" \
		--created-by 'scripts/image.sh' "$ctr"
}

# size measures the single layer uncompressed and gzip -9 compressed and
# writes both, in bytes, to SIZE.
size() {
	local digest raw gz
	digest=$(skopeo inspect --format '{{range .Layers}}{{.}}{{end}}' "oci-archive:$archive")
	raw=$(tar -xOf "$archive" --wildcards "*blobs/sha256/${digest#sha256:}" | gzip -dcf | wc -c)
	gz=$(tar -xOf "$archive" --wildcards "*blobs/sha256/${digest#sha256:}" | gzip -dcf | gzip -9 | wc -c)
	printf 'layer_bytes=%s\nlayer_gzip_bytes=%s\n' "$raw" "$gz" | tee "$out/SIZE"
}

build() {
	local ver ref stamp=()
	[ -x "$bin" ] || die "$bin missing: run make MODE=release bin"
	ver=$(version)
	ref=berth:$ver
	[ -z "${SOURCE_DATE_EPOCH:-}" ] || stamp=(--timestamp "$SOURCE_DATE_EPOCH")
	mkdir -p "$out"
	stage "$out/rootfs"
	tar -C "$out/rootfs" -cf "$out/rootfs.tar" --numeric-owner --sort=name \
		${SOURCE_DATE_EPOCH:+--mtime=@$SOURCE_DATE_EPOCH} .
	"${bah[@]}" rm --all >/dev/null # left by an interrupted run
	trap cleanup EXIT
	ctr=$("${bah[@]}" from --name berth-image scratch)
	"${bah[@]}" add -q "$ctr" "$out/rootfs.tar" / >/dev/null
	configure "$ver"
	"${bah[@]}" commit -q --format oci --identity-label=false "${stamp[@]}" \
		"$ctr" "localhost/$ref" >/dev/null
	rm -f "$archive"
	"${bah[@]}" push -q "localhost/$ref" "oci-archive:$archive:$ref"
	"${bah[@]}" rmi -f "localhost/$ref" >/dev/null
	rm -rf "$out/rootfs" "$out/rootfs.tar"
	echo "$ref" >"$out/REF"
	echo "image.sh: $archive ($ref)"
	size
}

push() {
	local ref flags=()
	[ -n "${REGISTRY:-}" ] || die "REGISTRY is empty: make image-push REGISTRY=host:port"
	[ -f "$archive" ] || die "$archive missing: run make image"
	ref=$(cat "$out/REF")
	read -ra flags <<<"${PUSH_FLAGS:-}"
	skopeo copy "${flags[@]}" "oci-archive:$archive" \
		"docker://$REGISTRY/${IMAGE_NAME:-berth}:${IMAGE_TAG:-${ref#*:}}"
}

case "${1:-}" in
build) build ;;
push) push ;;
*) die "usage: scripts/image.sh build|push" ;;
esac
