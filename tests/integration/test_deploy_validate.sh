#!/usr/bin/env bash
# The tooling that checks the Kubernetes manifests under deploy/
# (tests/integration/deploy_lib.sh, tests/deploy/*.mjs): small fixtures that
# are valid pass, and each kind of break is caught and named by its path —
# a misspelled field (which plain JSON-schema validation lets through), a
# wrong type, a missing required field, an unknown kind, bad YAML. Then
# every kustomize directory of deploy/ that exists so far renders and
# validates, and a rendered base with one field name misspelled does not.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/deploy_lib.sh

if ! deploy_tools; then
	fail "deploy.tools: deploy_tools could not install the npm packages or find a kustomize"
	exit 1
fi

# run FILE...: deploy_validate; status in RC, stdout in OUT, stderr in ERR.
run() {
	deploy_validate "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
# expect_invalid NAME FILE LINE: exit 1, nothing on stdout, and stderr has
# exactly the line LINE (besides any others).
expect_invalid() {
	run "$2"
	if [ "$RC" = 1 ] && [ -z "$OUT" ] && grep -qxF -- "$3" "$T/err"; then
		ok "$1"
	else
		fail "$1: want exit 1 and '$3'; got exit $RC, stdout '${OUT:0:300}', stderr '${ERR:0:600}'"
	fi
}

# ---- fixtures: one of each kind berth's manifests use
cat >"$T/valid.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: berth-config
  namespace: berth
data:
  berth.conf: |
    listen = 0.0.0.0:5000
---
apiVersion: v1
kind: Service
metadata:
  name: berth
  namespace: berth
spec:
  selector:
    app.kubernetes.io/name: berth
  ports:
  - name: http
    port: 5000
    targetPort: http
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: berth
  namespace: berth
  labels:
    app.kubernetes.io/name: berth
spec:
  replicas: 1
  serviceName: berth
  selector:
    matchLabels:
      app.kubernetes.io/name: berth
  template:
    metadata:
      labels:
        app.kubernetes.io/name: berth
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        fsGroup: 65532
        fsGroupChangePolicy: OnRootMismatch
      containers:
      - name: berth
        image: berth:dev
        imagePullPolicy: IfNotPresent
        args: [serve, --data, /data]
        ports:
        - name: http
          containerPort: 5000
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
          limits:
            cpu: 1
            memory: 512Mi
        securityContext:
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities:
            drop: [ALL]
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
        volumeMounts:
        - name: data
          mountPath: /data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 10Gi
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: berth-gc
  namespace: berth
spec:
  schedule: "0 3 * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 1
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: gc
            image: berth:dev
            args: [gc]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: berth-gc
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: berth
  namespace: berth
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: berth
  policyTypes: [Ingress]
  ingress:
  - ports:
    - port: 5000
      protocol: TCP
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: berth
  namespace: berth
  annotations:
    nginx.ingress.kubernetes.io/proxy-body-size: "0"
spec:
  tls:
  - hosts: [registry.example.com]
    secretName: berth-tls
  rules:
  - host: registry.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: berth
            port:
              name: http
EOF

run "$T/valid.yaml"
if [ "$RC" = 0 ] && [ -z "$ERR" ] &&
	[ "$OUT" = "$T/valid.yaml: 7 objects valid (Kubernetes 1.34 schema)" ]; then
	ok "deploy.valid_fixtures"
else
	fail "deploy.valid_fixtures: got exit $RC, stdout '$OUT', stderr '${ERR:0:800}'"
fi
deploy_validate - <"$T/valid.yaml" >"$T/out" 2>&1
expect_eq "deploy.valid_stdin" "<stdin>: 7 objects valid (Kubernetes 1.34 schema) 0" "$(cat "$T/out") $?"

# break FILE SED: a copy of the valid fixtures edited by SED (first match).
break_copy() { sed "$2" "$T/valid.yaml" >"$T/$1.yaml"; }
sts() { echo "$T/$1.yaml: StatefulSet/berth/berth"; }
c0=".spec.template.spec.containers[0]"

# Misspelled field names: JSON-schema validation alone lets these through.
break_copy pullpolicy 's/imagePullPolicy:/imagePullPolcy:/'
expect_invalid deploy.typo_container "$T/pullpolicy.yaml" \
	"$(sts pullpolicy): $c0.imagePullPolcy: unknown field \"imagePullPolcy\""
break_copy fsgroup 's/fsGroupChangePolicy:/fsGroupChangePolcy:/'
expect_invalid deploy.typo_pod_security "$T/fsgroup.yaml" \
	"$(sts fsgroup): .spec.template.spec.securityContext.fsGroupChangePolcy: unknown field \"fsGroupChangePolcy\""
break_copy resources '0,/^        resources:/s//        resouces:/'
expect_invalid deploy.typo_resources "$T/resources.yaml" \
	"$(sts resources): $c0.resouces: unknown field \"resouces\""
break_copy cronjob 's/concurrencyPolicy:/concurencyPolicy:/'
expect_invalid deploy.typo_cronjob "$T/cronjob.yaml" \
	"$T/cronjob.yaml: CronJob/berth/berth-gc: .spec.concurencyPolicy: unknown field \"concurencyPolicy\""
break_copy ingress 's/secretName:/secretname:/'
expect_invalid deploy.typo_ingress "$T/ingress.yaml" \
	"$T/ingress.yaml: Ingress/berth/berth: .spec.tls[0].secretname: unknown field \"secretname\""
# Only the broken field is reported: one line in all.
expect_eq deploy.typo_one_line 1 "$(wc -l <"$T/err")"
# A misspelled required field: missing, and unknown.
break_copy pathtype 's/pathType:/pathtype:/'
expect_invalid deploy.typo_required "$T/pathtype.yaml" \
	"$T/pathtype.yaml: Ingress/berth/berth: .spec.rules[0].http.paths[0]: must have required property pathType"
expect_invalid deploy.typo_required_unknown "$T/pathtype.yaml" \
	"$T/pathtype.yaml: Ingress/berth/berth: .spec.rules[0].http.paths[0].pathtype: unknown field \"pathtype\""

# Wrong type, missing required field, bad enum value.
break_copy replicas 's/replicas: 1/replicas: "one"/'
expect_invalid deploy.wrong_type "$T/replicas.yaml" "$(sts replicas): .spec.replicas: must be integer"
break_copy noname '0,/      - name: berth/s//      - tty: false/'
expect_invalid deploy.missing_required "$T/noname.yaml" \
	"$(sts noname): $c0: must have required property name"
break_copy ruleverbs 's/verbs: \[get, list, watch\]/verbs: get/'
expect_invalid deploy.wrong_type_array "$T/ruleverbs.yaml" \
	"$T/ruleverbs.yaml: ClusterRole//berth-gc: .rules[0].verbs: must be array"

# Unknown kinds and API versions (CRDs included) are errors.
break_copy kind 's/^kind: NetworkPolicy/kind: NetworkPolcy/'
expect_invalid deploy.unknown_kind "$T/kind.yaml" \
	"$T/kind.yaml: NetworkPolcy/berth/berth: .kind: unknown kind \"NetworkPolcy\" in networking.k8s.io/v1 (not in the Kubernetes 1.34 API; CRDs are not supported)"
break_copy group 's|^apiVersion: batch/v1|apiVersion: apps/v1|'
expect_invalid deploy.kind_wrong_group "$T/group.yaml" \
	"$T/group.yaml: CronJob/berth/berth-gc: .kind: unknown kind \"CronJob\" in apps/v1 (not in the Kubernetes 1.34 API; CRDs are not supported)"
printf 'apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c, namespace: berth}\n' >"$T/crd.yaml"
expect_invalid deploy.crd "$T/crd.yaml" \
	"$T/crd.yaml: Certificate/berth/c: .apiVersion: unknown apiVersion \"cert-manager.io/v1\" (not in the Kubernetes 1.34 API; CRDs are not supported)"

# Bad input and usage: exit 2.
printf 'a: [1\n' >"$T/syntax.yaml"
run "$T/syntax.yaml"
expect_eq deploy.yaml_error 2 "$RC"
run "$T/missing.yaml"
expect_eq deploy.missing_file 2 "$RC"
run
expect_eq deploy.usage 2 "$RC"
# Several files: each reported, invalid if any is.
run "$T/valid.yaml" "$T/pullpolicy.yaml"
expect_eq deploy.several_files "1 $T/valid.yaml: 7 objects valid (Kubernetes 1.34 schema)" "$RC $OUT"

# deploy_json: every document, in order, as one array.
expect_eq deploy.json "ConfigMap Service StatefulSet CronJob ClusterRole NetworkPolicy Ingress" \
	"$(deploy_json "$T/valid.yaml" | jq -r 'map(.kind) | join(" ")')"
expect_eq deploy.json_stdin "berth-gc" "$(deploy_json - <"$T/valid.yaml" | jq -r '.[3].metadata.name')"

# ---- deploy/: the directories written so far render and validate.
for d in deploy/base deploy/overlays/ingress-tls deploy/overlays/nodeport deploy/overlays/kind; do
	[ -f "$d/kustomization.yaml" ] || [ -f "$d/kustomization.yml" ] || [ -f "$d/Kustomization" ] || continue
	n=deploy.render.${d#deploy/}
	out=$T/render.$(echo "${d#deploy/}" | tr / _).yaml
	if ! deploy_render "$d" "$out" 2>"$T/render.err"; then
		fail "$n: $KUSTOMIZE $d failed: $(head -c 600 "$T/render.err")"
		continue
	fi
	if deploy_validate "$out" >"$T/out" 2>"$T/err"; then
		ok "$n"
	else
		fail "$n: $(head -c 1200 "$T/err")"
	fi
done
# The same check on the rendered base bites: one field name misspelled.
if [ -s "$T/render.base.yaml" ]; then
	if grep -q 'readOnlyRootFilesystem:' "$T/render.base.yaml"; then
		field=readOnlyRootFilesystem typo=readOnlyRootFilesytem
	else # any field name of the render, misspelled by dropping its last letter
		field=$(grep -oE '^ *[a-z][A-Za-z]{4,}:' "$T/render.base.yaml" | grep -vE '^ *(apiVersion|kind):' | tail -1 | tr -d ' :')
		typo=${field%?}
	fi
	sed "0,/$field:/s//$typo:/" "$T/render.base.yaml" >"$T/render.typo.yaml"
	run "$T/render.typo.yaml"
	if [ "$RC" = 1 ] && grep -q "\.$typo: unknown field \"$typo\"$" "$T/err"; then
		ok deploy.render.base_typo_caught
	else
		fail "deploy.render.base_typo_caught: $field -> $typo; got exit $RC, stderr '${ERR:0:600}'"
	fi
fi
