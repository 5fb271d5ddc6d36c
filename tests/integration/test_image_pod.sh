#!/usr/bin/env bash
# The pod and the gc CronJob exactly as deploy/base renders them, run from
# the image `make image` builds. No cluster runs here, so the test plays
# the kubelet: it reads the rendered StatefulSet and CronJob and turns
# their container specs into podman runs (command and args, env, user and
# groups, read-only root, dropped capabilities, no-new-privileges, the
# volumes at their mount paths laid out as the kubelet does, with ..data
# symlinks), in a network namespace of its own standing for the pod
# network. The Secrets are deploy/base/secret.example.yaml with a key and
# passwords made here. The gc job lists pods from the stand-in Kubernetes
# API (fake_kube_api.py, recorded responses) with a mounted
# service-account token, as in a cluster. Then: the probes answer, skopeo
# and containerd push and pull through token auth, the CronJob expires and
# keeps what it should, and SIGTERM lets a download finish within the
# grace period.
#
# Runs from tests/run.sh unless BERTH_IMAGE_TESTS=0 (the sanitizer runs:
# the image holds the release binary, not the one under test).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/clients_lib.sh"
. "$(dirname "$0")/kube_lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
cleanup_fns+=(clients_cleanup)
ROOT=$DEPLOY_ROOT
IMAGE=$ROOT/build/image/berth.oci.tar

# ------------------------------------------------------------ the image
# Built when missing or older than the release binary's sources.
if [ ! -f "$IMAGE" ] || [ -n "$(find "$ROOT/registry" "$ROOT/storage" "$ROOT/gc" \
	"$ROOT/auth" "$ROOT/common" "$ROOT/scripts/image.sh" -newer "$IMAGE" -print -quit)" ]; then
	if ! make -C "$ROOT" image >"$T/image.log" 2>&1; then
		fail "image.build: make image failed: $(tail -3 "$T/image.log" | tr '\n' ' ')"
		exit 1
	fi
fi
ok "image.archive $(du -k "$IMAGE" | cut -f1) KiB"

# ------------------------------------------------------- the manifests
if ! deploy_tools 2>"$T/tools.log"; then
	fail "deploy.tools: $(tail -2 "$T/tools.log" | tr '\n' ' ')"
	exit 1
fi
if ! { deploy_render "$ROOT/deploy/base" "$T/base.yaml" && deploy_json "$T/base.yaml" >"$T/base.json" &&
	deploy_json "$ROOT/deploy/base/secret.example.yaml" >"$T/secret.json"; }; then
	fail "deploy.render base"
	exit 1
fi
# obj KIND NAME: the rendered object.
obj() { jq -c --arg k "$1" --arg n "$2" '.[] | select(.kind == $k and .metadata.name == $n)' "$T/base.json"; }
obj StatefulSet berth | jq -c '.spec.template.spec' >"$T/sts-pod.json"
obj CronJob berth-gc | jq -c '.spec.jobTemplate.spec.template.spec' >"$T/gc-pod.json"
obj ConfigMap berth-config >"$T/cm.json"
POD_CONTAINER=$(jq -c '.containers[0]' "$T/sts-pod.json")
GC_CONTAINER=$(jq -c '.containers[0]' "$T/gc-pod.json")
if [ -z "$POD_CONTAINER" ] || [ -z "$GC_CONTAINER" ]; then
	fail "deploy.objects missing"
	exit 1
fi

# ------------------------------------------- the pod network: a netns
NS=berth-pod-$$
VH=bp$$h VP=bp$$p
NET=10.213.$((RANDOM % 200 + 20))
HOST_IP=$NET.1 POD_IP=$NET.2
net_down() {
	ip netns del "$NS" 2>/dev/null
	ip link del "$VH" 2>/dev/null
	return 0
}
cleanup_fns+=(net_down)
if ! { ip netns add "$NS" && ip link add "$VH" type veth peer name "$VP" &&
	ip link set "$VP" netns "$NS" && ip addr add "$HOST_IP/30" dev "$VH" &&
	ip link set "$VH" up && ip netns exec "$NS" ip addr add "$POD_IP/30" dev "$VP" &&
	ip netns exec "$NS" ip link set "$VP" up && ip netns exec "$NS" ip link set lo up; } 2>"$T/net.log"; then
	fail "pod.netns: $(cat "$T/net.log")"
	exit 1
