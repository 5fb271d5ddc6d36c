#!/usr/bin/env bash
# `berth gc` against a real server: usage and its exit codes, failures as
# one line on stderr with exit 1 (unreachable, timeout, 401, 4xx), the
# summary line and the JSON report of a collection that really deletes an
# unreferenced blob, then the token dance with --auth: only a user with
# {"gc": true} (by password or by token file) reaches POST /v2/_berth/gc,
# and no password or token shows in berth's output or the server's log.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh
. tests/integration/auth_lib.sh

unset BERTH_SERVER BERTH_USER BERTH_PASSWORD_FILE BERTH_TOKEN_FILE BERTH_TOKEN_URL

. tests/integration/gc_cli_lib.sh

N='[0-9]+'
SIZE='[0-9]+(\.[0-9])? (B|KiB|MiB|GiB|TiB)'
DUE='( \(next due [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\))?'
SUMMARY="^gc: deleted $N manifests?, $N blobs? \\($SIZE\\), $N uploads?; freed $SIZE in [0-9]+\\.[0-9] m?s; $N waiting$DUE\$"
DRY_SUMMARY="^gc \\(dry run\\): would delete $N manifests?, $N blobs? \\($SIZE\\), $N uploads?; would free $SIZE in [0-9]+\\.[0-9] m?s; $N waiting$DUE\$"
REPORT='(.dry_run | type == "boolean") and (.blobs.deleted | type == "number") and (.bytes_freed | type == "number")'

# ---- usage, no server needed
gc_run --help
if [ "$RC" = 0 ] && [ -z "$ERR" ]; then ok gc.help_exit_0; else fail "gc.help_exit_0: exit $RC, stderr '$ERR'"; fi
miss=
for f in --server --dry-run --json --user --password-file --token-file --token-url --timeout \
	BERTH_SERVER BERTH_USER BERTH_PASSWORD_FILE BERTH_TOKEN_FILE BERTH_TOKEN_URL '{"gc": true}'; do
	case "$OUT" in *"$f"*) ;; *) miss="$miss $f" ;; esac
done
expect_eq gc.help_explains_every_option "" "$miss"
case "$("$BERTH_BIN" --help)" in *"gc "*) ok gc.listed_in_berth_help ;; *) fail gc.listed_in_berth_help ;; esac

gc_run --bogus
expect_gc_fail gc.usage_unknown_option 2 "--bogus"
gc_run
expect_gc_fail gc.usage_no_server 2 "--server"
gc_run --server
expect_gc_fail gc.usage_server_without_value 2 "--server needs a value"
gc_run --server http://127.0.0.1:1 --user gcbot
expect_gc_fail gc.usage_user_without_password 2 "--password-file"
gc_run --server http://127.0.0.1:1 --password-file /dev/null
expect_gc_fail gc.usage_password_without_user 2 "--user"
gc_run --server http://127.0.0.1:1 --user gcbot --password-file /dev/null --token-file /dev/null
expect_gc_fail gc.usage_user_and_token 2 "exclude"
gc_run --server http://127.0.0.1:1 --timeout 0
expect_gc_fail gc.usage_timeout_zero 2 "--timeout"
gc_run --server http://127.0.0.1:1 --timeout soon
expect_gc_fail gc.usage_timeout_word 2 "--timeout"
gc_run --server ftp://127.0.0.1:1
expect_gc_fail gc.usage_server_scheme 2 "http://"
gc_run --server 'http://gcbot:hunter2@127.0.0.1:1'
expect_gc_fail gc.usage_server_credentials 2 "credentials"
# --token-url: an absolute http(s) URL, no credentials, no fragment.
gc_run --server http://127.0.0.1:1 --token-url /auth/token
expect_gc_fail gc.usage_token_url_relative 2 "^berth gc: the token URL must start with http:// or https:// \(berth gc --help\)$"
gc_run --server http://127.0.0.1:1 --token-url ftp://127.0.0.1:1/auth/token
expect_gc_fail gc.usage_token_url_scheme 2 "the token URL must start with http:// or https://"
BERTH_TOKEN_URL=auth/token gc_run --server http://127.0.0.1:1
expect_gc_fail gc.usage_token_url_from_env 2 "the token URL must start with http:// or https://"
gc_run --server http://127.0.0.1:1 --token-url 'http://gcbot:hunter2@127.0.0.1:1/auth/token'
expect_gc_fail gc.usage_token_url_credentials 2 "the token URL must not hold credentials"
gc_run --server http://127.0.0.1:1 --token-url 'http://127.0.0.1:1/auth/token#x'
expect_gc_fail gc.usage_token_url_fragment 2 "the token URL holds .*fragment"
gc_run --server http://127.0.0.1:1 --token-url
expect_gc_fail gc.usage_token_url_without_value 2 "--token-url needs a value"

