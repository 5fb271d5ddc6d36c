#!/usr/bin/env bash
# `berth gc` with pins: --pins-from-kubernetes against a stand-in
# Kubernetes API (python3 over HTTPS with a test CA made here by openssl,
# answering the seven list endpoints with the paged list JSON of
# tests/integration/fixtures/kube/, checking the bearer token), and
# --pins-file, --registry-host, BERTH_REGISTRY_HOSTS, against a stand-in
# berth that records every POST /v2/_berth/gc body. Checks the exact pin
# list sent (workloads scaled to zero, old ReplicaSets, init and ephemeral
# containers, imageIDs, CronJob templates; other registries and ports
# left out), that paging is used, and that any failure to list (401, 403,
# broken JSON, API unreachable, unknown CA, no token) exits 1 with one
# line and sends the server nothing at all.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/kube_lib.sh

unset BERTH_SERVER BERTH_USER BERTH_PASSWORD_FILE BERTH_TOKEN_FILE \
	BERTH_REGISTRY_HOSTS BERTH_KUBE_SA_DIR KUBERNETES_SERVICE_HOST \
	KUBERNETES_SERVICE_PORT
# Everything here is on 127.0.0.1: no proxy in between.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
FIX=$PWD/tests/integration/fixtures/kube

missing=
for tool in python3 openssl jq curl; do
	command -v "$tool" >/dev/null || missing="$missing $tool"
done
python3 -c 'import ssl, http.server' 2>/dev/null || missing="$missing python3-ssl"
if [ -n "$missing" ]; then
	fail "kube.tools: missing$missing (scripts/deps.sh test)"
	exit 1
fi

. tests/integration/gc_cli_lib.sh

# ---- a test CA, a server certificate for 127.0.0.1, another CA
if ! kube_certs; then
	fail "kube.certificates: openssl failed: $(tail -3 "$T/openssl.log" | tr '\n' ' ')"
	exit 1
fi

# ---- service account directories: token + ca.crt
GOOD_TOK="eyJhbGciOiJSUzI1NiIsImtpZCI6ImJlcnRoLXRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6cmVnaXN0cnk6YmVydGgtZ2MifQ.$(kube_rand)"
WRONG_TOK="eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3cm9uZyJ9.$(kube_rand)"
PODS_TOK="pods-only.$(kube_rand)"
BROKEN_TOK="broken-json.$(kube_rand)"
kube_sa sa "$GOOD_TOK" "$T/pki/ca.crt"
kube_sa sa-wrong "$WRONG_TOK" "$T/pki/ca.crt"
kube_sa sa-podsonly "$PODS_TOK" "$T/pki/ca.crt"
kube_sa sa-broken "$BROKEN_TOK" "$T/pki/ca.crt"
kube_sa sa-otherca "$GOOD_TOK" "$T/pki/other-ca.crt"
kube_sa sa-notoken "" "$T/pki/ca.crt"

# ---- the stand-in berth: records each request and POST body
cat >"$T/berth.py" <<'PY'
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, reqlog, bodies = int(sys.argv[1]), sys.argv[2], sys.argv[3]
report = {"started": "2026-12-02T22:00:00Z", "duration_ms": 1234.5,
          "dry_run": False,
          "manifests": {"deleted": 3, "bytes": 2048},
          "blobs": {"deleted": 5, "bytes": 13002342},
          "uploads": {"deleted": 1, "bytes": 10},
          "bytes_freed": 13002352,
          "waiting": {"count": 2, "next_due": "2026-12-02T23:10:00Z"},
          "queue": 2, "deleted": []}