fi

# ------------------------------------------------------------- podman
# Private storage; runc with cgroupfs, and rlimits within this sandbox's
# own hard limits (it may not raise them, which podman's defaults try).
PODMAN=(podman --root "$T/podman/root" --runroot "$T/podman/run" --storage-driver vfs
	--events-backend file --cgroup-manager cgroupfs --runtime runc)
LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
podman_cleanup() {
	"${PODMAN[@]}" rm -f -t 0 berth-pod berth-gc >/dev/null 2>&1
	umount_under_t
	return 0
}
cleanup_fns+=(podman_cleanup)

# sc POD CONTAINER FIELD: the container's securityContext FIELD, else the pod's.
sc() { jq -rn --argjson p "$1" --argjson c "$2" --arg f "$3" '
	if ($c.securityContext // {} | has($f)) then $c.securityContext[$f]
	elif ($p.securityContext // {} | has($f)) then $p.securityContext[$f]
	else empty end'; }

# kubelet_volume DIR KIND JSON MODE GID: the files of a configMap/secret
# (JSON: {key: content}) laid out as the kubelet does: a timestamped
# directory, the ..data symlink to it, one symlink per key; files MODE,
# group GID (the pod's fsGroup).
kubelet_volume() {
	local dir=$1 data=$2 mode=$3 gid=$4 ts k
	ts=..$(date -u +%Y_%m_%d_%H_%M_%S).$RANDOM
	mkdir -p "$dir/$ts"
	for k in $(jq -r 'keys[]' <<<"$data"); do
		jq -j --arg k "$k" '.[$k]' <<<"$data" >"$dir/$ts/$k"
		chmod "$mode" "$dir/$ts/$k"
		[ -n "$gid" ] && chgrp "$gid" "$dir/$ts/$k"
		ln -s "..data/$k" "$dir/$k"
	done
	ln -s "$ts" "$dir/..data"
	chmod 0755 "$dir" "$dir/$ts"
}

# volume_data POD NAME: {key: content} of the pod's volume NAME, from the
# rendered ConfigMap or the test's copy of the example Secret.
volume_data() {
	local v cm sec
	v=$(jq -c --arg n "$2" '.volumes[] | select(.name == $n)' <<<"$1")
	cm=$(jq -r '.configMap.name // empty' <<<"$v")
	sec=$(jq -r '.secret.secretName // empty' <<<"$v")
	if [ -n "$cm" ]; then
		obj ConfigMap "$cm" | jq -c '.data'
	elif [ -n "$sec" ]; then
		jq -c --arg n "$sec" '.[] | select(.metadata.name == $n) | .stringData' "$T/secrets.json"
	fi
}

# run_args POD CONTAINER NAME: fills RUN with podman run arguments from
# the rendered pod and container specs (volumes under $T/vol/NAME).
RUN=()
run_args() {
	local pod=$1 c=$2 name=$3 u g fsg m vname vpath ro v mode ent
	RUN=(run -d --name "$name" "${LIMITS[@]}")
	u=$(sc "$pod" "$c" runAsUser) g=$(sc "$pod" "$c" runAsGroup)
	fsg=$(jq -r '.securityContext.fsGroup // empty' <<<"$pod")
	[ -n "$u" ] && RUN+=(--user "$u${g:+:$g}")
	[ -n "$fsg" ] && RUN+=(--group-add "$fsg")
	[ "$(sc "$pod" "$c" readOnlyRootFilesystem)" = true ] && RUN+=(--read-only --read-only-tmpfs=false)
	[ "$(sc "$pod" "$c" allowPrivilegeEscalation)" = false ] && RUN+=(--security-opt no-new-privileges)
	for m in $(jq -r '.securityContext.capabilities.drop[]?' <<<"$c"); do RUN+=(--cap-drop "$m"); done
	for m in $(jq -r '.securityContext.capabilities.add[]?' <<<"$c"); do RUN+=(--cap-add "$m"); done
	while IFS= read -r m; do [ -n "$m" ] && RUN+=(-e "$m"); done < <(jq -r '.env[]? | "\(.name)=\(.value)"' <<<"$c")
	# limits.memory (Ki/Mi/Gi) as the container's memory cgroup limit
	m=$(jq -r '.resources.limits.memory // empty' <<<"$c")
	case $m in *Gi) RUN+=(--memory "${m%Gi}g") ;; *Mi) RUN+=(--memory "${m%Mi}m") ;;
	*Ki) RUN+=(--memory "${m%Ki}k") ;; "") ;; *) RUN+=(--memory "$m") ;; esac
	ent=$(jq -c '.command // empty' <<<"$c")
	[ -n "$ent" ] && RUN+=(--entrypoint "$ent")
	while IFS=$'\t' read -r vname vpath ro; do
		v=$T/vol/$name/$vname
		if jq -e --arg n "$vname" '.volumes[]? | select(.name == $n)' <<<"$pod" >/dev/null; then
			mode=$(jq -r --arg n "$vname" '.volumes[] | select(.name == $n) | (.secret.defaultMode // .configMap.defaultMode // 420)' <<<"$pod")
			kubelet_volume "$v" "$(volume_data "$pod" "$vname")" "$(printf '%o' "$mode")" "$fsg"
		else # a volumeClaimTemplate: an empty volume the fsGroup owns
			mkdir -p "$v"
			[ -n "$fsg" ] && chgrp "$fsg" "$v" && chmod 2775 "$v"
		fi
		RUN+=(-v "$v:$vpath${ro:+:ro}")
	done < <(jq -r '.volumeMounts[]? | [.name, .mountPath, (if .readOnly then "ro" else "" end)] | @tsv' <<<"$c")
}