# ---- failures before any answer: one line, exit 1
DEAD=$(free_port)
gc_run --server "http://127.0.0.1:$DEAD"
expect_gc_fail gc.unreachable_one_line 1 "^berth gc: cannot reach http://127\\.0\\.0\\.1:$DEAD: "
BERTH_SERVER="http://127.0.0.1:$DEAD" gc_run --dry-run --json
expect_gc_fail gc.unreachable_from_env 1 "cannot reach http://127\\.0\\.0\\.1:$DEAD"
gc_run --server "http://127.0.0.1:$DEAD" --user gcbot --password-file "$T/no-such-file"
expect_gc_fail gc.password_file_missing 1 "password file .*no-such-file"
: >"$T/empty"
gc_run --server "http://127.0.0.1:$DEAD" --token-file "$T/empty"
expect_gc_fail gc.token_file_empty 1 "token file .*empty"

# ---- an open registry (no --auth): a collection that deletes a blob
if ! start_registry --gc-grace 1; then
	fail "gc.start: berth did not start"
	exit 1
fi
gc_run --server "$URL"
expect_gc_line gc.open_summary_line "$SUMMARY"
gc_run --server "$URL/"
expect_gc_line gc.open_trailing_slash "$SUMMARY"
BERTH_SERVER=$URL gc_run --json
expect_gc_json gc.open_json_report "$REPORT and .dry_run == false"
gc_run --server "$URL" --dry-run --json
expect_gc_json gc.open_dry_run_json "$REPORT and .dry_run == true"

# A blob of 3 KiB that no manifest references: due once the grace (1 s)
# has passed; a dry run names it and keeps it, a run deletes it.
head -c 3072 /dev/urandom >"$T/orphan"
ORPHAN=$(dg "$T/orphan")
if push_blob gc/orphan "$T/orphan"; then ok gc.orphan_pushed; else fail gc.orphan_pushed; fi
sleep 2.5
gc_run --server "$URL" --dry-run
expect_gc_line gc.dry_run_summary "^gc \\(dry run\\): would delete 0 manifests, 1 blob \\(3\\.0 KiB\\), 0 uploads; would free 3\\.0 KiB in [0-9]+\\.[0-9] m?s; $N waiting$DUE\$"
gc_run --server "$URL" --dry-run --json
expect_gc_json gc.dry_run_lists_the_blob ".dry_run == true and .blobs.deleted == 1 and .blobs.bytes == 3072 and ([.deleted[] | select(.kind == \"blob\") | .digest] == [\"$ORPHAN\"])"
ls "$T/data/blobs/sha256/${ORPHAN:7:2}/${ORPHAN:7}" >/dev/null 2>&1 &&
	ok gc.dry_run_keeps_the_file || fail gc.dry_run_keeps_the_file
gc_run --server "$URL" --json
expect_gc_json gc.run_deletes_the_blob ".dry_run == false and .blobs.deleted == 1 and .bytes_freed >= 3072 and ([.deleted[] | select(.kind == \"blob\") | .digest] == [\"$ORPHAN\"])"
ls "$T/data/blobs/sha256/${ORPHAN:7:2}/${ORPHAN:7}" >/dev/null 2>&1 &&
	fail gc.run_removes_the_file || ok gc.run_removes_the_file
