#!/usr/bin/env bash
# The containerd registry files that deploy/ ships make a real containerd
# pull from berth over plain HTTP, by the names the overlays give it:
#   nodeport: the hosts.toml of the rendered ConfigMap, installed where the
#     rendered DaemonSet writes it (certs.d/<REGISTRY_HOST>/), for images
#     named registry.internal:30500/…;
#   kind: certs.d/localhost:5001/hosts.toml, which sends localhost:5001/…
#     to the NodePort on the node itself (localhost:30500).
# berth stands for the NodePort on 127.0.0.1:30500; registry.internal
# resolves to 127.0.0.1 through an /etc/hosts bound over the real one in
# a mount namespace of ctr's own (ctr resolves and fetches itself).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/clients_lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
export CTD_SOCK
cleanup_fns+=(clients_cleanup)
ROOT=$DEPLOY_ROOT

if ! deploy_tools 2>"$T/tools.log"; then
	fail "deploy.tools: $(tail -2 "$T/tools.log" | tr '\n' ' ')"
	exit 1
fi
deploy_render "$ROOT/deploy/overlays/nodeport" "$T/np.yaml" && deploy_json "$T/np.yaml" >"$T/np.json" ||
	{ fail "deploy.render nodeport"; exit 1; }

# What the DaemonSet writes: the ConfigMap it mounts, into the directory
# named by its REGISTRY_HOST.
DS=$(jq -c '.[] | select(.kind == "DaemonSet" and .metadata.name == "berth-containerd-hosts")' "$T/np.json")
CM_NAME=$(jq -r '.spec.template.spec.volumes[] | select(.configMap) | .configMap.name' <<<"$DS")
RHOST=$(jq -r '.spec.template.spec.containers[0].env[] | select(.name == "REGISTRY_HOST") | .value' <<<"$DS")
mkdir -p "$T/certs.d/$RHOST"
jq -j --arg n "$CM_NAME" '.[] | select(.kind == "ConfigMap" and .metadata.name == $n) | .data["hosts.toml"]' \
	"$T/np.json" >"$T/certs.d/$RHOST/hosts.toml"
check "nodeport.hosts_toml from ConfigMap $CM_NAME for $RHOST" test -s "$T/certs.d/$RHOST/hosts.toml"
NPORT=$(jq -r '.[] | select(.kind == "Service" and .spec.type == "NodePort") | .spec.ports[0].nodePort' "$T/np.json")
expect_eq "nodeport.port of the name = the Service's nodePort" "$NPORT" "${RHOST##*:}"

# berth as the NodePort would expose it.
BERTH_PORT=$NPORT start_berth || { fail "berth.start on 127.0.0.1:$NPORT (port taken?)"; exit 1; }
make_oci_image "$T/lay" pr-5 "review app five"
D5=$IMG_MANIFEST_DIGEST
check "skopeo.push review/web:pr-5" run skopeo copy --quiet --policy "$POLICY" \
	--dest-tls-verify=false "oci:$T/lay:pr-5" "docker://$REG/review/web:pr-5"
start_containerd || { fail "containerd.start"; exit 1; }

printf '127.0.0.1 localhost %s\n::1 localhost\n' "${RHOST%:*}" >"$T/hosts"
# ctr_pull REF [HOSTS_DIR]: ctr pull in its own mount namespace with
# $T/hosts as /etc/hosts; no --plain-http: the scheme comes from hosts.toml.
ctr_pull() {
	run unshare -m bash -c 'mount --bind "$1" /etc/hosts && shift &&
		exec ctr -a "$CTD_SOCK" images pull "$@"' _ "$T/hosts" \
		${2:+--hosts-dir "$2"} "$1"
}
digest_of() { ctr -a "$CTD_SOCK" images ls | awk -v r="$1" '$1 == r {print $3}'; }

if ctr_pull "$RHOST/review/web:pr-5"; then
	fail "nodeport.without_hosts_toml: pulled over HTTPS?"
else
	# containerd tried HTTPS (the words of the failure vary: an HTTP answer,
	# a reset, a record that is not TLS)
	check "nodeport.without_hosts_toml the pull fails (HTTPS): $(tail -1 "$T/last.out" | cut -c1-160)" \
		grep -q "https://$RHOST/" "$T/last.out"
fi
check "nodeport.pull $RHOST/review/web:pr-5 through the hosts.toml" ctr_pull "$RHOST/review/web:pr-5" "$T/certs.d"
expect_eq "nodeport.digest" "$D5" "$(digest_of "$RHOST/review/web:pr-5")"
check "nodeport.content complete" run ctr -a "$CTD_SOCK" images check "name==$RHOST/review/web:pr-5"
grep -q complete "$T/last.out" || fail "nodeport.content: $(cat "$T/last.out")"

# kind: the file kind mounts into its nodes, unchanged.
KIND_DIR=$ROOT/deploy/overlays/kind/certs.d
KHOST=$(basename "$(find "$KIND_DIR" -mindepth 1 -maxdepth 1 -type d | head -1)")
check "kind.alias_targets_nodeport localhost:$NPORT" grep -q "\"http://localhost:$NPORT\"" "$KIND_DIR/$KHOST/hosts.toml"
if ctr_pull "$KHOST/review/web:pr-5"; then
	fail "kind.without_hosts_toml: pulled from $KHOST?"
else
	ok "kind.without_hosts_toml the pull fails"
fi
# containerd sends ?ns=localhost:5001 to the alias: berth must ignore it.
check "kind.pull $KHOST/review/web:pr-5 through the alias" ctr_pull "$KHOST/review/web:pr-5" "$KIND_DIR"
expect_eq "kind.digest" "$D5" "$(digest_of "$KHOST/review/web:pr-5")"