D = "sha256:" + "ab" * 32
retention = {
    "tags_expired": [
        {"repository": "review/web", "tag": t, "digest": D, "reason": "expire_after",
         "expired": "2026-12-01T00:00:00Z", "bytes": 1024} for t in ("pr-3", "pr-4", "pr-5")],
    "kept_by_pins": [
        {"repository": "review/web", "digest": D, "tag": "pr-17",
         "pin": "registry.example:5000/review/web:pr-17", "kept_from": "expire_after"},
        {"repository": "apps/web", "digest": D, "tag": "v1.4.1",
         "pin": "registry.example:5000/apps/web:v1.4.1", "kept_from": "keep_last"}],
    "pins": 18}

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def note(self):
        with open(reqlog, "a") as f:
            f.write("%s %s\n" % (self.command, self.path))

    def send(self, code, data):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.note()
        self.send(404, b'{"errors":[{"code":"NOT_FOUND","message":"no"}]}')

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.note()
        with open(bodies, "ab") as f:
            f.write(raw + b"\n")
        body = json.loads(raw)
        r = dict(report, dry_run=bool(body.get("dry_run")))
        if not self.path.startswith("/old/"):
            r.update(retention)
        self.send(200, json.dumps(r).encode())

HTTPServer(("127.0.0.1", port), H).serve_forever()
PY

