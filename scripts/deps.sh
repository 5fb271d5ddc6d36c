#!/usr/bin/env bash
# Installs the Debian packages berth needs for a purpose (build, test,
# bench, image) when any is missing: one apt-get update, then apt-get
# install -y.
set -euo pipefail
purpose=${1:-build}
build=(build-essential pkg-config libmicrohttpd-dev libgnutls28-dev liblmdb-dev libssl-dev
       libjansson-dev libzstd-dev libcurl4-openssl-dev libcmocka-dev curl)
test=(skopeo podman buildah containerd docker.io jq iproute2 uidmap python3
      fuse-overlayfs tar gzip coreutils openssl ca-certificates
      clang-14 libclang-rt-14-dev prometheus)
bench=(docker-registry nginx-light)
image=(buildah skopeo ca-certificates)
want=("${build[@]}")
case "$purpose" in
build) ;;
test) want+=("${test[@]}") ;;
bench) want+=("${test[@]}" "${bench[@]}") ;;
image) want+=("${image[@]}") ;;
*) echo "deps.sh: unknown purpose '$purpose' (build|test|bench|image)" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
