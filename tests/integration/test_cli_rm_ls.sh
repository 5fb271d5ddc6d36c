#!/usr/bin/env bash
# `berth rm` and `berth ls` against a stand-in server (python3's
# http.server on 127.0.0.1) that answers the contract of DELETE
# /v2/<repo>/manifests/<ref>, DELETE /v2/_berth/repositories/<repo>[/
# ?prefix=true] and GET /v2/_berth/tags with canned JSON and records every
# request (method, path and query, Authorization). Checked: the exact
# requests of each argument form, "not found" as success (and as failure
# with --strict), a failure that does not stop the next argument, usage
# errors (exit 2) before any request, paging and --limit, the table (its
# columns, alignment, relative times, totals), --json, and the token dance.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh

unset BERTH_SERVER BERTH_USER BERTH_PASSWORD_FILE BERTH_TOKEN_FILE
: >"$T/all_out" # every byte berth printed, searched for secrets

# run CMD ARGS...: berth CMD ARGS; exit status in RC, stdout in OUT, stderr
# in ERR; the stand-in's record of requests starts empty.
run() {
	: >"$T/reqs"
	"$BERTH_BIN" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	cat "$T/out" "$T/err" >>"$T/all_out"
}
# The requests the stand-in saw since the last run: "METHOD PATH?QUERY AUTH"
# per line (AUTH is "-", "Basic USER" or "Bearer TOKEN").
reqs() { cat "$T/reqs"; }
nlines() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }
# expect_fail NAME CMD EXIT ERE: exit EXIT, nothing on stdout, one line
# "berth CMD: …" on stderr matching ERE.
expect_fail() {
	if [ "$RC" = "$3" ] && [ -z "$OUT" ] && [ "$(nlines "$ERR")" = 1 ] &&
		[[ $ERR == "berth $2: "* ]] && [[ $ERR =~ $4 ]]; then
		ok "$1"
	else
		fail "$1: want exit $3 and one line /$4/; got exit $RC, stdout '${OUT:0:300}', stderr '${ERR:0:400}'"
	fi
}
# expect_out NAME WANT: exit 0, nothing on stderr, stdout exactly WANT.
expect_out() {
	if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$OUT" = "$2" ]; then
		ok "$1"
	else
		fail "$1: want exit 0 and '$2'; got exit $RC, stdout '${OUT:0:600}', stderr '${ERR:0:400}'"
	fi
}
# expect_reqs NAME WANT: the requests since the last run, exactly.
expect_reqs() { expect_eq "$1" "$2" "$(reqs)"; }

if ! command -v python3 >/dev/null || ! command -v jq >/dev/null; then
	fail "rmls.tools: python3 (the stand-in server) and jq are needed"
	exit 1
fi

# ---- usage, no server needed
for cmd in rm ls; do
	run "$cmd" --help
	if [ "$RC" = 0 ] && [ -z "$ERR" ] && [[ $OUT == "usage: berth $cmd "* ]]; then
		ok "$cmd.help_exit_0_usage"
	else
		fail "$cmd.help_exit_0_usage: exit $RC, stdout '${OUT:0:100}', stderr '$ERR'"
	fi
	miss=
	flags="--server --user --password-file --token-file --timeout --json BERTH_SERVER BERTH_USER BERTH_PASSWORD_FILE BERTH_TOKEN_FILE"
	[ "$cmd" = rm ] && flags="$flags --prefix --strict"
	[ "$cmd" = ls ] && flags="$flags --repository --expired --not-expired --idle-for --limit"
	for f in $flags; do
		case "$OUT" in *"$f"*) ;; *) miss="$miss $f" ;; esac
	done
	expect_eq "$cmd.help_explains_every_option" "" "$miss"
	case "$("$BERTH_BIN" --help)" in *"  $cmd "*) ok "$cmd.listed_in_berth_help" ;; *) fail "$cmd.listed_in_berth_help" ;; esac
done

D_A=sha256:$(printf 'a1%.0s' $(seq 32))
D_B=sha256:$(printf 'b2%.0s' $(seq 32))
D_C=sha256:$(printf 'c3%.0s' $(seq 32))