stop_fakes() {
	local p
	kube_stop
	[ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null
	FAKE_PID=
}
cleanup_fns+=(stop_fakes)
# start_berth_fake: the berth stand-in on a free port (BPORT), retried
# on another when the port was taken meanwhile.
start_berth_fake() {
	local i
	for i in 1 2 3; do
		BPORT=$(free_port)
		python3 "$T/berth.py" "$BPORT" "$T/berth_reqs" "$T/bodies" >>"$T/berth_fake.err" 2>&1 &
		FAKE_PID=$!
		for _ in $(seq 1 50); do
			curl -s -o /dev/null "http://127.0.0.1:$BPORT/v2/" && return 0
			kill -0 "$FAKE_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$FAKE_PID" 2>/dev/null
		wait "$FAKE_PID" 2>/dev/null
	done
	return 1
}
if ! kube_start "$FIX" "$GOOD_TOK" "$PODS_TOK" "$BROKEN_TOK"; then
	fail "kube.api_stand_in_started: $(tail -3 "$T/kube.err" 2>/dev/null | tr '\n' ' ')"
	exit 1
fi
if ! start_berth_fake; then
	fail "kube.berth_stand_in_started: $(tail -3 "$T/berth_fake.err" 2>/dev/null | tr '\n' ' ')"
	exit 1
fi
SRV=http://127.0.0.1:$BPORT
export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KPORT
export BERTH_KUBE_SA_DIR=$T/sa

# reset: empties the logs of both stand-ins.
reset() { : >"$T/kube.log"; : >"$T/berth_reqs"; : >"$T/bodies"; }
nposts() { grep -c '^POST /' "$T/berth_reqs"; }
nkube() { wc -l <"$T/kube.log"; }
body() { tail -n 1 "$T/bodies"; }
# expect_nothing_sent NAME: the berth stand-in got no request at all.
expect_nothing_sent() {
	if [ ! -s "$T/berth_reqs" ]; then ok "$1"; else fail "$1: got $(tr '\n' ';' <"$T/berth_reqs")"; fi
}
# expect_pins NAME JSON: exactly one POST, whose "pins" is JSON (compact).
expect_pins() {
	local got
	got=$(body | jq -c .pins 2>/dev/null)
	if [ "$(nposts)" = 1 ] && [ "$got" = "$2" ]; then
		ok "$1"
	else
		fail "$1: $(nposts) POSTs; want pins $2, got $got"
	fi
}
json_list() { printf '%s\n' "$@" | jq -R . | jq -sc .; }

R=registry.example:5000
A=0d4508bddbc25f54abb3f09a5ffa59a9419d064e211901cd96ec29c576f5419c
B=a64d94f4ac2a9bfe33dee1ac808a5d22e2545cbfb8be576838af81e5559494dd
DD=26dc1655fa0af70b5251a3ff14d6687d3a7962ea91ef48b544af9fb9e2bb810a
E=cd920956a2347a0551b2a950e1de32bd377e423f6e008898a080f2da32431686
F=2bf9fd5ad0cb9e026677c81fffec8d5412c6b418e15668f36077237c19a3d0fe
G=4af33704b22f8ee72ec49690a5e45d38fc45b55329ca0d4545008a910dcfd035
# What the fixtures use from registry.example:5000, in strcmp order.
KUBE_PINS=(
	"REGISTRY.example:5000/apps/billing:v3"   # StatefulSet, host in capitals
	"$R/apps/api:v2.3.1"
	"$R/apps/api@sha256:$E"                   # docker-pullable:// imageID only
	"$R/apps/billing@sha256:$F"               # imageID
	"$R/apps/migrate:v1.5.0"                  # a finished Job
	"$R/apps/web:v1.4.1"                      # old ReplicaSet (previous release)
	"$R/apps/web:v1.5.0"
	"$R/apps/web@sha256:$G"
	"$R/debug/toolbox:1.2"                    # ephemeral container
	"$R/debug/toolbox@sha256:$DD"             # its imageID
	"$R/ops/report:2024.12"                   # Job of a CronJob
	"$R/ops/review-cleanup:1.3"               # suspended CronJob: template only
	"$R/review/web:pr-17"                     # Deployment scaled to 0, no pods
	"$R/review/web:pr-42"
	"$R/review/web:pr-51"                     # Pending pod, imageID still ""
	"$R/review/web@sha256:$A"
	"$R/tools/migrate:2024.11"                # init container
	"$R/tools/migrate@sha256:$B"              # its imageID
	"$R/tools/wait-for:1.0"                   # init container, empty imageID
)
KUBE_JSON=$(json_list "${KUBE_PINS[@]}")
printf '%s\n' "${KUBE_PINS[@]}" | LC_ALL=C sort -c 2>/dev/null ||
	fail "kube.expected_list_sorted: the test's own list is not in strcmp order"

# The requests a full listing makes: every page, in order, limit=500,
# each continue= the token of the page before.
tok() { jq -r .metadata.continue "$FIX/$1.json"; }
EXPECT_KUBE_LOG=$(
	cat <<-EOF
		GET /api/v1/pods limit=500 continue=- -> 200 page 1
		GET /api/v1/pods limit=500 continue=$(tok pods-1) -> 200 page 2
		GET /api/v1/pods limit=500 continue=$(tok pods-2) -> 200 page 3
		GET /apis/apps/v1/deployments limit=500 continue=- -> 200 page 1
		GET /apis/apps/v1/deployments limit=500 continue=$(tok deployments-1) -> 200 page 2
		GET /apis/apps/v1/replicasets limit=500 continue=- -> 200 page 1
		GET /apis/apps/v1/replicasets limit=500 continue=$(tok replicasets-1) -> 200 page 2
		GET /apis/apps/v1/statefulsets limit=500 continue=- -> 200 page 1
		GET /apis/apps/v1/daemonsets limit=500 continue=- -> 200 page 1
		GET /apis/batch/v1/jobs limit=500 continue=- -> 200 page 1
		GET /apis/batch/v1/cronjobs limit=500 continue=- -> 200 page 1
		GET /apis/batch/v1/cronjobs limit=500 continue=$(tok cronjobs-1) -> 200 page 2
	EOF
)

LINE='^gc: deleted 3 manifests, 5 blobs \(12\.4 MiB\), 1 upload; freed 12\.4 MiB in 1\.2 s; 2 waiting \(next due 2026-12-02T23:10:00Z\)'

# ---- usage
gc_run --help
miss=
for f in --pins-from-kubernetes --pins-file --registry-host BERTH_REGISTRY_HOSTS ClusterRole; do
	case "$OUT" in *"$f"*) ;; *) miss="$miss $f" ;; esac
done
if [ "$RC" = 0 ] && [ -z "$miss" ]; then ok kube.help_explains_pin_options; else fail "kube.help_explains_pin_options: exit $RC, missing$miss"; fi
reset
gc_run --server "$SRV" --pins-from-kubernetes --registry-host https://registry.example
expect_gc_fail kube.registry_host_not_a_url 2 "--registry-host takes NAME\[:PORT\]"
expect_nothing_sent kube.registry_host_not_a_url_sends_nothing
gc_run --server "$SRV" --pins-file
expect_gc_fail kube.pins_file_needs_value 2 "--pins-file needs a value"