auth_hash_of() { printf '%s\n' "$1" | "$BERTH_BIN" auth hash; }

# ------------------------------------------------------------ secrets
# The example Secrets with what a real one holds: a key, password hashes,
# and the realm of this pod's address (the public name, in a cluster).
CI_PW=ci-$(kube_rand) KUBELET_PW=kl-$(kube_rand) JANITOR_PW=jn-$(kube_rand)
PORT=$(jq -r '.ports[] | select(.name == "http") | .containerPort' <<<"$POD_CONTAINER")
REG=$POD_IP:$PORT
"$BERTH_BIN" auth keygen --out "$T/key.pem" >/dev/null 2>&1 || fail "secret.keygen"
jq -c --arg realm "http://$REG/auth/token" --arg key "$(cat "$T/key.pem")" \
	--arg ci "$(auth_hash_of "$CI_PW")" --arg kl "$(auth_hash_of "$KUBELET_PW")" \
	--arg jn "$(auth_hash_of "$JANITOR_PW")" --arg jpw "$JANITOR_PW" '
	map(if .metadata.name == "berth-auth" then
	      .stringData["key.pem"] = $key
	      | .stringData["users.json"] = (.stringData["users.json"] | fromjson
	          | .realm = $realm
	          | .users |= map(.password_hash = ({"ci-review": $ci, "kubelet": $kl, "janitor": $jn}[.name]))
	          | tojson)
	    elif .metadata.name == "berth-gc" then .stringData.password = $jpw
	    else . end)' "$T/secret.json" >"$T/secrets.json" 2>"$T/jq.log" ||
	fail "secret.fill: $(cat "$T/jq.log")"
jq -r '.[] | select(.metadata.name == "berth-auth") | .stringData["users.json"]' "$T/secrets.json" >"$T/users.json"
cp "$T/key.pem" "$T/users-key.pem"
sed 's/"signing_key": *"key.pem"/"signing_key": "users-key.pem"/' "$T/users.json" >"$T/users-check.json"
check "secret.users_file_valid (berth auth check)" "$BERTH_BIN" auth check "$T/users-check.json"