# ---- the stand-in
FPORT=$(free_port)
FAKE=http://127.0.0.1:$FPORT
fake_stop() { [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null; wait "${FAKE_PID:-}" 2>/dev/null; FAKE_PID=; }
cleanup_fns+=(fake_stop)
cat >"$T/fake.py" <<'PY'
import base64, json, re, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit, parse_qs

port, log = int(sys.argv[1]), sys.argv[2]
realm = "http://127.0.0.1:%d/token" % port
D_A, D_B, D_C = ("sha256:" + h * 32 for h in ("a1", "b2", "c3"))
MT = "application/vnd.oci.image.manifest.v1+json"
WEB = {"repository": "review/pr-42/web", "tags": 3, "manifests": 4,
       "links": 7, "kept": [{"digest": D_C, "tags": ["pr-42"],
                             "pins": ["registry.example/review/pr-42/web:pr-42"]}]}
API = {"repository": "review/pr-42/api", "tags": 1, "manifests": 1,
       "links": 2, "kept": []}
REPORTS = {
    "review/pr-42/web": {"repositories": [WEB], "tags": 3, "manifests": 4,
                         "links": 7, "kept": 1, "bytes": 1258291},
    "review/pr-42/": {"repositories": [WEB, API], "tags": 4, "manifests": 5,
                      "links": 9, "kept": 1, "bytes": 3145728},
}

def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

def rows():
    now = time.time()
    def row(repo, tag, digest, pushed, pulled, expires, by, pinned, size, uniq):
        return {"repository": repo, "tag": tag, "digest": digest,
                "media_type": MT, "pushed": iso(now - pushed),
                "last_pulled": None if pulled is None else iso(now - pulled),
                "expires": None if expires is None else iso(now + expires),
                "expires_by": by, "pinned": pinned, "size": size,
                "unique_size": uniq}
    return [
        row("review/web", "pr-42", D_A, 2 * 86400 + 100, 3 * 3600 + 5,
            5 * 3600 + 30, "ttl label", False, 13002342, 2097152),
        row("review/web", "pr-43", D_B, 40, None, -(2 * 3600 + 10),
            "policy rule 2 (expire_after 7d)", True, 1024, 512),
        row("apps/api", "main", D_C, 90 * 86400, 10 * 60 + 5, None, None,
            True, 1048576, 0),
        row("apps/api", "v1.2.3", D_C, 7 * 86400 + 1, 30, 3 * 86400 + 30,
            "rule\nwith a newline", False, 3145728, 1048576),
        row("scratch/tmp", "x", D_A, 3 * 3600 + 1, None, 50 * 60,
            None, False, 500, 500),
    ]

def oci(code, msg):
    return json.dumps({"errors": [{"code": code, "message": msg}]})

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body, extra=()):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        a = self.headers.get("Authorization")
        if a is None:
            who = "-"
        elif a.startswith("Basic "):
            who = "Basic " + base64.b64decode(a[6:]).decode().split(":")[0]
        else:
            who = a
        with open(log, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, who))

    def route(self):
        self.record()
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        u = urlsplit(self.path)
        q = parse_qs(u.query, keep_blank_values=True)
        p = u.path
        if p == "/token":
            basic = "Basic " + base64.b64encode(b"ci:ci-pass").decode()
            if self.headers.get("Authorization") == basic:
                return self.send(200, json.dumps({"token": "fake.token.ok"}))
            return self.send(401, oci("UNAUTHORIZED", "no"))
        if p.startswith("/auth/"):
            if self.headers.get("Authorization") != "Bearer fake.token.ok":
                return self.send(401, oci("UNAUTHORIZED", "sign in"), [(
                    "WWW-Authenticate",
                    'Bearer realm="%s",service="fake",scope="repository:review/web:delete"' % realm)])
            p = p[5:]
        elif p.startswith("/old/"):
            return self.send(404, oci("UNSUPPORTED", "no such route"))
        elif p.startswith("/garbage/"):
            return self.send(200, '{"tags": 5, "repositories": "no"}')
        elif p.startswith("/html/"):
            return self.send(200, "<html></html>")
        elif p.startswith("/loop/"):
            return self.send(200, json.dumps({"tags": rows()[:1], "next": "same"}))
        m = re.match(r"^/v2/(.+)/manifests/([^/]+)$", p)
        if self.command == "DELETE" and m:
            repo, ref = m.groups()
            if repo == "review/boom":
                return self.send(500, oci("UNKNOWN", "disk full"))
            if repo == "review/gone":
                return self.send(404, oci("MANIFEST_UNKNOWN", "manifest unknown"))
            if repo == "review/nothing":
                return self.send(404, oci("NAME_UNKNOWN", "repository name not known to registry"))
            return self.send(202, "")
        m = re.match(r"^/v2/_berth/repositories/(.+)$", p)
        if self.command == "DELETE" and m:
            name = m.group(1)
            if name.endswith("/") != (q.get("prefix") == ["true"]):
                return self.send(400, oci("NAME_INVALID", "prefix mismatch"))
            if name in REPORTS:
                return self.send(200, json.dumps(REPORTS[name], indent=2))
            return self.send(404, oci("NAME_UNKNOWN", "no repository matched"))
        if self.command == "GET" and p == "/v2/_berth/tags":
            if q.get("repository") == ["bad["]:
                return self.send(400, oci("PARAM_INVALID", "bad glob"))
            if q.get("repository") == ["nomatch/*"]:
                return self.send(200, '{"tags": []}')
            last = q.get("last", ["c/0 x"])[0]
            off = int(last[2:-2])
            size = min(2, int(q.get("n", ["1000"])[0]))
            all_rows = rows()
            body = {"tags": all_rows[off:off + size]}
            if off + size < len(all_rows):
                body["next"] = "c/%d x" % (off + size)
            return self.send(200, json.dumps(body))
        self.send(404, oci("UNSUPPORTED", "no such route"))

    do_GET = do_DELETE = do_POST = route

HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
python3 "$T/fake.py" "$FPORT" "$T/reqs" >>"$T/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "$FAKE/" 2>/dev/null && break; sleep 0.1; done
if ! curl -s -o /dev/null "$FAKE/"; then
	fail "rmls.stand_in_started: $(cat "$T/fake.log")"
	exit 1
fi

# ---- berth rm: one request per argument, of the right form
run rm --server "$FAKE" review/web:pr-42
expect_out rm.tag_deleted "deleted tag review/web:pr-42"
expect_reqs rm.tag_request "DELETE /v2/review/web/manifests/pr-42 -"
run rm --server "$FAKE" "review/web@$D_B"
expect_out rm.digest_deleted "deleted manifest review/web@$D_B"
expect_reqs rm.digest_request "DELETE /v2/review/web/manifests/$D_B -"
run rm --server "$FAKE" review/pr-42/web
expect_out rm.repository_deleted "deleted repository review/pr-42/web: 3 tags, 4 manifests; frees 1.2 MiB at the next collection
kept $D_C (tags pr-42) in review/pr-42/web: in use (pin registry.example/review/pr-42/web:pr-42)"
expect_reqs rm.repository_request "DELETE /v2/_berth/repositories/review/pr-42/web -"
run rm --server "$FAKE" --prefix review/pr-42/
expect_out rm.prefix_deleted "deleted repository review/pr-42/web: 3 tags, 4 manifests
kept $D_C (tags pr-42) in review/pr-42/web: in use (pin registry.example/review/pr-42/web:pr-42)
deleted repository review/pr-42/api: 1 tag, 1 manifest
deleted 2 repositories under review/pr-42/: 4 tags, 5 manifests; frees 3.0 MiB at the next collection"
expect_reqs rm.prefix_request "DELETE /v2/_berth/repositories/review/pr-42/?prefix=true -"
# Everything a closed pull request leaves, in the order given; the server
# from the environment, a trailing '/' on it is fine.
BERTH_SERVER=$FAKE/ run rm review/web:pr-42 --prefix review/pr-42/ "review/web@$D_A" -- review/pr-42/web
expect_reqs rm.several_in_order "DELETE /v2/review/web/manifests/pr-42 -
DELETE /v2/_berth/repositories/review/pr-42/?prefix=true -
DELETE /v2/review/web/manifests/$D_A -
DELETE /v2/_berth/repositories/review/pr-42/web -"
if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$(nlines "$OUT")" = 8 ]; then ok rm.several_exit_0; else fail "rm.several_exit_0: exit $RC, '$OUT', '$ERR'"; fi
# The registry host before the name: the ':' of the port is not a tag.
run rm --server "$FAKE" registry.example/review/web:v1.0
expect_reqs rm.tag_after_last_slash "DELETE /v2/registry.example/review/web/manifests/v1.0 -"