# ---- the listing: exact pins, paging
reset
gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R"
expect_gc_line kube.summary_with_retention "$LINE; 3 tags expired, 2 kept by pins\$"
expect_pins kube.exact_pin_list "$KUBE_JSON"
expect_eq kube.body_is_dry_run_and_pins '["dry_run","pins"] false' \
	"$(body | jq -c 'keys_unsorted' 2>/dev/null) $(body | jq -c .dry_run 2>/dev/null)"
expect_eq kube.every_page_requested_in_order "$EXPECT_KUBE_LOG" "$(cat "$T/kube.log")"
expect_eq kube.paging_used_five_continues 5 "$(grep -c 'continue=[^-]' "$T/kube.log")"
has() { body | jq -e --arg r "$1" '.pins | index($r) != null' >/dev/null 2>&1; }
lacks() { body | jq -e --arg p "$1" '[.pins[] | select(startswith($p) or contains($p))] == []' >/dev/null 2>&1; }
check kube.scaled_to_zero_deployment has "$R/review/web:pr-17"
check kube.old_replicaset_previous_release has "$R/apps/web:v1.4.1"
check kube.init_container_image has "$R/tools/migrate:2024.11"
check kube.ephemeral_container_image has "$R/debug/toolbox:1.2"
check kube.image_id_of_status has "$R/review/web@sha256:$A"
check kube.cronjob_template has "$R/ops/review-cleanup:1.3"
check kube.host_case_insensitive has "REGISTRY.example:5000/apps/billing:v3"
check kube.docker_pullable_prefix_dropped lacks "docker-pullable"
check kube.no_docker_hub lacks "docker.io/"
check kube.no_other_registries lacks "registry.k8s.io/"
check kube.no_localhost_registry lacks "localhost:5000/"
check kube.no_same_host_without_port lacks "registry.example/"
check kube.no_same_host_other_port lacks "registry.example:5001/"
expect_eq kube.no_empty_reference 0 "$(body | jq '[.pins[] | select(. == "")] | length' 2>/dev/null)"

# --dry-run: the same pins, dry_run true; the wording of a dry run.
reset
gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R" --dry-run
expect_gc_line kube.dry_run_summary '^gc \(dry run\): would delete 3 manifests, .*; 3 tags would expire, 2 kept by pins$'
expect_eq kube.dry_run_body_has_pins "true $KUBE_JSON" "$(body | jq -c '.dry_run, .pins' 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
# --json: the report as received.
reset
gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R" --json
if [ "$RC" = 0 ] && printf '%s' "$OUT" | jq -e '(.tags_expired | length) == 3 and (.kept_by_pins | length) == 2 and .pins == 18' >/dev/null 2>&1; then
	ok kube.json_report_as_received
else
	fail "kube.json_report_as_received: exit $RC, '${OUT:0:200}'"
fi
# An older server: no retention arrays, the line as before.
reset
gc_run --server "$SRV/old" --pins-from-kubernetes --registry-host "$R"
expect_gc_line kube.older_server_summary "${LINE}\$"
expect_pins kube.older_server_gets_pins "$KUBE_JSON"

# ---- failures: one line, exit 1, nothing sent
reset
BERTH_KUBE_SA_DIR=$T/sa-wrong gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R"
expect_gc_fail kube.wrong_token_401 1 '^berth gc: kubernetes: cannot list pods: HTTP 401 Unauthorized$'
expect_nothing_sent kube.wrong_token_sends_nothing
expect_eq kube.wrong_token_stops_at_first_request "GET /api/v1/pods limit=500 continue=- -> 401 page -" "$(cat "$T/kube.log")"

reset
BERTH_KUBE_SA_DIR=$T/sa-podsonly gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R"
expect_gc_fail kube.forbidden_403_with_api_message 1 '^berth gc: kubernetes: cannot list deployments\.apps: HTTP 403 Forbidden: deployments\.apps is forbidden: User "system:serviceaccount:registry:berth-gc" cannot list resource "deployments" in API group "apps" at the cluster scope'
expect_nothing_sent kube.forbidden_after_pods_sends_nothing

