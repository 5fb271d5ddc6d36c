# Helpers for the test_client_*.sh scripts. Source it after lib.sh.
#
#   (start_registry, from lib.sh: berth by default or, with
#                         REGISTRY_UNDER_TEST=distribution, Debian's
#                         docker-registry; sets PORT, REG, URL either way)
#   make_oci_image        writes a small single-platform image into an OCI
#                         layout directory (no network, built by hand)
#   make_oci_index        the same for a linux/amd64 + linux/arm64 index
#   start_dockerd         private dockerd (vfs) on $T/docker.sock
#   start_containerd      private containerd (native snapshotter)
#   reg_*                 curl wrappers that read the registry's answers
#
# Everything started here is stopped by clients_cleanup (registered with
# lib.sh's EXIT trap), which also unmounts anything left mounted under $T.
set -u

DOCKERD_PID=
CONTAINERD_PID=
# Every client talks to the registry over plain HTTP on 127.0.0.1; none may
# wait long on anything.
CURL="curl -sS --max-time 20"
MANIFEST_ACCEPT="application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

# Keep the clients away from the host's configuration and credentials.
mkdir -p "$T/home" "$T/xdg"
export DOCKER_CONFIG=$T/home/docker
export REGISTRY_AUTH_FILE=$T/home/auth.json
export CONTAINERS_REGISTRIES_CONF=$T/home/registries.conf
export XDG_RUNTIME_DIR=$T/xdg
printf 'unqualified-search-registries = []\n' >"$CONTAINERS_REGISTRIES_CONF"
printf '{"auths":{}}\n' >"$REGISTRY_AUTH_FILE"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$T/home/policy.json"
POLICY=$T/home/policy.json

# A TERM from tests/run.sh's timeout must still run the EXIT trap.
trap 'exit 143' TERM INT

# run CMD...: runs a client command (120 s at most), its output in
# $T/last.out and appended with the command and its status to
# $T/clients.log. A test may define its own run after sourcing this.
run() {
	local rc t0=$SECONDS
	echo "+ $*" >>"$T/clients.log"
	timeout 120 "$@" >"$T/last.out" 2>&1
	rc=$?
	cat "$T/last.out" >>"$T/clients.log"
	echo "= rc $rc in $((SECONDS - t0)) s" >>"$T/clients.log"
	return $rc
}