# ---- what is gone already: not a failure, unless --strict
run rm --server "$FAKE" review/gone:pr-7 review/nothing:pr-7 review/pr-99/web --prefix review/pr-99/
expect_out rm.not_found_is_success "review/gone:pr-7: not found, nothing to delete
review/nothing:pr-7: not found, nothing to delete
review/pr-99/web: not found, nothing to delete
review/pr-99/: not found, nothing to delete"
expect_eq rm.not_found_each_asked 4 "$(reqs | wc -l)"
run rm --server "$FAKE" --strict review/gone:pr-7
expect_fail rm.strict_not_found_fails rm 1 '^berth rm: review/gone:pr-7: MANIFEST_UNKNOWN: manifest unknown$'
run rm --server "$FAKE" --strict --prefix review/pr-99/
expect_fail rm.strict_prefix_not_found rm 1 '^berth rm: review/pr-99/: NAME_UNKNOWN: no repository matched$'
# A 404 from a route the server does not have (an old server, a wrong
# --server path) is no proof that the tag is gone.
run rm --server "$FAKE/old" review/web:pr-42
expect_fail rm.route_404_is_failure rm 1 '^berth rm: review/web:pr-42: UNSUPPORTED: no such route$'

# ---- a failure: one line, the next argument still done, exit 1
run rm --server "$FAKE" review/boom:pr-1 review/web:pr-42
if [ "$RC" = 1 ] && [ "$ERR" = "berth rm: review/boom:pr-1: UNKNOWN: disk full" ] &&
	[ "$OUT" = "deleted tag review/web:pr-42" ]; then
	ok rm.failure_then_next
else
	fail "rm.failure_then_next: exit $RC, stdout '$OUT', stderr '$ERR'"
fi
expect_reqs rm.failure_then_next_requests "DELETE /v2/review/boom/manifests/pr-1 -
DELETE /v2/review/web/manifests/pr-42 -"
run rm --server "$FAKE/garbage" review/pr-42/web
expect_fail rm.not_a_report rm 1 '^berth rm: review/pr-42/web: the server.s answer \(HTTP 200\) is not a repository deletion report$'
run rm --server "$FAKE/html" review/pr-42/web
expect_fail rm.html_not_a_report rm 1 'is not a repository deletion report$'
DEAD=$(free_port)
run rm --server "http://127.0.0.1:$DEAD" review/web:a review/web:b
if [ "$RC" = 1 ] && [ -z "$OUT" ] && [ "$(nlines "$ERR")" = 2 ] &&
	[[ $ERR == "berth rm: review/web:a: cannot reach http://127.0.0.1:$DEAD: "*"berth rm: review/web:b: cannot reach"* ]]; then
	ok rm.unreachable_one_line_each
else
	fail "rm.unreachable_one_line_each: exit $RC, '$OUT', '$ERR'"
fi