reset
BERTH_KUBE_SA_DIR=$T/sa-broken gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R"
expect_gc_fail kube.broken_json_last_page 1 '^berth gc: kubernetes: the answer listing cronjobs\.batch is not a Kubernetes list'
expect_nothing_sent kube.broken_json_sends_nothing
expect_eq kube.broken_json_was_the_last_page 12 "$(nkube)"

reset
DEAD=$(free_port)
KUBERNETES_SERVICE_PORT=$DEAD gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R"
expect_gc_fail kube.api_unreachable 1 "^berth gc: kubernetes: cannot list pods at https://127\\.0\\.0\\.1:$DEAD: "
expect_nothing_sent kube.api_unreachable_sends_nothing

reset
BERTH_KUBE_SA_DIR=$T/sa-otherca gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R"
expect_gc_fail kube.unknown_ca_refused 1 "^berth gc: kubernetes: cannot list pods at https://127\\.0\\.0\\.1:$KPORT: .*(SSL|certificate)"
expect_nothing_sent kube.unknown_ca_sends_nothing
expect_eq kube.unknown_ca_no_http_request 0 "$(nkube)"

reset
BERTH_KUBE_SA_DIR=$T/sa-notoken gc_run --server "$SRV" --pins-from-kubernetes --registry-host "$R"
expect_gc_fail kube.no_token_file 1 "^berth gc: kubernetes: cannot read the service account token $T/sa-notoken/token: "
expect_nothing_sent kube.no_token_file_sends_nothing

reset
env -u KUBERNETES_SERVICE_HOST "$BERTH_BIN" gc --server "$SRV" --pins-from-kubernetes \
	--registry-host "$R" >"$T/gc.out" 2>"$T/gc.err"
RC=$? OUT=$(cat "$T/gc.out") ERR=$(cat "$T/gc.err")
expect_gc_fail kube.not_in_a_pod 1 "KUBERNETES_SERVICE_HOST is not set"
expect_nothing_sent kube.not_in_a_pod_sends_nothing

# ---- --pins-file
K=f3de4860328d084d22dbadcf18a0b8d0b47c04c7dc0d3d643abcad4c0d0eb5bf
{
	echo "# pins of the release pipeline"
	echo "$R/apps/web:v1.3.0"
	echo ""
	echo "   $R/apps/web@sha256:$K   "
	printf '%s\r\n' "$R/review/web:pr-42" # CRLF; also in the cluster
	printf '\t# an indented comment\n'
	echo "docker.io/library/nginx:1.25"
	echo "registry.example:5001/review/cache:pr-51"
	echo "registry.example/review/api:pr-51"
	echo "localhost:5000/agents/node:2.1"
	echo "review/web:pr-99"
	echo "Registry.Example:5000/apps/api:v2"
	printf '   \n'
	printf '%s' "$R/apps/last:1" # no newline at the end
} >"$T/pins.txt"
FILE_PINS=("Registry.Example:5000/apps/api:v2" "$R/apps/last:1" "$R/apps/web:v1.3.0"
	"$R/apps/web@sha256:$K" "$R/review/web:pr-42" "review/web:pr-99")
reset
gc_run --server "$SRV" --pins-file "$T/pins.txt" --registry-host "$R"
expect_gc_line kube.pins_file_summary "$LINE"
expect_pins kube.pins_file_exact "$(json_list "${FILE_PINS[@]}")"
expect_eq kube.pins_file_does_not_ask_kubernetes 0 "$(nkube)"

reset
gc_run --server "$SRV" --pins-file "$T/pins.txt" --pins-from-kubernetes --registry-host "$R"
UNION=$(printf '%s\n' "${FILE_PINS[@]}" "${KUBE_PINS[@]}" | LC_ALL=C sort -u | jq -R . | jq -sc .)
expect_pins kube.union_of_file_and_kubernetes "$UNION"
expect_eq kube.union_counts "24" "$(body | jq '.pins | length' 2>/dev/null)"