# ------------------------------------------------------------ the pod
run_args "$(cat "$T/sts-pod.json")" "$POD_CONTAINER" berth-pod
mapfile -t POD_ARGS < <(jq -r '.args[]?' <<<"$POD_CONTAINER")
echo "+ podman ${RUN[*]} --network ns:/run/netns/$NS IMAGE ${POD_ARGS[*]}" >>"$T/clients.log"
if ! timeout 120 "${PODMAN[@]}" "${RUN[@]}" --network "ns:/run/netns/$NS" \
	"oci-archive:$IMAGE" "${POD_ARGS[@]}" >"$T/podrun.log" 2>&1; then
	fail "pod.run: $(tail -3 "$T/podrun.log" | tr '\n' ' ')"
	exit 1
fi
pod_log() { "${PODMAN[@]}" logs berth-pod 2>&1; }

# probe NAME: the rendered probe's path and port ("http" → containerPort).
probe_url() {
	local p port
	p=$(jq -c --arg n "$1" '.[$n].httpGet' <<<"$POD_CONTAINER")
	port=$(jq -r '.port' <<<"$p")
	case $port in *[!0-9]*) port=$(jq -r --arg n "$port" '.ports[] | select(.name == $n) | .containerPort' <<<"$POD_CONTAINER") ;; esac
	echo "http://$POD_IP:$port$(jq -r '.path' <<<"$p")"
}
# Started within the startup probe's budget (bounded to 60 s here).
budget=$(jq -r '.startupProbe | (.periodSeconds // 10) * (.failureThreshold // 3)' <<<"$POD_CONTAINER")
[ "$budget" -gt 60 ] && budget=60
started=0
for _ in $(seq 1 $((budget * 5))); do
	if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(probe_url startupProbe)")" = 200 ]; then
		started=1
		break
	fi
	sleep 0.2
done
if [ $started = 1 ]; then ok "pod.started (startupProbe $(probe_url startupProbe))"; else
	fail "pod.started: $(pod_log | tail -3 | tr '\n' ' ')"
	exit 1