# ---- usage: exit 2 before any request
run rm --server "$FAKE" review/web:pr-42 --prefix review/pr-42
expect_fail rm.prefix_needs_slash rm 2 "must end with '/'"
expect_reqs rm.prefix_needs_slash_no_request ""
run rm --server "$FAKE" --prefix review/ --prefix apps/
expect_fail rm.prefix_once rm 2 "once"
run rm --server "$FAKE" --prefix /
expect_fail rm.prefix_slash_only rm 2 "not a valid repository name"
run rm --server "$FAKE" review/web:pr-42 Review/Web
expect_fail rm.bad_repo_name rm 2 "'Review/Web' is not a valid repository name"
expect_reqs rm.bad_repo_name_no_request ""
run rm --server "$FAKE" localhost:5000/review/web:pr-1
expect_fail rm.port_in_name rm 2 "'localhost:5000/review/web' is not a valid repository name"
run rm --server "$FAKE" review/web:-pr
expect_fail rm.bad_tag rm 2 "'-pr' is not a valid tag"
run rm --server "$FAKE" review/web:
expect_fail rm.empty_tag rm 2 "is not a valid tag"
run rm --server "$FAKE" review/web@sha256:abc
expect_fail rm.bad_digest rm 2 "'sha256:abc' is not a valid digest"
run rm --server "$FAKE" "review/web:pr-42@$D_A"
expect_fail rm.tag_and_digest rm 2 "not both"
run rm --server "$FAKE"
expect_fail rm.nothing_to_delete rm 2 "nothing to delete"
run rm review/web:pr-42
expect_fail rm.no_server rm 2 "--server URL \(or BERTH_SERVER\) is needed \(berth rm --help\)$"
run rm --server "$FAKE" --bogus review/web:pr-42
expect_fail rm.unknown_option rm 2 "unknown option '--bogus'"
run rm --server "$FAKE" --user ci review/web:pr-42
expect_fail rm.user_without_password rm 2 "--user needs --password-file"
run rm --server "$FAKE" --timeout 0 review/web:pr-42
expect_fail rm.bad_timeout rm 2 "--timeout needs seconds"
run rm --server "ftp://127.0.0.1:$FPORT" review/web:pr-42
expect_fail rm.bad_server_url rm 2 "http://"
run rm --server "$FAKE" --token-file "$T/no-such-file" review/web:pr-42
expect_fail rm.token_file_missing rm 1 "token file .*no-such-file"

# ---- berth rm --json: one JSON object per argument
run rm --server "$FAKE" --json review/web:pr-42 review/pr-42/web review/gone:pr-7 --prefix review/pr-42/
if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$(nlines "$OUT")" = 4 ] &&
	printf '%s\n' "$OUT" | jq -se '
		.[0] == {"repository": "review/web", "tag": "pr-42", "deleted": true} and
		.[1].bytes == 1258291 and .[1].repositories[0].kept[0].digest == "'"$D_C"'" and
		.[2] == {"repository": "review/gone", "tag": "pr-7", "deleted": false, "error": "MANIFEST_UNKNOWN"} and
		(.[3].repositories | length) == 2' >/dev/null; then
	ok rm.json_one_object_per_argument
else
	fail "rm.json_one_object_per_argument: exit $RC, stdout '${OUT:0:600}', stderr '$ERR'"
fi

# ---- berth ls: paging, the query, the table
run ls --server "$FAKE"
expect_reqs ls.follows_three_pages "GET /v2/_berth/tags?n=1000 -
GET /v2/_berth/tags?n=1000&last=c%2F2%20x -
GET /v2/_berth/tags?n=1000&last=c%2F4%20x -"
if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$(nlines "$OUT")" = 7 ]; then ok ls.header_five_rows_totals; else fail "ls.header_five_rows_totals: exit $RC, '$OUT', '$ERR'"; fi
printf '%s\n' "$OUT" >"$T/table"
expect_eq ls.header "REPOSITORY TAG DIGEST PUSHED LAST PULLED EXPIRES PINNED SIZE UNIQUE" \
	"$(head -1 "$T/table" | tr -s ' ')"
expect_eq ls.totals "5 tags, 16.4 MiB total, 3.0 MiB unique" "$(tail -1 "$T/table")"
expect_eq ls.columns_aligned 1 "$(head -6 "$T/table" | awk '{ print length($0) }' | sort -u | wc -l)"
pos=$(head -1 "$T/table" | awk '{ print index($0, "DIGEST") }')
expect_eq ls.digest_column_lines_up "$D_A" "sha256:$(sed -n 2p "$T/table" | cut -c"$pos"-$((pos + 11)))$(printf 'a1%.0s' $(seq 26))"
row() { sed -n "$1p" "$T/table" | tr -s ' '; }
R1=$(row 2) R2=$(row 3) R3=$(row 4) R4=$(row 5) R5=$(row 6)
[[ $R1 == "review/web pr-42 a1a1a1a1a1a1 2d ago 3h ago in 5h (ttl label) no 12.4 MiB 2.0 MiB" ]] &&
	ok ls.row_expires_in || fail "ls.row_expires_in: '$R1'"