req GET "/v2/gc/orphan/blobs/$ORPHAN"
expect_status gc.blob_gone_404 404
gc_run --server "$URL"
expect_gc_line gc.second_run_deletes_nothing "^gc: deleted 0 manifests, 0 blobs \\(0 B\\), 0 uploads; freed 0 B in "

# An OCI error from the server: "CODE: message", exit 1.
gc_run --server "$URL/not-a-registry"
expect_gc_fail gc.server_error_oci_line 1 "^berth gc: [A-Z_]+: "
# A server that does not answer within --timeout.
kill -STOP "$BERTH_PID"
t0=$(date +%s)
gc_run --server "$URL" --timeout 1
t1=$(date +%s)
kill -CONT "$BERTH_PID"
expect_gc_fail gc.timeout_one_line 1 "[Tt]imed? ?out"
if [ $((t1 - t0)) -le 5 ]; then ok gc.timeout_honoured; else fail "gc.timeout_honoured: took $((t1 - t0)) s"; fi
stop_berth

# ---- answers berth never gives, from a stand-in server (python3's
# http.server): other statuses, bodies that are not a report, a token
# server of its own. Skipped (not counted) without python3.
fake_stop() { [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null; wait "${FAKE_PID:-}" 2>/dev/null; FAKE_PID=; }
cleanup_fns+=(fake_stop)
if ! command -v python3 >/dev/null; then
	echo "skip gc.fake_* (no python3)"
else
	FPORT=$(free_port)
	FAKE=http://127.0.0.1:$FPORT
	cat >"$T/fake.py" <<'PY'
import base64, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port = int(sys.argv[1])
realm = "http://127.0.0.1:%d/token" % port
report = {"started": "2026-12-02T22:00:00Z", "duration_ms": 1234.5,
          "dry_run": False,
          "manifests": {"deleted": 3, "bytes": 2048},
          "blobs": {"deleted": 5, "bytes": 13002342},
          "uploads": {"deleted": 1, "bytes": 10},
          "bytes_freed": 13002352,
          "waiting": {"count": 2, "next_due": "2026-12-02T23:10:00Z"},
          "queue": 2, "deleted": []}

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json", extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        want = "/token?service=fake&scope=registry%3Agc%3A%2A"
        basic = "Basic " + base64.b64encode(b"gcbot:fake-pass").decode()
        if self.path == want and self.headers.get("Authorization") == basic:
            self.send(200, json.dumps({"access_token": "fake.token.ok"}))
        elif self.path.startswith("/token-empty"):
            self.send(200, "{}")
        else:
            self.send(401, '{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}')

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        p = self.path
        if p == "/dance/v2/_berth/gc":
            if self.headers.get("Authorization") == "Bearer fake.token.ok":
                self.send(200, json.dumps(report))
            else:
                self.send(401, "{}", extra=[("WWW-Authenticate",
                    'Bearer realm="%s",service="fake",scope="registry:gc:*"' % realm)])
        elif p == "/empty-token/v2/_berth/gc":
            self.send(401, "{}", extra=[("WWW-Authenticate",
                'Bearer realm="%s-empty",service="fake",scope="registry:gc:*"' % realm)])
        elif p == "/basic/v2/_berth/gc":
            self.send(401, "", "text/plain", [("WWW-Authenticate", 'Basic realm="x"')])
        elif p == "/plain503/v2/_berth/gc":
            self.send(503, "busy\n", "text/plain")
        elif p == "/oci500/v2/_berth/gc":
            self.send(500, json.dumps({"errors": [
                {"code": "UNKNOWN", "message": "disk\nfull", "detail": "ENOSPC"},
                {"code": "UNKNOWN", "message": "again"}]}))
        elif p == "/notreport/v2/_berth/gc":
            self.send(200, '{"hello": "world"}')
        elif p == "/html/v2/_berth/gc":
            self.send(200, "<html>ok</html>", "text/html")
        elif p == "/report/v2/_berth/gc":
            r = dict(report, dry_run=bool(body.get("dry_run")))
            self.send(200, json.dumps(r))
        elif p == "/liar/v2/_berth/gc":
            self.send(200, json.dumps(report))
        elif p == "/huge/v2/_berth/gc":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk = b" " * (1 << 20)
            try:
                for _ in range(80):
                    self.wfile.write(chunk)
            except OSError:
                pass
        else:
            self.send(404, "no", "text/plain")

HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
	python3 "$T/fake.py" "$FPORT" >>"$T/fake.log" 2>&1 &
	FAKE_PID=$!
	for _ in $(seq 1 50); do curl -s -o /dev/null "$FAKE/" 2>/dev/null && break; sleep 0.1; done

	gc_run --server "$FAKE/report"
	expect_gc_line gc.fake_summary_units '^gc: deleted 3 manifests, 5 blobs \(12\.4 MiB\), 1 upload; freed 12\.4 MiB in 1\.2 s; 2 waiting \(next due 2026-12-02T23:10:00Z\)$'
	gc_run --server "$FAKE/report" --dry-run
	expect_gc_line gc.fake_dry_run_wording '^gc \(dry run\): would delete 3 manifests, 5 blobs \(12\.4 MiB\), 1 upload; would free 12\.4 MiB in 1\.2 s; 2 waiting'
	gc_run --server "$FAKE/report" --json
	expect_gc_json gc.fake_json_as_received '.blobs.bytes == 13002342 and .waiting.next_due == "2026-12-02T23:10:00Z"'
	printf 'fake-pass\n' >"$T/fake.pw"
	gc_run --server "$FAKE/dance" --user gcbot --password-file "$T/fake.pw"
	expect_gc_line gc.fake_token_dance "^gc: deleted 3 manifests"
	gc_run --server "$FAKE/empty-token" --user gcbot --password-file "$T/fake.pw"
	expect_gc_fail gc.fake_token_server_without_token 1 "no token"
	gc_run --server "$FAKE/basic"
	expect_gc_fail gc.fake_401_without_bearer 1 "unauthorized: HTTP 401 without a Bearer challenge"
	gc_run --server "$FAKE/plain503"
	expect_gc_fail gc.fake_plain_status 1 "^berth gc: HTTP 503$"
	gc_run --server "$FAKE/oci500"
	expect_gc_fail gc.fake_oci_error_line 1 '^berth gc: UNKNOWN: disk\?full \(ENOSPC\) \(and 1 more\)$'
	gc_run --server "$FAKE/notreport"
	expect_gc_fail gc.fake_json_not_a_report 1 "not a gc report"
	gc_run --server "$FAKE/html" --json
	expect_gc_fail gc.fake_html_not_a_report 1 "not a gc report"
	gc_run --server "$FAKE/huge"
	expect_gc_fail gc.fake_huge_body 1 "larger than 64 MiB"
	# Asked for a dry run, got a real run: printed, then refused.
	gc_run --server "$FAKE/liar" --dry-run
	if [ "$RC" = 1 ] && [[ $OUT == "gc: deleted "* ]] && [[ $ERR == "berth gc: asked for a dry run, but the server ran a real collection" ]]; then
		ok gc.fake_dry_run_not_honoured
	else
		fail "gc.fake_dry_run_not_honoured: exit $RC, stdout '$OUT', stderr '$ERR'"
	fi
	fake_stop
fi

# ---- with --auth: the token dance
if ! auth_setup; then
	fail "gc.auth_setup: keys or users file"
	exit 1
fi
# Two more users: gcbot may only collect; ops may do everything at once.
H_GC=$(auth_hash gc-secret)
H_OPS=$(auth_hash ops-secret)
jq --arg hgc "$H_GC" --arg hops "$H_OPS" '.users += [
	{"name": "gcbot", "password_hash": $hgc, "rules": [{"gc": true}]},
	{"name": "ops", "password_hash": $hops,
	 "rules": [{"repositories": ["**"], "actions": ["*"], "catalog": true, "gc": true}]}]' \
	"$AUTH_FILE" >"$AUTH_DIR/users-gc.json"