fi
for p in startupProbe livenessProbe readinessProbe; do
	u=$(probe_url "$p")
	case $u in */v2/*) fail "pod.$p probes /v2/ ($u)" ;; esac
	expect_eq "pod.$p $u" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$u")"
done
# What a probe on /v2/ would get with auth on.
expect_eq "pod./v2/ is 401 without a token" 401 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$REG/v2/")"

# The process: uid/gid, no capabilities, no new privileges, seccomp.
PID=$("${PODMAN[@]}" inspect -f '{{.State.Pid}}' berth-pod)
st=/proc/$PID/status
expect_eq "pod.uid" "$(sc "$(cat "$T/sts-pod.json")" "$POD_CONTAINER" runAsUser)" "$(awk '/^Uid:/ {print $2}' "$st")"
expect_eq "pod.gid" "$(sc "$(cat "$T/sts-pod.json")" "$POD_CONTAINER" runAsGroup)" "$(awk '/^Gid:/ {print $2}' "$st")"
check "pod.fsGroup in groups" grep -Eq "^Groups:.*\b$(jq -r '.securityContext.fsGroup' "$T/sts-pod.json")\b" "$st"
expect_eq "pod.no_capabilities" 0000000000000000 "$(awk '/^CapEff:/ {print $2}' "$st")"
expect_eq "pod.no_new_privs" 1 "$(awk '/^NoNewPrivs:/ {print $2}' "$st")"
expect_eq "pod.seccomp_filter" 2 "$(awk '/^Seccomp:/ {print $2}' "$st")"
mem=$(jq -r '.resources.limits.memory' <<<"$POD_CONTAINER")
expect_eq "pod.memory_limit $mem" "$(numfmt --from=iec-i "$mem")" "$("${PODMAN[@]}" inspect -f '{{.HostConfig.Memory}}' berth-pod)"
# Read-only root: the binary itself cannot write outside the volume.
if "${PODMAN[@]}" exec berth-pod /usr/bin/berth auth keygen --out /etc/probe.pem >"$T/ro.out" 2>&1; then
	fail "pod.read_only_root: a write to /etc succeeded"
else
	check "pod.read_only_root ($(tr '\n' ' ' <"$T/ro.out" | cut -c1-80))" grep -qi "read-only" "$T/ro.out"
fi
check "pod.no_shell" bash -c '! "$@" exec berth-pod /bin/sh -c true >/dev/null 2>&1' _ "${PODMAN[@]}"
check "pod.data_on_volume (index under the claim's mount)" test -f "$T/vol/berth-pod/data/meta/data.mdb"
ls -la "$T/vol/berth-pod/data" >>"$T/clients.log" 2>&1

# ------------------------------------------- push and pull, with auth
CREDS_CI=ci-review:$CI_PW CREDS_KL=kubelet:$KUBELET_PW
IMG_LABELS='{"berth.expires-after":"1s"}' make_oci_image "$T/lay" pr-1 "review app one"
D1=$IMG_MANIFEST_DIGEST
IMG_LABELS='{"berth.expires-after":"1s"}' make_oci_image "$T/lay" pr-2 "review app two"
D2=$IMG_MANIFEST_DIGEST
make_oci_image "$T/lay" pr-3 "review app three"
D3=$IMG_MANIFEST_DIGEST
for t in pr-1 pr-2 pr-3; do
	check "skopeo.push review/web:$t (ci-review)" run skopeo copy --quiet --policy "$POLICY" \
		--dest-tls-verify=false --dest-creds "$CREDS_CI" "oci:$T/lay:$t" "docker://$REG/review/web:$t"
done
run skopeo inspect --raw --tls-verify=false --creds "$CREDS_KL" "docker://$REG/review/web:pr-1"
expect_eq "skopeo.pull digest (kubelet)" "$D1" "sha256:$(sha256sum <"$T/last.out" | cut -d' ' -f1)"
check "skopeo.pull refused without credentials" bash -c '! timeout 60 skopeo inspect --raw --tls-verify=false "docker://$1/review/web:pr-1" >/dev/null 2>&1' _ "$REG"
check "skopeo.push refused for kubelet (pull only)" bash -c '! timeout 60 skopeo copy --quiet --policy "$1" --dest-tls-verify=false --dest-creds "$2" "oci:$3:pr-3" "docker://$4/review/web:kubelet" >/dev/null 2>&1' \
	_ "$POLICY" "$CREDS_KL" "$T/lay" "$REG"
if start_containerd; then
	check "containerd.pull review/web:pr-1 (kubelet, POST token)" run ctr -a "$CTD_SOCK" images pull \
		--plain-http --user "$CREDS_KL" "$REG/review/web:pr-1"
	expect_eq "containerd.digest" "$D1" \
		"$(ctr -a "$CTD_SOCK" images ls | awk -v r="$REG/review/web:pr-1" '$1 == r {print $3}')"
	check "containerd.content complete" run ctr -a "$CTD_SOCK" images check "name==$REG/review/web:pr-1"
	grep -q complete "$T/last.out" || fail "containerd.content: $(cat "$T/last.out")"
else
	fail "containerd.start"
fi

# make image-push into the pod (a robot may push under review/ only).
ARCHIVE_DIGEST=$(skopeo inspect --raw "oci-archive:$IMAGE" | sha256sum | cut -d' ' -f1)
check "image.push (make image-push REGISTRY=$REG)" run make -s -C "$ROOT" image-push REGISTRY="$REG" \
	IMAGE_NAME=review/berth IMAGE_TAG=ci PUSH_FLAGS="--dest-tls-verify=false --dest-creds $CREDS_CI"
run skopeo inspect --raw --tls-verify=false --creds "$CREDS_KL" "docker://$REG/review/berth:ci"
expect_eq "image.pushed digest = the archive's" "sha256:$ARCHIVE_DIGEST" "sha256:$(sha256sum <"$T/last.out" | cut -d' ' -f1)"

# ------------------------------------------------- the gc CronJob
# The tag pr-3 is deleted (the PR closed); pr-1 and pr-2 carry 1 s TTLs;
# a pod of review-pr-1 runs pr-1, so only pr-2 may expire.
check "api.delete review/web:pr-3" run "$BERTH_BIN" rm --server "http://$REG" \
	--user ci-review --password-file <(printf '%s' "$CI_PW") review/web:pr-3
sleep 2
FAKE_KUBE_ADDR=$HOST_IP
export FAKE_KUBE_ADDR
SA_TOKEN=sa-$(kube_rand)
mkdir -p "$T/kfix"
for f in "$ROOT"/tests/integration/fixtures/kube-pod/*.json; do
	sed "s|@D1@|$D1|g" "$f" >"$T/kfix/$(basename "$f")"
done
kube_certs || fail "kube.certs: $(tail -2 "$T/openssl.log")"
kube_start "$T/kfix" "$SA_TOKEN" || fail "kube.start"
# The service-account volume the kubelet projects into every pod that
# does not opt out (automountServiceAccountToken).
SA=$T/vol/berth-gc/serviceaccount
kubelet_volume "$SA" "$(jq -n --arg t "$SA_TOKEN" --rawfile ca "$T/pki/ca.crt" \
	'{token: $t, "ca.crt": $ca, namespace: "berth"}')" 644 ""
check "gc.automount_token (the job needs its service account token)" \
	test "$(jq -r '.automountServiceAccountToken // true' "$T/gc-pod.json")" = true
run_args "$(cat "$T/gc-pod.json")" "$GC_CONTAINER" berth-gc
mapfile -t GC_ARGS < <(jq -r '.args[]?' <<<"$GC_CONTAINER")
# Cluster DNS for the Service name, the API address the kubelet injects.
SVC_HOST=$(printf '%s\n' "${GC_ARGS[@]}" | sed -n 's|^http://\([^:/]*\).*|\1|p' | head -1)
echo "+ podman ${RUN[*]} ... ${GC_ARGS[*]}" >>"$T/clients.log"
timeout 120 "${PODMAN[@]}" "${RUN[@]}" --network host --add-host "$SVC_HOST:$POD_IP" \
	-v "$SA:/var/run/secrets/kubernetes.io/serviceaccount:ro" \
	-e "KUBERNETES_SERVICE_HOST=$HOST_IP" -e "KUBERNETES_SERVICE_PORT=$KPORT" \
	"oci-archive:$IMAGE" "${GC_ARGS[@]}" >"$T/gcrun.log" 2>&1 ||
	fail "gc.run: $(tail -3 "$T/gcrun.log" | tr '\n' ' ')"
rc=$(timeout 120 "${PODMAN[@]}" wait berth-gc 2>/dev/null)
"${PODMAN[@]}" logs berth-gc >"$T/gc.out" 2>&1
cat "$T/gc.out" >>"$T/clients.log"
expect_eq "gc.exit ($(head -c 300 "$T/gc.out" | tr '\n' ' '))" 0 "$rc"
check "gc.report: 1 tag expired, 1 kept by pins" grep -Eq '; 1 tag expired, 1 kept by pins$' "$T/gc.out"
check "gc.listed pods with the mounted token" grep -q "/api/v1/pods" "$T/kube.log"
# Every list the job made is one its ClusterRole allows, and it only lists.
obj ClusterRole berth-gc-pins | jq -r '.rules[] | .resources[] as $r | .verbs[] as $v | "\($r) \($v)"' | sort -u >"$T/rbac.txt"
for r in pods deployments replicasets statefulsets daemonsets jobs cronjobs; do
	check "gc.rbac lists $r" grep -qx "$r list" "$T/rbac.txt"
done
expect_eq "gc.rbac only list" list "$(awk '{print $2}' "$T/rbac.txt" | sort -u | tr '\n' ' ' | sed 's/ $//')"
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 -u "$CREDS_KL" "$@"; }
# pull_code :TAG|@DIGEST: a kubelet pull's status, token dance by skopeo.
pull_code() {
	if timeout 60 skopeo inspect --raw --tls-verify=false --creds "$CREDS_KL" "docker://$REG/review/web$1" >"$T/pull.out" 2>&1; then
		echo 200
	elif grep -qi "manifest unknown" "$T/pull.out"; then echo 404; else echo "error: $(head -c 200 "$T/pull.out")"; fi
}
expect_eq "gc.pinned pr-1 still pulls" 200 "$(pull_code :pr-1)"
expect_eq "gc.pinned pr-1 same digest" "$D1" "sha256:$(sha256sum <"$T/pull.out" | cut -d' ' -f1)"
expect_eq "gc.expired pr-2 gone" 404 "$(pull_code :pr-2)"
expect_eq "gc.deleted pr-3 gone" 404 "$(pull_code :pr-3)"
# Untagged, their manifests wait for the grace of config.json (gc_grace)
# before a run may take them.
expect_eq "gc.expired pr-2's manifest waits the grace" 200 "$(pull_code "@$D2")"
expect_eq "gc.deleted pr-3's manifest waits the grace" 200 "$(pull_code "@$D3")"
pod_log >"$T/pod.log"
check "gc.audit: tag expired pr-2" grep -q '"msg":"tag expired".*"tag":"pr-2"' "$T/pod.log"
check "gc.audit: kept by pin pr-1" grep -q '"msg":"kept by pin".*review/web:pr-1' "$T/pod.log"

# --------------------------------------------------------- SIGTERM
# A download in flight when the pod is told to stop: it completes, and
# berth exits within the grace period the kubelet gives it after preStop.
GRACE=$(jq -r '.terminationGracePeriodSeconds // 30' "$T/sts-pod.json")
PRESTOP=$(jq -r '.lifecycle.preStop.sleep.seconds // 0' <<<"$POD_CONTAINER")
SHUTDOWN=$(jq -r '.data["config.json"] | fromjson | .shutdown_timeout // 25' "$T/cm.json")
check "term.grace ($GRACE s) > preStop ($PRESTOP s) + shutdown_timeout ($SHUTDOWN s)" test "$GRACE" -gt $((PRESTOP + SHUTDOWN))
# 64 MiB read at 8 MB/s: after 1 s about 8 MB are read and the socket
# buffers on both sides hold a few MB (16 MB seen on one machine), so
# berth still has over 30 MB to send when the signal comes, and its stop
# must wait for that (> 1 s).
make_oci_image "$T/lay" big "a big layer" amd64 65536
BIG1=$(echo "$IMG_LAYERS" | awk '{print $2}')
check "term.push review/web:big" run skopeo copy --quiet --policy "$POLICY" \
	--dest-tls-verify=false --dest-creds "$CREDS_CI" "oci:$T/lay:big" "docker://$REG/review/web:big"
TOKEN=$(curl -s --max-time 10 -u "$CREDS_KL" "http://$REG/auth/token?service=registry.example&scope=repository:review/web:pull" | jq -r '.token // empty')
[ -n "$TOKEN" ] || fail "term.token"
curl -s --max-time 60 --limit-rate 8M -H "Authorization: Bearer $TOKEN" \
	-w '%{http_code} %{size_download} bytes in %{time_total} s\n' \
	-o "$T/big.blob" "http://$REG/v2/review/web/blobs/$BIG1" >"$T/big.curl" &
CURL_PID=$!
sleep 1
check "term.download_in_flight at the signal" kill -0 "$CURL_PID"
t0=$(date +%s%N)
timeout $((GRACE + 10)) "${PODMAN[@]}" stop -t $((GRACE - PRESTOP)) berth-pod >/dev/null 2>&1
t1=$(date +%s%N)
wait "$CURL_PID"
crc=$?
took_ms=$(((t1 - t0) / 1000000))
expect_eq "term.download_completed (curl status; $(cat "$T/big.curl"))" 0 "$crc"
expect_eq "term.download_intact" "$BIG1" "sha256:$(sha256sum <"$T/big.blob" | cut -d' ' -f1)"
check "term.download_was_in_flight (stop took ${took_ms} ms: berth waited for it)" test "$took_ms" -gt 1000
check "term.exited_in_time (${took_ms} ms < $((GRACE - PRESTOP)) s)" test "$took_ms" -lt $(((GRACE - PRESTOP) * 1000))
expect_eq "term.exit_status (not killed)" 0 "$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' berth-pod)"
pod_log >"$T/pod.log"
check "term.logged stopped" grep -q '"msg":"stopped"' "$T/pod.log"