[[ $R2 =~ ^review/web\ pr-43\ b2b2b2b2b2b2\ 4[0-2]s\ ago\ never\ expired\ 2h\ ago\ \(policy\ rule\ 2\ \(expire_after\ 7d\)\)\ yes\ 1\.0\ KiB\ 512\ B$ ]] &&
	ok ls.row_never_pulled_expired_ago || fail "ls.row_never_pulled_expired_ago: '$R2'"
[[ $R3 == "apps/api main c3c3c3c3c3c3 90d ago 10m ago never yes 1.0 MiB 0 B" ]] &&
	ok ls.row_never_expires || fail "ls.row_never_expires: '$R3'"
[[ $R4 =~ ^apps/api\ v1\.2\.3\ c3c3c3c3c3c3\ 7d\ ago\ 3[0-2]s\ ago\ in\ 3d\ \(rule\?with\ a\ newline\)\ no\ 3\.0\ MiB\ 1\.0\ MiB$ ]] &&
	ok ls.row_control_character_cleaned || fail "ls.row_control_character_cleaned: '$R4'"
[[ $R5 =~ ^scratch/tmp\ x\ a1a1a1a1a1a1\ 3h\ ago\ never\ in\ (49|50)m\ no\ 500\ B\ 500\ B$ ]] &&
	ok ls.row_minutes_no_reason || fail "ls.row_minutes_no_reason: '$R5'"

# Filters go into the query, percent-encoded.
run ls --server "$FAKE" --repository 'review/**' --expired --idle-for 7d
expect_eq ls.query_encoded "GET /v2/_berth/tags?n=1000&repository=review%2F%2A%2A&expired=true&idle_for=7d -" \
	"$(reqs | head -1)"
run ls --server "$FAKE" --not-expired --repository 'a b&c=d'
expect_eq ls.query_not_expired "GET /v2/_berth/tags?n=1000&repository=a%20b%26c%3Dd&expired=false -" \
	"$(reqs | head -1)"

# --limit: stops after N rows, asks for no more than it needs.
run ls --server "$FAKE" --limit 3
expect_reqs ls.limit_stops_early "GET /v2/_berth/tags?n=3 -
GET /v2/_berth/tags?n=1&last=c%2F2%20x -"
expect_eq ls.limit_rows "3 tags" "$(tail -1 <<<"$OUT" | cut -d, -f1)"
run ls --server "$FAKE" --limit 2
expect_eq ls.limit_one_page 1 "$(reqs | wc -l)"

# --json: one object with every row as the server sent it.
run ls --server "$FAKE" --json
if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$(nlines "$OUT")" = 1 ] &&
	printf '%s' "$OUT" | jq -e '(.tags | length) == 5 and .tags[0].tag == "pr-42" and
		.tags[0].size == 13002342 and .tags[1].last_pulled == null and .tags[1].pinned == true and
		.tags[3].expires_by == "rule\nwith a newline" and (keys == ["tags"])' >/dev/null; then
	ok ls.json_all_rows
else
	fail "ls.json_all_rows: exit $RC, '${OUT:0:300}', '$ERR'"
fi
run ls --server "$FAKE" --json --limit 3
expect_eq ls.json_limit 3 "$(printf '%s' "$OUT" | jq '.tags | length')"
run ls --server "$FAKE" --repository 'nomatch/*'
expect_out ls.empty_list "0 tags, 0 B total, 0 B unique"
run ls --server "$FAKE" --repository 'nomatch/*' --json
expect_out ls.empty_json '{"tags":[]}'

# Failures: one line, exit 1, nothing on stdout.
run ls --server "$FAKE" --repository 'bad['
expect_fail ls.server_400 ls 1 '^berth ls: PARAM_INVALID: bad glob$'
run ls --server "$FAKE/garbage"
expect_fail ls.not_a_tag_list ls 1 'the server.s answer \(HTTP 200\) is not a tag list$'
run ls --server "$FAKE/html" --json
expect_fail ls.html_not_a_tag_list ls 1 'is not a tag list$'
run ls --server "$FAKE/loop"
expect_fail ls.cursor_loop ls 1 'repeats the page cursor'
run ls --server "$FAKE/old"
expect_fail ls.route_404 ls 1 '^berth ls: UNSUPPORTED: no such route$'
run ls --server "http://127.0.0.1:$DEAD"
expect_fail ls.unreachable ls 1 "^berth ls: cannot reach http://127\\.0\\.0\\.1:$DEAD: "