# stop_pid PID SECONDS: TERM, bounded wait, then KILL.
stop_pid() {
	local pid=$1 secs=${2:-10}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 $((secs * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

umount_under_t() {
	local m
	# Deepest first; lazy so a busy mount cannot hang the cleanup.
	for m in $(awk -v t="$T" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}

clients_cleanup() {
	stop_pid "$DOCKERD_PID" 20
	DOCKERD_PID=
	# dockerd normally stops the containerd it started; make sure.
	if [ -f "$T/dexec/containerd/containerd.pid" ]; then
		stop_pid "$(cat "$T/dexec/containerd/containerd.pid")" 5
	fi
	stop_pid "$CONTAINERD_PID" 10
	CONTAINERD_PID=
	umount_under_t
	# KEEP_LOGS=DIR keeps the registry's, daemons' and clients' logs.
	if [ -n "${KEEP_LOGS:-}" ]; then
		mkdir -p "$KEEP_LOGS"
		cp "$T"/*.log "$T"/ctd/*.log "$KEEP_LOGS"/ 2>/dev/null
	fi
	# vfs/native storage may hold read-only directories.
	[ -d "$T" ] && chmod -R u+w "$T" 2>/dev/null
	return 0
}
cleanup_fns+=(clients_cleanup)

# tail_msg FILE [LINES]: the last non-empty LINES (1) of FILE on one line,
# keeping the end (where clients put the server's answer), at most 400 chars.
tail_msg() {
	grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n "${2:-1}" | tr '\n' ' ' |
		sed 's/ *$//' | tail -c 400
}

# ---------------------------------------------------------------- registry

# registry_log [N]: the last N lines of the registry's log.
registry_log() {
	tail -n "${1:-20}" "$T/berth.log" 2>/dev/null
}

# reg_head_digest REPO REF: Docker-Content-Digest of HEAD /v2/REPO/manifests/REF.
reg_head_digest() {
	$CURL -I -H "Accept: $MANIFEST_ACCEPT" "$URL/v2/$1/manifests/$2" 2>/dev/null |
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}

# reg_content_type REPO REF: Content-Type of GET /v2/REPO/manifests/REF.
reg_content_type() {
	$CURL -o /dev/null -D - -H "Accept: $MANIFEST_ACCEPT" "$URL/v2/$1/manifests/$2" 2>/dev/null |
		tr -d '\r' | awk 'tolower($1) == "content-type:" { print $2 }'
}

# reg_manifest REPO REF: the manifest body.
reg_manifest() {
	$CURL -H "Accept: $MANIFEST_ACCEPT" "$URL/v2/$1/manifests/$2"
}

# reg_code METHOD PATH [curl args]: HTTP status code only.
reg_code() {
	local m=$1 p=$2
	shift 2
	if [ "$m" = HEAD ]; then
		$CURL -o /dev/null -w '%{http_code}' -I "$@" "$URL$p" 2>/dev/null
	else
		$CURL -o /dev/null -w '%{http_code}' -X "$m" "$@" "$URL$p" 2>/dev/null
	fi
}

# reg_blob_exists REPO DIGEST: true when HEAD of the blob answers 200.
reg_blob_exists() {
	[ "$(reg_code HEAD "/v2/$1/blobs/$2")" = 200 ]
}

# ---------------------------------------------------------------- images
#
# Layouts are built by hand: deterministic tars (sorted, uid 0, mtime 0),
# gzip -n, JSON written with jq -c, every blob named by its sha256.

# oci_put_blob LAYOUT FILE: stores FILE as a blob, prints its digest.
oci_put_blob() {
	local d
	d=$(sha256sum "$2" | cut -d' ' -f1)
	mkdir -p "$1/blobs/sha256"
	cp "$2" "$1/blobs/sha256/$d"
	echo "sha256:$d"
}

oci_init_layout() {
	mkdir -p "$1/blobs/sha256"
	[ -f "$1/oci-layout" ] || echo '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
	[ -f "$1/index.json" ] || echo '{"schemaVersion":2,"manifests":[]}' >"$1/index.json"
}

# oci_add_ref LAYOUT MEDIATYPE DIGEST NAME: points index.json's NAME at DIGEST.
oci_add_ref() {
	local size
	size=$(stat -c %s "$1/blobs/sha256/${3#sha256:}")
	jq -c --arg mt "$2" --arg d "$3" --argjson s "$size" --arg n "$4" \
		'.manifests = ([.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] != $n)]
		  + [{mediaType: $mt, digest: $d, size: $s,
		      annotations: {"org.opencontainers.image.ref.name": $n}}])' \
		"$1/index.json" >"$1/index.json.new" && mv "$1/index.json.new" "$1/index.json"
}

# layer_from_dir LAYOUT DIR: tar+gzip DIR into a layer blob; sets
# LAYER_DIGEST, LAYER_SIZE, LAYER_DIFF_ID.
layer_from_dir() {
	local tmp=$1/.tmp-layer
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-C "$2" -cf "$tmp.tar" .
	LAYER_DIFF_ID=$(sha256 "$tmp.tar")
	gzip -n -9 -c "$tmp.tar" >"$tmp.tar.gz"
	LAYER_SIZE=$(stat -c %s "$tmp.tar.gz")
	LAYER_DIGEST=$(oci_put_blob "$1" "$tmp.tar.gz")
	rm -f "$tmp.tar" "$tmp.tar.gz"
}

# build_oci_manifest LAYOUT NAME CONTENT ARCH [BIG_KIB]: two layers (a base
# layer with /etc/berth-release, an app layer with /hello.txt = CONTENT and,
# when BIG_KIB is given, /big.bin of that many KiB of random bytes whose
# digest goes to IMG_BIG_DIGEST) + config +
# manifest, stored as blobs but not referenced from index.json. IMG_LABELS,
# a JSON object, adds config labels (e.g. a TTL label). Sets
# IMG_MANIFEST_DIGEST, IMG_MANIFEST_SIZE, IMG_CONFIG_DIGEST, IMG_LAYERS.
build_oci_manifest() {
	local lay=$1 name=$2 content=$3 arch=$4 big=${5:-0} w=$1/.tmp-build
	local l1 s1 d1 l2 s2 d2 cfg man
	rm -rf "$w"
	mkdir -p "$w/base/etc" "$w/app"
	printf 'berth test base %s\n' "$arch" >"$w/base/etc/berth-release"
	layer_from_dir "$lay" "$w/base"
	l1=$LAYER_DIGEST s1=$LAYER_SIZE d1=$LAYER_DIFF_ID
	printf '%s\n' "$content" >"$w/app/hello.txt"
	chmod 0644 "$w/app/hello.txt" "$w/base/etc/berth-release"
	IMG_BIG_DIGEST=
	if [ "$big" -gt 0 ]; then
		head -c "$((big * 1024))" /dev/urandom >"$w/app/big.bin"
		chmod 0644 "$w/app/big.bin"
		IMG_BIG_DIGEST=$(sha256 "$w/app/big.bin")
	fi
	layer_from_dir "$lay" "$w/app"
	l2=$LAYER_DIGEST s2=$LAYER_SIZE d2=$LAYER_DIFF_ID
	jq -nc --arg arch "$arch" --arg d1 "$d1" --arg d2 "$d2" --arg n "$name" \
		--argjson more "${IMG_LABELS:-"{}"}" '{
		created: "2024-01-01T00:00:00Z", architecture: $arch, os: "linux",
		config: {Cmd: ["/hello"], Env: ["PATH=/"], Labels: ({"org.example.name": $n} + $more)},
		rootfs: {type: "layers", diff_ids: [$d1, $d2]},
		history: [{created: "2024-01-01T00:00:00Z", created_by: "berth test base"},
		          {created: "2024-01-01T00:00:00Z", created_by: "berth test app"}]}' \
		>"$w/config.json"
	cfg=$(oci_put_blob "$lay" "$w/config.json")
	jq -nc --arg cfg "$cfg" --argjson cs "$(stat -c %s "$w/config.json")" \
		--arg l1 "$l1" --argjson s1 "$s1" --arg l2 "$l2" --argjson s2 "$s2" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cfg, size: $cs},
		layers: [
		  {mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l1, size: $s1},
		  {mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l2, size: $s2}]}' \
		>"$w/manifest.json"
	man=$(oci_put_blob "$lay" "$w/manifest.json")
	IMG_MANIFEST_DIGEST=$man
	IMG_MANIFEST_SIZE=$(stat -c %s "$w/manifest.json")
	IMG_CONFIG_DIGEST=$cfg
	IMG_LAYERS="$l1 $l2"
	rm -rf "$w"
}

# make_oci_image LAYOUT NAME CONTENT [ARCH [BIG_KIB]]: a linux/ARCH (amd64)
# image tagged NAME in the OCI layout LAYOUT (created if needed) whose
# /hello.txt holds CONTENT (and /big.bin random bytes, see above). Sets
# IMG_MANIFEST_DIGEST, IMG_CONFIG_DIGEST, IMG_LAYERS (two layer digests,
# app layer last), IMG_BIG_DIGEST.
make_oci_image() {
	oci_init_layout "$1"
	build_oci_manifest "$1" "$2" "$3" "${4:-amd64}" "${5:-0}" || return 1
	oci_add_ref "$1" application/vnd.oci.image.manifest.v1+json "$IMG_MANIFEST_DIGEST" "$2"
}

# make_oci_index LAYOUT NAME CONTENT_AMD64 CONTENT_ARM64: an image index
# tagged NAME with a linux/amd64 and a linux/arm64 manifest whose
# /hello.txt differ. Sets IDX_DIGEST, IDX_AMD64, IDX_ARM64 (child manifest
# digests), IDX_AMD64_LAYERS, IDX_ARM64_LAYERS.
make_oci_index() {
	local lay=$1 am as rm rs
	oci_init_layout "$lay"
	build_oci_manifest "$lay" "$2" "$3" amd64 || return 1
	am=$IMG_MANIFEST_DIGEST as=$IMG_MANIFEST_SIZE IDX_AMD64_LAYERS=$IMG_LAYERS
	build_oci_manifest "$lay" "$2" "$4" arm64 || return 1
	rm=$IMG_MANIFEST_DIGEST rs=$IMG_MANIFEST_SIZE IDX_ARM64_LAYERS=$IMG_LAYERS
	jq -nc --arg am "$am" --argjson asz "$as" --arg rm "$rm" --argjson rsz "$rs" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [
		  {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $am, size: $asz,
		   platform: {architecture: "amd64", os: "linux"}},
		  {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $rm, size: $rsz,
		   platform: {architecture: "arm64", os: "linux", variant: "v8"}}]}' \
		>"$lay/.tmp-index.json"
	IDX_DIGEST=$(oci_put_blob "$lay" "$lay/.tmp-index.json")
	rm -f "$lay/.tmp-index.json"
	IDX_AMD64=$am IDX_ARM64=$rm
	oci_add_ref "$lay" application/vnd.oci.image.index.v1+json "$IDX_DIGEST" "$2"
}

# oci_ref_digest LAYOUT NAME: digest index.json gives for NAME.
oci_ref_digest() {
	jq -r --arg n "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' \
		"$1/index.json"
}

# blob_file_content BLOBFILE PATH: PATH's content inside a (gzipped) layer tar.
blob_file_content() {
	tar -xzOf "$1" "./$2" 2>/dev/null || tar -xOf "$1" "./$2" 2>/dev/null ||
		tar -xzOf "$1" "$2" 2>/dev/null || tar -xOf "$1" "$2" 2>/dev/null
}

# oci_layout_file LAYOUT NAME PATH: PATH's content in the image NAME of an
# OCI layout (searches the layers top-down; single-platform images only).
oci_layout_file() {
	local man l out
	man=$(oci_ref_digest "$1" "$2")
	[ -n "$man" ] || return 1
	for l in $(jq -r '.layers[].digest' "$1/blobs/sha256/${man#sha256:}" | tac); do
		if out=$(blob_file_content "$1/blobs/sha256/${l#sha256:}" "$3"); then
			printf '%s\n' "$out"
			return 0
		fi
	done
	return 1
}

# ---------------------------------------------------------------- daemons

# wait_for CMD...: retries CMD for up to WAIT_SECS (30) seconds.
wait_for() {
	for _ in $(seq 1 $((${WAIT_SECS:-30} * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# start_dockerd: a private dockerd (vfs, no networking set-up) on
# $T/docker.sock, with its own managed containerd under $T/dexec; exports
# DOCKER_HOST. Fails with the daemon's last log lines on stderr.
DOCKER=/usr/bin/docker
start_dockerd() {
	mkdir -p "$T/docker" "$T/dexec" "$DOCKER_CONFIG"
	/usr/sbin/dockerd --data-root "$T/docker" --exec-root "$T/dexec" \
		--pidfile "$T/docker.pid" -H "unix://$T/docker.sock" \
		--storage-driver vfs --iptables=false --ip6tables=false \
		--ip-forward=false --ip-masq=false --bridge=none \
		--userland-proxy=false --insecure-registry "$REG" \
		>>"$T/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	export DOCKER_HOST=unix://$T/docker.sock
	if WAIT_SECS=60 wait_for dockerd_alive_and_ready; then
		kill -0 "$DOCKERD_PID" 2>/dev/null && return 0
	fi
	echo "dockerd did not start; log:" >&2
	tail -n 30 "$T/dockerd.log" >&2
	return 1
}
dockerd_alive_and_ready() {
	kill -0 "$DOCKERD_PID" 2>/dev/null || return 0 # dead: stop waiting
	timeout 10 "$DOCKER" version >/dev/null 2>&1
}

# start_containerd: a private containerd (config v2, native snapshotter,
# no CRI) on $T/ctd/containerd.sock; sets CTD_SOCK.
start_containerd() {
	local d=$T/ctd
	mkdir -p "$d/root" "$d/state"
	CTD_SOCK=$d/containerd.sock
	cat >"$d/config.toml" <<-EOF
	version = 2
	root = "$d/root"
	state = "$d/state"
	disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
	[grpc]
	  address = "$CTD_SOCK"
	[ttrpc]
	  address = "$d/containerd.sock.ttrpc"
	[debug]
	  address = "$d/debug.sock"
	[metrics]
	  address = ""
	[plugins."io.containerd.internal.v1.opt"]
	  path = "$d/opt"
	[plugins."io.containerd.grpc.v1.cri"]
	  disable_tcp_service = true
	EOF
	/usr/bin/containerd --config "$d/config.toml" >>"$d/containerd.log" 2>&1 &
	CONTAINERD_PID=$!
	if wait_for containerd_alive_and_ready; then
		kill -0 "$CONTAINERD_PID" 2>/dev/null && return 0
	fi
	echo "containerd did not start; log:" >&2
	tail -n 30 "$d/containerd.log" >&2
	return 1
}
containerd_alive_and_ready() {
	kill -0 "$CONTAINERD_PID" 2>/dev/null || return 0
	timeout 10 ctr -a "$CTD_SOCK" version
}