AUTH_FILE=$AUTH_DIR/users-gc.json
auth_check() { "$BERTH_BIN" auth check "$1" >/dev/null; }
check gc.users_file_with_gc_rule auth_check "$AUTH_FILE"
printf '{"service":"s","issuer":"i","realm":"http://h/t","signing_key":"key.pem",\n"users":[{"name":"u","password_hash":"%s",\n"rules":[{"gc": "yes"}]}]}\n' "$H_GC" >"$AUTH_DIR/bad-gc.json"
out=$("$BERTH_BIN" auth check "$AUTH_DIR/bad-gc.json" 2>&1)
rc=$?
if [ "$rc" = 1 ] && [[ $out == *"bad-gc.json:3: users[0].rules[0].gc: must be true or false"* ]]; then
	ok gc.users_file_bad_gc_named_by_line
else
	fail "gc.users_file_bad_gc_named_by_line: exit $rc, '$out'"
fi
if ! start_berth --auth "$AUTH_FILE"; then
	fail "gc.auth_start: berth did not start with --auth"
	exit 1
fi

# What the server asks for.
req POST /v2/_berth/gc
expect_status gc.auth_no_token_401 401
expect_hdr gc.auth_challenge_scope WWW-Authenticate \
	"Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\",scope=\"registry:gc:*\""