# Usage: exit 2, no request.
run ls --server "$FAKE" --idle-for 7x
expect_fail ls.bad_duration_unit ls 2 "--idle-for .*'7x'"
expect_reqs ls.bad_duration_no_request ""
run ls --server "$FAKE" --idle-for 1.5d
expect_fail ls.bad_duration_fraction ls 2 "--idle-for"
run ls --server "$FAKE" --idle-for d
expect_fail ls.bad_duration_no_number ls 2 "--idle-for"
run ls --server "$FAKE" --expired --not-expired
expect_fail ls.expired_and_not ls 2 "exclude each other"
run ls --server "$FAKE" --limit 0
expect_fail ls.bad_limit ls 2 "--limit"
run ls --server "$FAKE" --limit
expect_fail ls.limit_without_value ls 2 "--limit needs a value"
run ls --server "$FAKE" stray
expect_fail ls.stray_argument ls 2 "unknown option 'stray'"
run ls
expect_fail ls.no_server ls 2 "--server URL \(or BERTH_SERVER\) is needed"
run ls --server "$FAKE" --user ci --password-file /dev/null --token-file /dev/null
expect_fail ls.user_and_token ls 2 "exclude each other"

# ---- the token dance through the stand-in's /auth and /token
printf 'ci-pass\n' >"$T/ci.pw"
run rm --server "$FAKE/auth" --user ci --password-file "$T/ci.pw" review/web:pr-42
expect_out rm.auth_token_dance "deleted tag review/web:pr-42"
expect_reqs rm.auth_token_dance_requests "DELETE /auth/v2/review/web/manifests/pr-42 -
GET /token?service=fake&scope=repository%3Areview%2Fweb%3Adelete Basic ci
DELETE /auth/v2/review/web/manifests/pr-42 Bearer fake.token.ok"
# The token obtained is kept for the next pages.
BERTH_USER=ci BERTH_PASSWORD_FILE=$T/ci.pw run ls --server "$FAKE/auth"
expect_eq ls.auth_token_reused "GET /auth/v2/_berth/tags?n=1000 -
GET /token?service=fake&scope=repository%3Areview%2Fweb%3Adelete Basic ci
GET /auth/v2/_berth/tags?n=1000 Bearer fake.token.ok
GET /auth/v2/_berth/tags?n=1000&last=c%2F2%20x Bearer fake.token.ok
GET /auth/v2/_berth/tags?n=1000&last=c%2F4%20x Bearer fake.token.ok" "$(reqs)"
expect_eq ls.auth_rows "5 tags" "$(tail -1 <<<"$OUT" | cut -d, -f1)"
printf 'fake.token.ok\n' >"$T/ci.tok"
run rm --server "$FAKE/auth" --token-file "$T/ci.tok" review/web:pr-42
expect_reqs rm.auth_preset_token "DELETE /auth/v2/review/web/manifests/pr-42 Bearer fake.token.ok"
printf 'wrong\n' >"$T/wrong.pw"
run rm --server "$FAKE/auth" --user ci --password-file "$T/wrong.pw" review/web:pr-42 review/web:pr-43
if [ "$RC" = 1 ] && [ -z "$OUT" ] && [ "$(nlines "$ERR")" = 2 ] &&
	[[ $ERR == "berth rm: review/web:pr-42: unauthorized: the token server refused user ci"* ]]; then
	ok rm.auth_wrong_password
else
	fail "rm.auth_wrong_password: exit $RC, '$OUT', '$ERR'"
fi
run ls --server "$FAKE/auth"
expect_fail ls.auth_anonymous ls 1 "unauthorized"

leak=
for s in ci-pass fake.token.ok; do
	grep -qF -- "$s" "$T/all_out" && leak="$leak $s"
done
if [ -z "$leak" ]; then ok rmls.no_secret_in_output; else fail "rmls.no_secret_in_output: found$leak"; fi
fake_stop