reset
gc_run --server "$SRV" --pins-file "$T/no-such-file" --pins-from-kubernetes --registry-host "$R"
expect_gc_fail kube.pins_file_missing 1 "cannot read the pins file $T/no-such-file: "
expect_nothing_sent kube.pins_file_missing_sends_nothing
expect_eq kube.pins_file_missing_before_kubernetes 0 "$(nkube)"
printf '# ok\n%s\nregistry.example:5000/apps/a b:1\n' "$R/apps/x:1" >"$T/bad-pins.txt"
reset
gc_run --server "$SRV" --pins-file "$T/bad-pins.txt"
expect_gc_fail kube.pins_file_bad_line 1 "^berth gc: $T/bad-pins.txt:3: not an image reference"
expect_nothing_sent kube.pins_file_bad_line_sends_nothing
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$T/big-pins.txt"
reset
gc_run --server "$SRV" --pins-file "$T/big-pins.txt"
expect_gc_fail kube.pins_file_over_1_mib 1 "larger than 1 MiB"
expect_nothing_sent kube.pins_file_over_1_mib_sends_nothing

# ---- registry hosts: the server's by default, the environment, flags
{
	echo "127.0.0.1:$BPORT/apps/x:1"
	echo "127.0.0.1:1/apps/z:1"
	echo "$R/apps/y:1"
	echo "team/app:1"
} >"$T/local-pins.txt"
reset
gc_run --server "$SRV" --pins-file "$T/local-pins.txt"
expect_pins kube.default_host_is_the_servers "$(json_list "127.0.0.1:$BPORT/apps/x:1" "team/app:1")"
printf '%s\n' other.example/a:1 "$R/b:1" third.example/c:1 "$R:1/d:1" >"$T/hosts-pins.txt"
reset
BERTH_REGISTRY_HOSTS=" $R , other.example,," gc_run --server "$SRV" --pins-file "$T/hosts-pins.txt"
expect_pins kube.hosts_from_env "$(json_list other.example/a:1 "$R/b:1")"
reset
BERTH_REGISTRY_HOSTS="$R" gc_run --server "$SRV" --pins-file "$T/hosts-pins.txt" \
	--registry-host third.example --registry-host OTHER.example
expect_pins kube.repeated_flags_win_over_env "$(json_list other.example/a:1 third.example/c:1)"

# No image of the cluster from the hosts: an empty list replaces the
# server's (sent), with a warning.
reset
gc_run --server "$SRV" --pins-from-kubernetes --registry-host nothing.example
if [ "$RC" = 0 ] && [[ $OUT =~ $LINE ]] &&
	[ "$ERR" = "berth gc: warning: no image in use in the cluster is from nothing.example (--registry-host?)" ]; then
	ok kube.no_match_warns
else
	fail "kube.no_match_warns: exit $RC, stdout '$OUT', stderr '$ERR'"
fi
expect_pins kube.no_match_sends_empty_pins "[]"

# ---- without pin options: no "pins" key (the server keeps its pins)
reset
gc_run --server "$SRV" --registry-host "$R"
expect_gc_line kube.no_pin_options_summary "$LINE"
expect_eq kube.no_pin_options_body '{"dry_run":false}' "$(body)"
reset
gc_run --server "$SRV" --dry-run
expect_eq kube.no_pin_options_dry_run_body '{"dry_run":true}' "$(body)"
expect_eq kube.no_pin_options_no_kubernetes 0 "$(nkube)"

# ---- the token never shows
leak=
for s in "$GOOD_TOK" "$WRONG_TOK" "$PODS_TOK" "$BROKEN_TOK"; do
	grep -qF -- "$s" "$T/all_out" "$T/bodies" "$T/berth_reqs" && leak="$leak ${s:0:16}..."
done
grep -q 'Bearer' "$T/all_out" && leak="$leak Bearer"
if [ -z "$leak" ]; then ok kube.no_token_in_output; else fail "kube.no_token_in_output: found$leak"; fi