ADMIN_TOK=$(auth_token admin:admin-secret 'registry:gc:*' 'registry:catalog:*' 'repository:apps/web:pull')
req POST /v2/_berth/gc -H "Authorization: Bearer $ADMIN_TOK"
expect_status gc.auth_catalog_admin_401 401
expect_hdr_re gc.auth_catalog_admin_insufficient WWW-Authenticate 'scope="registry:gc:\*",error="insufficient_scope"'
GC_TOK=$(auth_token gcbot:gc-secret 'registry:gc:*')
C=$(printf '%s' "$GC_TOK" | cut -d. -f2 | tr '_-' '/+')
case $((${#C} % 4)) in 2) C="$C==" ;; 3) C="$C=" ;; esac
expect_eq gc.auth_token_access_claim '[{"type":"registry","name":"gc","actions":["*"]}]' \
	"$(printf '%s' "$C" | base64 -d 2>/dev/null | jq -c .access)"
req POST /v2/_berth/gc -H "Authorization: Bearer $GC_TOK" -H 'Content-Type: application/json' --data '{"dry_run":true}'
expect_status gc.auth_gc_token_200 200

# Users without the gc rule: exit 1 and what the users file lacks.
printf 'ci-secret\n' >"$T/ci.pw"
gc_run --server "$URL" --user ci --password-file "$T/ci.pw"
expect_gc_fail gc.auth_user_without_rule 1 '^berth gc: unauthorized: .*registry:gc:\*.*\(the user needs \{"gc": true\} in the users file\)$'
printf 'admin-secret\n' >"$T/admin.pw"
gc_run --server "$URL" --user admin --password-file "$T/admin.pw" --dry-run
expect_gc_fail gc.auth_catalog_user_is_not_gc 1 'unauthorized: .*\{"gc": true\}'
gc_run --server "$URL"
expect_gc_fail gc.auth_anonymous 1 'unauthorized: .*registry:gc:\*'
printf 'wrong-password\n' >"$T/wrong.pw"
gc_run --server "$URL" --user gcbot --password-file "$T/wrong.pw"
expect_gc_fail gc.auth_wrong_password 1 'unauthorized: .*gcbot'
CI_TOK=$(auth_token ci:ci-secret 'registry:gc:*' 'repository:review/a:pull')
printf '%s\n' "$CI_TOK" >"$T/ci.tok"
gc_run --server "$URL" --token-file "$T/ci.tok"
expect_gc_fail gc.auth_token_without_gc 1 'unauthorized: the token does not grant registry:gc:\*'
printf 'not.a.token\n' >"$T/junk.tok"
gc_run --server "$URL" --token-file "$T/junk.tok"
expect_gc_fail gc.auth_junk_token 1 'unauthorized: the token was refused'

# The gc user reaches the endpoint: by password (flags, then environment),
# and by token file.
printf 'gc-secret\n' >"$T/gc.pw"
gc_run --server "$URL" --user gcbot --password-file "$T/gc.pw"
expect_gc_line gc.auth_gc_user_summary "$SUMMARY"
BERTH_SERVER=$URL BERTH_USER=gcbot BERTH_PASSWORD_FILE=$T/gc.pw gc_run --dry-run
expect_gc_line gc.auth_gc_user_from_env "$DRY_SUMMARY"
printf 'ops-secret' >"$T/ops.pw" # no trailing newline
gc_run --server "$URL" --user ops --password-file "$T/ops.pw" --json
expect_gc_json gc.auth_all_in_one_rule_user "$REPORT"
printf '%s\n' "$GC_TOK" >"$T/gc.tok"
gc_run --server "$URL" --token-file "$T/gc.tok" --json
expect_gc_json gc.auth_token_file_json "$REPORT and .dry_run == false"
BERTH_SERVER=$URL BERTH_TOKEN_FILE=$T/gc.tok gc_run --dry-run --json
expect_gc_json gc.auth_token_file_from_env "$REPORT and .dry_run == true"
# Flags win over the environment's other way of signing in.
BERTH_TOKEN_FILE=$T/junk.tok gc_run --server "$URL" --user gcbot --password-file "$T/gc.pw"
expect_gc_line gc.auth_flags_over_env "$SUMMARY"
# The gate let those through: the access log has gc requests answered 200
# with berth's user agent.
n=$(grep '"route":"gc"' "$T/berth.log" | grep '"status":200' | grep -c '"agent":"berth/')
if [ "$n" -ge 6 ]; then ok gc.auth_gc_requests_reached_endpoint; else fail "gc.auth_gc_requests_reached_endpoint: $n answered 200"; fi

# ---- --token-url: the realm in the users file is out of reach (in a
# cluster: the public name, which a CronJob's NetworkPolicy blocks); the
# token comes from the server's own endpoint instead. Same port, same path.
stop_berth
jq '.realm = "http://127.0.0.1:1/auth/token"' "$AUTH_FILE" >"$AUTH_DIR/users-far.json"
if ! start_berth --auth "$AUTH_DIR/users-far.json"; then
	fail "gc.token_url_start: berth did not start with the far realm"
	exit 1
fi
TOKEN_URL=$URL/auth/token
req POST /v2/_berth/gc
expect_hdr_re gc.token_url_challenge_names_far_realm WWW-Authenticate '^Bearer realm="http://127\.0\.0\.1:1/auth/token"'
# cli_run CMD ARGS...: berth CMD, like gc_run.
cli_run() {
	"$BERTH_BIN" "$@" >"$T/gc.out" 2>"$T/gc.err"
	RC=$?
	OUT=$(cat "$T/gc.out")
	ERR=$(cat "$T/gc.err")
	cat "$T/gc.out" "$T/gc.err" >>"$T/all_out"
}
# A tag to list and delete, pushed with ops's token.
OPS_TOK=$(auth_token ops:ops-secret 'repository:apps/far:pull,push')
printf '{}' >"$T/far.cfg"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":2},"layers":[]}' \
	"$OCI_MANIFEST" "$OCI_EMPTY" "$EMPTY_DIGEST" >"$T/far.json"
req POST /v2/apps/far/blobs/uploads/ -H "Authorization: Bearer $OPS_TOK"
req PUT "$(with_query "$(loc_path)" "digest=$EMPTY_DIGEST")" -H "Authorization: Bearer $OPS_TOK" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/far.cfg"
req PUT /v2/apps/far/manifests/v1 -H "Authorization: Bearer $OPS_TOK" \
	-H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/far.json"
expect_status gc.token_url_tag_pushed 201

# Without --token-url: the token server is out of reach, one line.
gc_run --server "$URL" --user gcbot --password-file "$T/gc.pw" --dry-run
expect_gc_fail gc.token_url_needed_gc 1 '^berth gc: cannot reach the token server: .*127\.0\.0\.1.* 1\b'
cli_run ls --server "$URL" --user ops --password-file "$T/ops.pw"
if [ "$RC" = 1 ] && [ -z "$OUT" ] && [[ $ERR == "berth ls: cannot reach the token server: "* ]]; then
	ok gc.token_url_needed_ls
else
	fail "gc.token_url_needed_ls: exit $RC, stdout '${OUT:0:200}', stderr '${ERR:0:300}'"
fi
# With it (flag, environment, flag over environment, a query kept).
gc_run --server "$URL" --user gcbot --password-file "$T/gc.pw" --token-url "$TOKEN_URL" --dry-run
expect_gc_line gc.token_url_flag_gc "$DRY_SUMMARY"
BERTH_TOKEN_URL=$TOKEN_URL gc_run --server "$URL" --user gcbot --password-file "$T/gc.pw" --json
expect_gc_json gc.token_url_env_gc "$REPORT and .dry_run == false"
BERTH_TOKEN_URL=http://127.0.0.1:1/auth/token gc_run --server "$URL" --user gcbot \
	--password-file "$T/gc.pw" --token-url "$TOKEN_URL?from=cronjob" --dry-run
expect_gc_line gc.token_url_flag_over_env_with_query "$DRY_SUMMARY"
cli_run ls --server "$URL" --user ops --password-file "$T/ops.pw" --token-url "$TOKEN_URL" --json
if [ "$RC" = 0 ] && [ -z "$ERR" ] &&
	printf '%s' "$OUT" | jq -e '[.tags[] | .repository + ":" + .tag] == ["apps/far:v1"]' >/dev/null 2>&1; then
	ok gc.token_url_flag_ls_lists_the_tag
else
	fail "gc.token_url_flag_ls_lists_the_tag: exit $RC, stdout '${OUT:0:300}', stderr '${ERR:0:300}'"
fi
BERTH_TOKEN_URL=$TOKEN_URL cli_run rm --server "$URL" --user ops --password-file "$T/ops.pw" apps/far:v1
if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$OUT" = "deleted tag apps/far:v1" ]; then
	ok gc.token_url_env_rm
else
	fail "gc.token_url_env_rm: exit $RC, stdout '${OUT:0:300}', stderr '${ERR:0:300}'"
fi
req GET /v2/apps/far/manifests/v1 -H "Authorization: Bearer $OPS_TOK"
expect_status gc.token_url_rm_deleted_the_tag 404
# A preset token needs no token server at all.
gc_run --server "$URL" --token-file "$T/gc.tok" --dry-run
expect_gc_line gc.token_url_not_needed_with_token_file "$DRY_SUMMARY"

# ---- no secret anywhere
leak=
for s in gc-secret ci-secret admin-secret ops-secret wrong-password hunter2 \
	fake-pass fake.token.ok "$GC_TOK" "$CI_TOK" "$ADMIN_TOK" "$OPS_TOK" "Bearer ey" "Basic "; do
	grep -qF -- "$s" "$T/all_out" "$T/berth.log" && leak="$leak ${s:0:12}..."
done
if [ -z "$leak" ]; then ok gc.no_secret_in_output_or_log; else fail "gc.no_secret_in_output_or_log: found$leak"; fi

FINISH_ARGS=(-H "Authorization: Bearer $(auth_token gcbot:gc-secret)")
finish
