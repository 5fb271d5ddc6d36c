#!/usr/bin/env bash
# The deployment rules of deploy/, asserted on the RENDERED manifests (what
# `kubectl apply -k` would send), so that an edit of a base file or an
# overlay patch that breaks one is caught by name. test_deploy_validate.sh
# checks that each directory renders and fits the Kubernetes schema; this
# test checks what the objects say and that they agree with each other:
#   - the registry: one pod, one ReadWriteOnce volume holding all of the
#     data directory config.json names (uploads/ is renamed into blobs/),
#     read-only config and auth mounts holding the files config.json names,
#     probes off /v2, listen port = containerPort = Service targetPort,
#     restricted security context, no CPU limit, a grace period longer
#     than preStop + shutdown_timeout, no token, no BERTH_* service links;
#   - the gc CronJob: the registry's image, the Service's in-cluster URL, a
#     list-only ClusterRole, credentials from a read-only Secret mount that
#     secret.example.yaml defines with a user allowed to gc and delete;
#   - the NetworkPolicies; no PodDisruptionBudget that blocks a drain; no
#     Secret applied by kustomize;
#   - per overlay: the Ingress (TLS, ingress-nginx annotations, the realm's
#     host), the NodePort and its containerd hosts.toml DaemonSet, kind's
#     cluster config, port mapping and certs.d;
#   - deploy/examples parse (YAML, TOML, and the JSON inside them).
# The rules every render must keep run on each (names prefixed base.,
# ingress-tls., nodeport., kind.). The end runs a few rules again on
# rendered copies broken on purpose, to show that they bite.
#
# jq starts slowly (tens of ms), so the rules are queued (qt, qe) and each
# batch runs as one jq program over one render (qrun).
# shellcheck disable=SC2016 # jq programs: their $names are jq's
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/deploy_lib.sh

if ! deploy_tools 2>"$T/tools.log"; then
	fail "manifests.tools: $(tail -2 "$T/tools.log" | tr '\n' ' ')"
	exit 1
fi

# ------------------------------------------------------------ helpers
# jq definitions for every query; the input is a render's JSON array.
DEFS='
def objs(k): .[] | select(.kind == k);
def obj(k; n): objs(k) | select(.metadata.name == n);
def sts: obj("StatefulSet"; "berth");
def pod: sts.spec.template.spec;
def ctr: pod.containers[] | select(.name == "berth");
def cj: obj("CronJob"; "berth-gc");
def cjpod: cj.spec.jobTemplate.spec.template.spec;
def cjctr: cjpod.containers[0];
def cfgmap: obj("ConfigMap"; "berth-config");
def cfg: cfgmap.data["config.json"] | fromjson;
def listen_port: cfg.listen | capture(":(?<p>[0-9]+)$").p | tonumber;
# $x is a path strictly inside the directory $d.
def inside($x; $d): ($x | type) == "string" and ($x | startswith(($d | rtrimstr("/")) + "/"));
def mount($n): ctr.volumeMounts[] | select(.name == $n);
def vol($n): pod.volumes[]? | select(.name == $n);
def argv($a; $f): ($a | index([$f])) as $i | if $i == null then null else $a[$i + 1] end;
def cjarg($f): argv(cjctr.args; $f);
def has_arg($a; $f): $a | index([$f]) != null;
def port_of($c; $tp):
  if ($tp | type) == "string" then [$c.ports[]? | select(.name == $tp) | .containerPort] | first
  else $tp end;
def sub_of($a; $b): ($a // {} | length) > 0 and all($a | to_entries[]; $b[.key] == .value);
def svc: objs("Service") | select((.spec.type // "ClusterIP") == "ClusterIP");
def svcurl: ctr as $c | listen_port as $l | svc |
  "http://\(.metadata.name).\(.metadata.namespace).svc:\(.spec.ports[] | select(port_of($c; .targetPort) == $l) | .port)";
def ctrs($p): ($p.containers + ($p.initContainers // []))[];
# The effective security context of each container (its fields over the
# pod'"'"'s), and the container-only fields: the distinct values.
def effs($p; f): [ctrs($p) as $c | ($p.securityContext // {}) + ($c.securityContext // {}) | f] | unique;
def csec($p; f): [ctrs($p) | .securityContext // {} | f] | unique;
def no_cpu_limit($p): all(ctrs($p); .resources.limits.cpu == null);
def cfgmount: pod as $p | ctr.volumeMounts[] |
  select(.name as $n | any($p.volumes[]?; .name == $n and .configMap.name == "berth-config"));
def regpol: obj("NetworkPolicy"; "berth-registry");
def gcpol: obj("NetworkPolicy"; "berth-gc");
def stslabels: sts.spec.template.metadata.labels;
def cjlabels: cj.spec.jobTemplate.spec.template.metadata.labels;
# The ClusterRoles bound to the CronJob pod'"'"'s ServiceAccount.
def gcrole: . as $root | cjpod.serviceAccountName as $sa | cj.metadata.namespace as $ns |
  [objs("ClusterRoleBinding") | select(.roleRef.kind == "ClusterRole") |
   select(any(.subjects[]?; .kind == "ServiceAccount" and .name == $sa and .namespace == $ns)) |
   .roleRef.name] as $names |
  $root | objs("ClusterRole") | select(.metadata.name as $n | $names | index([$n]) != null);
def sdata: (.stringData // {}) + ((.data // {}) | map_values(@base64d));
def hostof: sub("^[a-z]+://"; "") | split("/")[0];
def pathof: sub("^[a-z]+://[^/]*"; "");
def ing: obj("Ingress"; "berth");
def ann($k): ing.metadata.annotations[$k];
def ds: obj("DaemonSet"; "berth-containerd-hosts");
def dspod: ds.spec.template.spec;
def dscm: ds.metadata.namespace as $ns | [dspod.volumes[] | .configMap.name // empty] as [$n] |
  objs("ConfigMap") | select(.metadata.name == $n and .metadata.namespace == $ns);
def nodeport_svc: objs("Service") | select(.spec.type == "NodePort");
'
# Only with --slurpfile ex (secret.example.yaml as JSON).
EXDEFS='
def exsecret($n): $ex[0][] | select(.kind == "Secret" and .metadata.name == $n) | sdata;
def authsecret: vol("auth").secret.secretName;
def gcmount: cjarg("--password-file") as $f | cjctr.volumeMounts[] | select(inside($f; .mountPath));
def gcsecret: cjpod as $p | gcmount.name as $n | $p.volumes[] | select(.name == $n) | .secret.secretName;
def users: exsecret(authsecret)["users.json"] | fromjson;
'

Q=()
# qt NAME FILTER: queue a rule: FILTER yields exactly true.
qt() {
	Q+=("(try ([$2] | if . == [true] then \"ok\" else \"not true: got \\(tojson)\" end)
		catch \"jq error: \\(.)\") as \$r | if \$r == \"ok\" then \"ok $1\" else \"FAIL $1: \\(\$r)\" end")
}
# qe NAME WANT GOT: queue a rule: the jq filters WANT and GOT yield the
# same values (WANT is often a literal: 1, "/healthz", [true]).
qe() {
	Q+=("(try ([[$2], [$3]] | if .[0] == .[1] then \"ok\" else \"want \\(.[0] | tojson) got \\(.[1] | tojson)\" end)
		catch \"jq error: \\(.)\") as \$r | if \$r == \"ok\" then \"ok $1\" else \"FAIL $1: \\(\$r)\" end")
}
# qrun FILE [JQ-ARGS...]: run the queued rules on FILE, one jq, and record
# each result; an error of the program itself fails them all.
qrun() {
	local f=$1 prog line n=${#Q[@]} got=0 i
	shift
	prog=$DEFS
	[[ " $* " == *" --slurpfile ex "* ]] && prog=$prog$EXDEFS
	prog="$prog ${Q[0]}"
	for ((i = 1; i < n; i++)); do prog="$prog, ${Q[i]}"; done
	Q=()
	if ! jq -r "$@" "$prog" "$f" >"$T/q.out" 2>"$T/q.err"; then
		fail "rules.$(basename "$f"): jq failed, $n rules not run: $(head -c 600 "$T/q.err")"
		return
	fi
	while IFS= read -r line; do
		got=$((got + 1))
		case $line in
		"ok "*) ok "${line#ok }" ;;
		*) fail "${line#FAIL }" ;;
		esac
	done <"$T/q.out"
	[ "$got" = "$n" ] || fail "rules.$(basename "$f"): $got results for $n rules"
}
# jv FILE FILTER [JQ-ARGS...]: FILTER's raw output.
jv() {
	local f=$1 e=$2
	shift 2
	jq -r "$@" "$DEFS$e" "$f" 2>&1 | head -c 600
}
# toml_json FILE: a TOML file as JSON (exit 1 when it does not parse).
toml_json() {
	python3 -c 'import json,sys,tomllib; print(json.dumps(tomllib.load(open(sys.argv[1],"rb"))))' "$1"
}
# parses NAME CMD FILE OUT: CMD FILE >OUT succeeds (status 1 if not).
parses() {
	if "$2" "$3" >"$4" 2>"$T/err"; then
		ok "$1"
	else
		fail "$1: $(head -c 300 "$T/err")"
		return 1
	fi
}

# ------------------------------------------------------------ renders
for o in base ingress-tls nodeport kind; do
	d=deploy/overlays/$o
	[ "$o" = base ] && d=deploy/base
	if ! deploy_render "$d" "$T/$o.yaml" 2>"$T/render.err" ||
		! deploy_json "$T/$o.yaml" >"$T/$o.json" 2>>"$T/render.err"; then
		fail "$o.render: $(head -c 600 "$T/render.err")"
	fi
done
B=$T/base.json I=$T/ingress-tls.json N=$T/nodeport.json K=$T/kind.json
EX=$T/secret.example.json
parses secret.example.parses deploy_json deploy/base/secret.example.yaml "$EX"

# The rules the mutations at the end reuse.
F_VCT_RWO='sts.spec.volumeClaimTemplates as $v | ($v | length) > 0 and all($v[]; .spec.accessModes == ["ReadWriteOnce"])'
F_NO_RWX='all(.. | objects | .accessModes? // empty | .[]; . != "ReadWriteMany")'
F_PROBES_NOT_V2='[ctr | .startupProbe, .livenessProbe, .readinessProbe | .httpGet.path // ""] | all(startswith("/v2") | not)'
F_SVC_LINKS='pod.enableServiceLinks == false and cjpod.enableServiceLinks == false'
F_TGPS='(ctr.lifecycle.preStop.sleep.seconds | type) == "number" and (cfg.shutdown_timeout | type) == "number"
  and pod.terminationGracePeriodSeconds > ctr.lifecycle.preStop.sleep.seconds + cfg.shutdown_timeout'

# ------------------------------------------------------------ every render
# core P AUTH: queue the rules every render keeps; AUTH yes (users file,
# credentials) or no (kind: an open registry).
core() {
	local p=$1 auth=$2 w px

	# The registry: one pod, one RWO volume holding all of the data dir.
	qe "$p.sts.replicas_1" 1 'sts.spec.replicas'
	qt "$p.sts.vct_rwo_only" "$F_VCT_RWO"
	qt "$p.no_rwx_anywhere" "$F_NO_RWX"
	qe "$p.sts.data_volume_at_config_data" 'cfg.data' \
		'sts as $s | ctr.volumeMounts[] | select(.name as $n | any($s.spec.volumeClaimTemplates[]; .metadata.name == $n)) | .mountPath'
	qt "$p.sts.uploads_share_data_volume" \
		'cfg.data as $d | [ctr.volumeMounts[] | select(inside(.mountPath; $d))] | length == 0'
	qt "$p.sts.config_mount_ro" '[cfgmount] | length == 1 and .[0].readOnly == true'
	qe "$p.sts.args_config_in_config_mount" 'cfgmount.mountPath + "/config.json"' 'argv(ctr.args; "--config")'
	qt "$p.sts.policy_file_in_config_mount" \
		'cfgmount.mountPath as $m | cfg.policy as $x | inside($x; $m) and (cfgmap.data | has($x | ltrimstr($m + "/")))'
	if [ "$auth" = yes ]; then
		qt "$p.sts.auth_mount_ro" 'mount("auth").readOnly == true'
		qt "$p.sts.auth_volume_secret" 'vol("auth").secret.secretName | type == "string"'
		qt "$p.sts.users_file_in_auth_mount" 'inside(cfg.auth; mount("auth").mountPath)'
	else
		qt "$p.config.no_auth" 'cfg | has("auth") | not'
		qt "$p.sts.no_auth_mount" '[ctr.volumeMounts[]? | select(.name == "auth")] | length == 0'
		qt "$p.sts.no_secret_volume" '[pod.volumes[]? | select(.name == "auth" or .secret != null)] | length == 0'
	fi

	# Probes, ports, Services.
	qt "$p.probe.startup_httpget" 'ctr.startupProbe.httpGet.path | type == "string"'
	qe "$p.probe.liveness_healthz" '"/healthz"' 'ctr.livenessProbe.httpGet.path'
	qe "$p.probe.readiness_readyz" '"/readyz"' 'ctr.readinessProbe.httpGet.path'
	qt "$p.probe.none_on_v2" "$F_PROBES_NOT_V2"
	qt "$p.probe.ports_name_container_port" \
		'ctr as $c | all($c.startupProbe, $c.livenessProbe, $c.readinessProbe; .httpGet.port as $pp | ($pp | type) == "string" and any($c.ports[]; .name == $pp))'
	qe "$p.port.listen_eq_container_port" 'listen_port' 'ctr.ports[].containerPort'
	qt "$p.svc.one_cluster_ip" '[svc] | length == 1'
	qt "$p.svc.target_ports_resolve_to_listen" \
		'ctr as $c | listen_port as $l | [objs("Service") | .spec.ports[]] | length > 0 and all(.[]; port_of($c; .targetPort) == $l)'
	qt "$p.svc.selects_registry_pod" 'stslabels as $l | all(objs("Service"); sub_of(.spec.selector; $l))'

	# Security context and resources, of the registry and the gc job.
	for w in sts cj; do
		px=pod
		[ "$w" = cj ] && px=cjpod
		qe "$p.$w.sec.run_as_non_root" '[true]' "effs($px; .runAsNonRoot)"
		qe "$p.$w.sec.run_as_user" '[65532]' "effs($px; .runAsUser)"
		qe "$p.$w.sec.run_as_group" '[65532]' "effs($px; .runAsGroup)"
		qe "$p.$w.sec.fs_group" 65532 "$px.securityContext.fsGroup"
		qe "$p.$w.sec.read_only_root" '[true]' "csec($px; .readOnlyRootFilesystem)"
		qe "$p.$w.sec.no_privilege_escalation" '[false]' "csec($px; .allowPrivilegeEscalation)"
		qe "$p.$w.sec.not_privileged" '[false]' "csec($px; .privileged // false)"
		qe "$p.$w.sec.caps_drop_all" '[true]' "csec($px; (.capabilities.drop // []) | index([\"ALL\"]) != null)"
		qe "$p.$w.sec.caps_no_add" '[0]' "csec($px; (.capabilities.add // []) | length)"
		qe "$p.$w.sec.seccomp_runtime_default" '["RuntimeDefault"]' "effs($px; .seccompProfile.type)"
		qt "$p.$w.resources.requests_cpu_memory" \
			"all(ctrs($px); .resources.requests.cpu != null and .resources.requests.memory != null)"
		qt "$p.$w.resources.limit_memory" "all(ctrs($px); .resources.limits.memory != null)"
		qt "$p.$w.resources.no_cpu_limit" "no_cpu_limit($px)"
		# The Service is named berth: links would set BERTH_PORT and
		# friends, and berth reads BERTH_* variables as settings.
		qt "$p.$w.no_service_links" "$px.enableServiceLinks == false"
	done
	qe "$p.sts.sec.fs_group_change_on_root_mismatch" '"OnRootMismatch"' 'pod.securityContext.fsGroupChangePolicy'
	qe "$p.ns.berth_restricted" '"restricted"' \
		'sts.metadata.namespace as $ns | obj("Namespace"; $ns).metadata.labels["pod-security.kubernetes.io/enforce"]'
	qt "$p.sts.grace_gt_prestop_plus_shutdown_timeout" "$F_TGPS"
	qt "$p.sts.no_token_automount" 'pod.automountServiceAccountToken == false'
	qt "$p.sa.no_token_automount" \
		'pod.serviceAccountName as $n | sts.metadata.namespace as $ns | [objs("ServiceAccount") | select(.metadata.name == $n and .metadata.namespace == $ns)] | length == 1 and .[0].automountServiceAccountToken == false'
	qt "$p.no_pdb_blocking_drain" \
		'sts.spec.replicas as $r | [objs("PodDisruptionBudget") | select(((.spec.minAvailable | type) == "number" and .spec.minAvailable >= $r) or .spec.minAvailable == "100%" or .spec.maxUnavailable == 0 or .spec.maxUnavailable == "0%")] | length == 0'
	# The Secrets are made out of band: an applied example would replace them.
	qt "$p.no_secret_applied" '[objs("Secret")] | length == 0'

	# NetworkPolicies.
	qt "$p.netpol.registry_selects_registry_pod" \
		'stslabels as $l | regpol.spec.podSelector | (.matchExpressions // []) == [] and sub_of(.matchLabels; $l)'
	qt "$p.netpol.registry_not_selecting_gc_pod" 'cjlabels as $l | sub_of(regpol.spec.podSelector.matchLabels; $l) | not'
	qe "$p.netpol.registry_ingress_and_egress" '["Egress", "Ingress"]' 'regpol.spec.policyTypes | sort'
	qt "$p.netpol.registry_ingress_tcp_listen_port" \
		'ctr as $c | listen_port as $l | regpol.spec.ingress | length > 0 and all(.[]; (.ports // []) | length > 0 and all(.[]; (.protocol // "TCP") == "TCP" and port_of($c; .port) == $l))'
	qt "$p.netpol.registry_from_namespace" \
		'any(regpol.spec.ingress[].from[]; .namespaceSelector != null and .podSelector == null)'
	qt "$p.netpol.registry_from_gc_pods" \
		'cjlabels as $l | any(regpol.spec.ingress[].from[]; .namespaceSelector == null and .podSelector != null and sub_of(.podSelector.matchLabels; $l))'
	qt "$p.netpol.registry_from_ipblock" 'any(regpol.spec.ingress[].from[]; .ipBlock.cidr | type == "string")'
	qt "$p.netpol.registry_egress_dns_only" \
		'regpol.spec.egress | length > 0 and all(.[]; (.ports // []) | length > 0 and all(.[]; .port == 53))'
	qt "$p.netpol.gc_selects_gc_pod" \
		'cjlabels as $g | stslabels as $r | gcpol.spec.podSelector.matchLabels | sub_of(.; $g) and (sub_of(.; $r) | not)'
	qt "$p.netpol.gc_egress_dns" 'any(gcpol.spec.egress[].ports[]?; .port == 53)'
	qt "$p.netpol.gc_egress_registry" \
		'stslabels as $l | listen_port as $port | any(gcpol.spec.egress[]; any(.to[]?; .namespaceSelector == null and sub_of(.podSelector.matchLabels; $l)) and any(.ports[]?; .port == $port and (.protocol // "TCP") == "TCP"))'
	qt "$p.netpol.gc_egress_api_server" '[gcpol.spec.egress[].ports[]?.port] | index([443]) != null and index([6443]) != null'

	# The gc CronJob.
	qe "$p.cj.concurrency_forbid" '"Forbid"' 'cj.spec.concurrencyPolicy'
	qt "$p.cj.starting_deadline" 'cj.spec.startingDeadlineSeconds > 0'
	qt "$p.cj.active_deadline" 'cj.spec.jobTemplate.spec.activeDeadlineSeconds > 0'
	qt "$p.cj.ttl_after_finished" 'cj.spec.jobTemplate.spec.ttlSecondsAfterFinished > 0'
	qt "$p.cj.backoff_limit" 'cj.spec.jobTemplate.spec.backoffLimit | type == "number"'
	qe "$p.cj.same_image_as_sts" 'ctr.image' 'cjctr.image'
	qe "$p.cj.args_gc" '"gc"' 'cjctr.args[0]'
	qe "$p.cj.server_is_service_url" 'svcurl' 'cjarg("--server")'
	qt "$p.cj.pins_from_kubernetes" 'has_arg(cjctr.args; "--pins-from-kubernetes")'
	qt "$p.cj.registry_host_set" 'cjarg("--registry-host") | type == "string" and (startswith("-") | not)'
	qt "$p.cj.token_url_in_cluster" 'svcurl as $u | cjarg("--token-url") | . == null or startswith($u + "/")'
	if [ "$auth" = yes ]; then
		qt "$p.cj.user_set" 'cjarg("--user") | type == "string" and (startswith("-") | not)'
		qt "$p.cj.password_file_in_ro_secret_mount" \
			'cjpod as $p | cjarg("--password-file") as $f | [cjctr.volumeMounts[]? | select(.readOnly == true and inside($f; .mountPath)) | .name as $n | $p.volumes[] | select(.name == $n and .secret.secretName != null)] | length == 1'
	else
		qt "$p.cj.no_credentials" \
			'(has_arg(cjctr.args; "--user") or has_arg(cjctr.args; "--password-file") or any(cjpod.volumes[]?; .secret != null)) | not'
	fi
	qt "$p.cj.service_account_bound_to_cluster_role" \
		'cjpod.serviceAccountName as $sa | cj.metadata.namespace as $ns | ([gcrole] | length) == 1 and any(objs("ServiceAccount"); .metadata.name == $sa and .metadata.namespace == $ns)'
	qe "$p.rbac.verbs_list_only" '["list"]' '[gcrole | .rules[].verbs[]] | unique'
	qe "$p.rbac.resources" '["/pods", "apps/daemonsets", "apps/deployments", "apps/replicasets", "apps/statefulsets", "batch/cronjobs", "batch/jobs"]' \
		'[gcrole | .rules[] | .apiGroups[] as $g | .resources[] | "\($g)/\(.)"] | sort'
}

core base yes
qrun "$B"
core ingress-tls yes
qrun "$I"
core nodeport yes
qrun "$N"
core kind no
qrun "$K"

# ------------------------------------------------------------ secret.example.yaml
# The Secrets the base mounts, as the example shows them.
qt secret.defines_mounted_secrets \
	'sts.metadata.namespace as $ns | [authsecret, gcsecret] as $n | ($n | length) == 2 and all($n[]; . as $x | any($ex[0][]; .kind == "Secret" and .metadata.name == $x and .metadata.namespace == $ns))'
qt secret.auth_has_users_file \
	'mount("auth").mountPath as $m | (cfg.auth | ltrimstr($m + "/")) as $k | exsecret(authsecret) | has($k)'
qt secret.users_json_parses 'users | type == "object"'
qt secret.auth_has_signing_key 'users.signing_key as $k | exsecret(authsecret) | has($k)'
qe secret.auth_keys '["key.pem", "users.json"]' 'exsecret(authsecret) | keys'
qt secret.gc_has_password_file \
	'cjarg("--password-file") as $f | gcmount.mountPath as $m | exsecret(gcsecret) | has($f | ltrimstr($m + "/"))'
qt secret.gc_user_may_gc_and_delete \
	'cjarg("--user") as $u | [users.users[] | select(.name == $u)] | length == 1 and (.[0].rules | any(.[]; .gc == true) and any(.[]; (.actions // []) | index(["delete"]) != null))'
qt secret.no_real_key \
	'(exsecret(authsecret) | has("key.pem")) and all($ex[0][] | select(.kind == "Secret") | sdata[]; contains("BEGIN") | not)'
qt secret.placeholders_only \
	'all(users.users[]; .password_hash | startswith("REPLACE")) and (exsecret(gcsecret) | all(.[]; startswith("REPLACE")))'
qe secret.service_eq_realm_host 'users.realm | hostof' 'users.service'
qe secret.realm_path_eq_token_url_path 'users.realm | pathof' 'cjarg("--token-url") | pathof'
qe base.cj.registry_host_eq_realm_host 'users.realm | hostof' 'cjarg("--registry-host")'
qrun "$B" --slurpfile ex "$EX"
REALM=$(jq -r --slurpfile ex "$EX" "$DEFS$EXDEFS users.realm" "$B" 2>&1)

# ------------------------------------------------------------ ingress-tls
qt ingress-tls.ing.tls \
	'ing.spec.tls | length > 0 and all(.[]; (.secretName | type) == "string" and (.hosts | length) > 0)'
qt ingress-tls.ing.tls_covers_hosts '[ing.spec.tls[].hosts[]] as $h | all(ing.spec.rules[]; .host as $x | $h | index([$x]) != null)'
qe ingress-tls.ing.proxy_body_size_0 '"0"' 'ann("nginx.ingress.kubernetes.io/proxy-body-size")'
qt ingress-tls.ing.proxy_read_timeout_ge_600 'ann("nginx.ingress.kubernetes.io/proxy-read-timeout") | tonumber >= 600'
qt ingress-tls.ing.proxy_send_timeout_ge_600 'ann("nginx.ingress.kubernetes.io/proxy-send-timeout") | tonumber >= 600'
qt ingress-tls.ing.backend_is_service \
	'[svc] as [$s] | [ing.spec.rules[].http.paths[].backend.service] | length > 0 and all(.[]; .name == $s.metadata.name and (.port as $bp | any($s.spec.ports[]; .name == $bp.name or .port == $bp.number)))'
qt ingress-tls.ing.same_namespace 'ing.metadata.namespace == sts.metadata.namespace'
qe ingress-tls.ing.host_eq_realm_host '$realm | hostof' 'ing.spec.rules[].host'
qe ingress-tls.ing.realm_is_https '"https://" + ing.spec.rules[0].host' '$realm | capture("^(?<x>[a-z]+://[^/]*)").x'
qe ingress-tls.cj.registry_host_eq_ingress_host 'ing.spec.rules[].host' 'cjarg("--registry-host")'
qrun "$I" --arg realm "$REALM"
ING_HOST=$(jv "$I" 'ing.spec.rules[0].host')

# ------------------------------------------------------------ nodeport
NP_TOML=deploy/overlays/nodeport/hosts.toml
NP_SERVER=$(toml_json "$NP_TOML" | jq -r '.server')
NP_HOST=$(jq -rn --arg s "$NP_SERVER" '$s | sub("^[a-z]+://"; "") | split("/")[0]')
qt nodeport.svc.node_port_set '[nodeport_svc] | length == 1 and all(.[0].spec.ports[]; .nodePort | type == "number")'
qt nodeport.ds.mounts_generated_configmap \
	'dspod as $p | [$p.volumes[] | select(.configMap)] as $v | ($v | length) == 1 and ($v[0].configMap.name | test("^berth-containerd-hosts-[a-z0-9]{6,}$")) and ([dscm] | length) == 1 and any($p.containers[].volumeMounts[]; .name == $v[0].name)'
qt nodeport.ds.hostpath_certs_d_mounted \
	'dspod as $p | [$p.volumes[] | select(.hostPath.path == "/etc/containerd/certs.d") | .name] as $h | ($h | length) == 1 and any($p.containers[].volumeMounts[]; .name == $h[0])'
qe nodeport.ds.registry_host_eq_hosts_toml_server '$host' 'dspod.containers[].env[]? | select(.name == "REGISTRY_HOST") | .value'
qe nodeport.hosts_toml_port_eq_node_port '$host | split(":")[1] | tonumber' 'nodeport_svc.spec.ports[].nodePort'
qe nodeport.cj.registry_host_eq_hosts_toml_server '$host' 'cjarg("--registry-host")'
qe nodeport.ns.ds_privileged '"privileged"' \
	'ds.metadata.namespace as $ns | obj("Namespace"; $ns).metadata.labels["pod-security.kubernetes.io/enforce"]'
qrun "$N" --arg host "$NP_HOST"
jv "$N" '[dscm][0].data["hosts.toml"]' -j >"$T/np-hosts.toml"
if cmp -s "$NP_TOML" "$T/np-hosts.toml"; then
	ok nodeport.configmap_hosts_toml_eq_file
else
	fail "nodeport.configmap_hosts_toml_eq_file: $(diff "$NP_TOML" "$T/np-hosts.toml" | head -c 400)"
fi

# ------------------------------------------------------------ kind
KC=deploy/overlays/kind/kind-cluster.yaml
jv "$K" 'obj("ConfigMap"; "local-registry-hosting") | select(.metadata.namespace == "kube-public") | .data["localRegistryHosting.v1"]' |
	deploy_json - >"$T/lrh.json" 2>&1
LRH_HOST=$(jq -r '.[0].host' "$T/lrh.json" 2>&1)
expect_eq kind.local_registry_hosting_host localhost:5001 "$LRH_HOST"
qe kind.local_registry_hosting_runtime_host '$lrh[0][0].host' '$lrh[0][0].hostFromContainerRuntime'
qe kind.local_registry_hosting_cluster_host 'svcurl | hostof' '$lrh[0][0].hostFromClusterNetwork'
qe kind.cj.registry_host_eq_local_registry_host '$lrh[0][0].host' 'cjarg("--registry-host")'
qrun "$K" --slurpfile lrh "$T/lrh.json"
KIND_NODEPORT=$(jv "$K" 'nodeport_svc.spec.ports[].nodePort')
parses kind.cluster.parses deploy_json "$KC" "$T/kc.json"
qt kind.cluster.containerd_config_path 'any(.[0].containerdConfigPatches[]; test("config_path"))'
qe kind.cluster.host_port_maps_to_node_port '$np' \
	'.[0].nodes[].extraPortMappings[]? | select(.hostPort == ($lrh | split(":")[1] | tonumber)) | .containerPort'
# No auth in this overlay: the port must not listen beyond the laptop.
qt kind.cluster.host_port_on_loopback \
	'[.[0].nodes[].extraPortMappings[]?] | length > 0 and all(.[]; .listenAddress == "127.0.0.1")'
qt kind.cluster.certs_d_mounted_at_config_path \
	'([.[0].containerdConfigPatches[] | capture("config_path *= *\"(?<p>[^\"]+)\"").p] | first) as $cp | $cp != null and all(.[0].nodes[]; any(.extraMounts[]?; .hostPath == "./certs.d" and .containerPath == $cp))'
qrun "$T/kc.json" --argjson np "${KIND_NODEPORT:-null}" --arg lrh "$LRH_HOST"
KIND_TOML=deploy/overlays/kind/certs.d/$LRH_HOST/hosts.toml
check kind.certs_d_dir_is_local_registry_host test -f "$KIND_TOML"
expect_eq kind.certs_d_server_is_node_port "http://localhost:$KIND_NODEPORT" \
	"$(toml_json "$KIND_TOML" 2>&1 | jq -r '.server' 2>&1)"

# ------------------------------------------------------------ examples
mapfile -t yamls < <(find deploy/examples -name '*.yaml' -o -name '*.yml' | sort)
for y in "${yamls[@]}"; do
	parses "examples.yaml_parses.${y#deploy/examples/}" deploy_json "$y" "$T/y.json"
done
IPS=deploy/examples/imagepullsecret.yaml
if deploy_validate "$IPS" >"$T/out" 2>"$T/err"; then
	ok examples.imagepullsecret.valid
else
	fail "examples.imagepullsecret.valid: $(head -c 600 "$T/err")"
fi
deploy_json "$IPS" >"$T/ips.json" 2>&1
qt examples.imagepullsecret.dockerconfigjson_auths \
	'.[0] | .type == "kubernetes.io/dockerconfigjson" and (sdata[".dockerconfigjson"] | fromjson | .auths | type == "object")'
qe examples.imagepullsecret.auths_host_eq_ingress_host '[$host]' '.[0] | sdata[".dockerconfigjson"] | fromjson | .auths | keys'
qrun "$T/ips.json" --arg host "$ING_HOST"
mapfile -t tomls < <(find deploy -name '*.toml' -o -name registries.conf | sort)
for t in "${tomls[@]}"; do
	parses "toml_parses.${t#deploy/}" toml_json "$t" "$T/toml.json" || continue
	case $t in
	*/hosts.toml)
		# containerd: the server has its [host] entry, able to pull and resolve.
		qt "hosts_toml.server_host_pulls.${t#deploy/}" \
			'.server as $s | .host[$s].capabilities as $c | ($c | index(["pull"]) != null) and ($c | index(["resolve"]) != null)'
		qrun "$T/toml.json"
		;;
	esac
done
deploy_json deploy/examples/registries.yaml >"$T/k3s.json" 2>&1
qe examples.k3s_mirror_nodeport_http '$server' '.[0].mirrors[$host].endpoint[]'
qrun "$T/k3s.json" --arg host "$NP_HOST" --arg server "$NP_SERVER"
toml_json deploy/examples/registries.conf >"$T/crio.json" 2>&1
qt examples.crio_nodeport_insecure 'any(.registry[]; .location == $host and .insecure == true)'
qrun "$T/crio.json" --arg host "$NP_HOST"
deploy_json deploy/examples/github-actions/review-app.yml >"$T/wf.json" 2>&1
qt examples.workflow.jobs '.[0].jobs | length > 0'
qt examples.workflow.ttl_label 'any(.. | strings; test("--label berth\\.expires-after="))'
qt examples.workflow.berth_rm 'any(.. | strings; test("(^|\\s)rm --server "))'
qrun "$T/wf.json"

# ------------------------------------------------------------ the rules bite
# mutant NAME OVERLAY SED FILTER: the overlay's render edited by SED (the
# edit must change it) makes FILTER false (jq -e status 1, not an error).
mutant() {
	local n=$1 src=$T/$2.yaml s=$3 e=$4 rc
	sed "$s" "$src" >"$T/mut.yaml"
	if cmp -s "$src" "$T/mut.yaml"; then
		fail "$n: the edit '$s' changed nothing"
		return
	fi
	if ! deploy_json "$T/mut.yaml" >"$T/mut.json" 2>"$T/err"; then
		fail "$n: $(head -c 300 "$T/err")"
		return
	fi
	jq -e "$DEFS$e" "$T/mut.json" >/dev/null 2>"$T/err"
	rc=$?
	if [ "$rc" = 1 ]; then ok "$n"; else fail "$n: rule gave status $rc after '$s' $(head -c 300 "$T/err")"; fi
}
mutant mutation.rwx_volume_caught base 's/ReadWriteOnce/ReadWriteMany/' "$F_VCT_RWO"
mutant mutation.rwx_anywhere_caught nodeport 's/ReadWriteOnce/ReadWriteMany/' "$F_NO_RWX"
mutant mutation.cpu_limit_caught base 's/^\( *\)limits:$/&\n\1  cpu: "2"/' 'no_cpu_limit(pod)'
mutant mutation.probe_on_v2_caught base 's|path: /readyz|path: /v2/|' "$F_PROBES_NOT_V2"
mutant mutation.service_links_caught kind 's/enableServiceLinks: false/enableServiceLinks: true/' "$F_SVC_LINKS"
mutant mutation.short_grace_caught base \
	"s/terminationGracePeriodSeconds: [0-9]*/terminationGracePeriodSeconds: $(jv "$B" 'ctr.lifecycle.preStop.sleep.seconds + cfg.shutdown_timeout')/" "$F_TGPS"
