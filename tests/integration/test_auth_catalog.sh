#!/usr/bin/env bash
# The catalog with token auth lists only the repositories the caller may
# pull, by the users file's rules for the token's user (plus the anonymous
# rules): two teams with the catalog right each see their own names and
# the public ones, never the other team's or names no rule covers; paging
# with n=1 and n=2 walks exactly those names, each Link naming the last
# name of its page; a user without the catalog right, or an anonymous
# token, is refused as before; without --auth the catalog is unchanged.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh
. tests/integration/auth_lib.sh

# ---- content, pushed while berth runs without auth
ALL='["a-first/one","other/thing","public/base","team-a/app","team-a/web","team-a/x/deep","team-ab/app","team-b/api","team-b/db","zz/last"]'
if ! start_berth; then
	fail "auth_catalog.start: berth did not start"
	exit 1
fi
for r in $(echo "$ALL" | jq -r '.[]'); do
	p=$(echo "$r" | tr '/' '_')
	if mk_image "$r" "$p" && push_manifest "$r" v1 "$T/$p.json" "$OCI_MANIFEST"; then
		:
	else
		fail "auth_catalog.push $r"
	fi
done
req GET /v2/_catalog
expect_jq auth_catalog.open_lists_everything .repositories "$ALL"
req GET "/v2/_catalog?n=3&last=public/base"
expect_jq auth_catalog.open_paging_unchanged .repositories \
	'["team-a/app","team-a/web","team-a/x/deep"]'
expect_hdr auth_catalog.open_paging_link Link '</v2/_catalog?n=3&last=team-a/x/deep>; rel="next"'
stop_berth

# ---- the users file: two teams with the catalog right, one user without
AUTH_DIR=$T/auth
mkdir -p "$AUTH_DIR"
PORT=$(free_port)
export BERTH_PORT=$PORT
AUTH_REALM=http://127.0.0.1:$PORT/auth/token
"$BERTH_BIN" auth keygen --out "$AUTH_DIR/key.pem" || fail "auth_catalog.keygen"
H=$(auth_hash team-secret)
cat >"$AUTH_DIR/users.json" <<EOF
{
  "service": "$AUTH_SERVICE",
  "issuer": "$AUTH_ISSUER",
  "realm": "$AUTH_REALM",
  "signing_key": "key.pem",
  "users": [
    {"name": "team-a", "password_hash": "$H",
     "rules": [{"repositories": ["team-a/**"], "actions": ["pull", "push"]},
               {"catalog": true}]},
    {"name": "team-b", "password_hash": "$H",
     "rules": [{"repositories": ["team-b/**"], "actions": ["pull"], "catalog": true}]},
    {"name": "nocat", "password_hash": "$H",
     "rules": [{"repositories": ["**"], "actions": ["pull"]}]},
    {"name": "ops", "password_hash": "$H",
     "rules": [{"repositories": ["**"], "actions": ["*"]}, {"catalog": true}]}
  ],
  "anonymous": [{"repositories": ["public/**"], "actions": ["pull"]}]
}
EOF
if ! start_berth --auth "$AUTH_DIR/users.json"; then
	fail "auth_catalog.start: berth did not start with --auth"
	exit 1
fi
bearer() { printf 'Authorization: Bearer %s' "$1"; }

# dance USER: GET /v2/_catalog as docker or skopeo would: the 401's
# challenge names realm, service and scope; a token from the realm with
# Basic credentials; the request again with it. Leaves the token in TOK.
dance() {
	local ch realm service scope
	TOK=
	req GET /v2/_catalog
	[ "$ST" = 401 ] || { fail "auth_catalog.dance $1: want 401 first $(ctx)"; return 1; }
	ch=$(hdr WWW-Authenticate)
	realm=$(printf '%s' "$ch" | sed -n 's/.*realm="\([^"]*\)".*/\1/p')
	service=$(printf '%s' "$ch" | sed -n 's/.*service="\([^"]*\)".*/\1/p')
	scope=$(printf '%s' "$ch" | sed -n 's/.*scope="\([^"]*\)".*/\1/p')
	expect_eq "auth_catalog.challenge_scope $1" 'registry:catalog:*' "$scope"
	TOK=$(curl -sS -G -u "$1:team-secret" --data-urlencode "service=$service" \
		--data-urlencode "scope=$scope" "$realm" | jq -r '.token // empty')
	[ -n "$TOK" ] || { fail "auth_catalog.dance $1: no token"; return 1; }
	req GET /v2/_catalog -H "$(bearer "$TOK")"
}

# walk TOKEN N: follows the Link headers from /v2/_catalog?n=N; prints
# one line per page: the page's names as JSON, a tab, the Link (or
# "none"); fails a check when a page is over N or the walk does not end.
walk() {
	local path="/v2/_catalog?n=$2" link pages=0
	while [ -n "$path" ] && [ $pages -lt 20 ]; do
		req GET "$path" -H "$(bearer "$1")"
		[ "$ST" = 200 ] || { echo "status $ST"; return; }
		link=$(hdr Link)
		printf '%s\t%s\n' "$(jq -c .repositories "$T/b")" "${link:-none}"
		path=$(printf '%s' "$link" | sed -n 's/^<\([^>]*\)>; rel="next"$/\1/p')
		pages=$((pages + 1))
	done
}

A_SEES='["public/base","team-a/app","team-a/web","team-a/x/deep"]'
B_SEES='["public/base","team-b/api","team-b/db"]'

# ---- each team's catalog: its own names and the anonymous ones
dance team-a
expect_status auth_catalog.team_a_200 200
expect_jq auth_catalog.team_a_sees_its_own .repositories "$A_SEES"
A_TOK=$TOK
dance team-b
expect_status auth_catalog.team_b_200 200
expect_jq auth_catalog.team_b_sees_its_own .repositories "$B_SEES"
B_TOK=$TOK
if has_hdr Link; then fail "auth_catalog.team_b_no_link $(ctx)"; else ok auth_catalog.team_b_no_link; fi
# the token holds the catalog scope only: the names come from the rules
expect_eq auth_catalog.token_has_catalog_only '[{"type":"registry","name":"catalog","actions":["*"]}]' \
	"$(printf '%s' "$A_TOK" | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null | jq -c .access)"
OPS_TOK=$(auth_token ops:team-secret 'registry:catalog:*')
req GET /v2/_catalog -H "$(bearer "$OPS_TOK")"
expect_jq auth_catalog.ops_sees_everything .repositories "$ALL"

# ---- paging: n=1 walks exactly the visible names, Link after each
walk "$A_TOK" 1 >"$T/walk_a1"
expect_eq auth_catalog.team_a_n1_pages "$(printf '%s\n' \
	'["public/base"]	</v2/_catalog?n=1&last=public/base>; rel="next"' \
	'["team-a/app"]	</v2/_catalog?n=1&last=team-a/app>; rel="next"' \
	'["team-a/web"]	</v2/_catalog?n=1&last=team-a/web>; rel="next"' \
	'["team-a/x/deep"]	none')" "$(cat "$T/walk_a1")"
walk "$B_TOK" 1 >"$T/walk_b1"
expect_eq auth_catalog.team_b_n1_pages "$(printf '%s\n' \
	'["public/base"]	</v2/_catalog?n=1&last=public/base>; rel="next"' \
	'["team-b/api"]	</v2/_catalog?n=1&last=team-b/api>; rel="next"' \
	'["team-b/db"]	none')" "$(cat "$T/walk_b1")"
walk "$A_TOK" 2 >"$T/walk_a2"
expect_eq auth_catalog.team_a_n2_pages "$(printf '%s\n' \
	'["public/base","team-a/app"]	</v2/_catalog?n=2&last=team-a/app>; rel="next"' \
	'["team-a/web","team-a/x/deep"]	none')" "$(cat "$T/walk_a2")"
walk "$B_TOK" 3 >"$T/walk_b3"
expect_eq auth_catalog.team_b_n3_one_page "$(printf '%s\n' \
	'["public/base","team-b/api","team-b/db"]	none')" "$(cat "$T/walk_b3")"
# a `last` the caller cannot see (it guessed it) starts the walk after
# it and gives nothing away
req GET "/v2/_catalog?n=10&last=team-a/app" -H "$(bearer "$B_TOK")"
expect_jq auth_catalog.team_b_after_foreign_last .repositories '["team-b/api","team-b/db"]'
req GET "/v2/_catalog?n=10&last=team-b/db" -H "$(bearer "$B_TOK")"
expect_jq auth_catalog.team_b_after_its_last .repositories '[]'
req GET "/v2/_catalog?n=0" -H "$(bearer "$A_TOK")"
expect_jq auth_catalog.n0_empty .repositories '[]'
if has_hdr Link; then fail "auth_catalog.n0_no_link $(ctx)"; else ok auth_catalog.n0_no_link; fi

# ---- refused as before: no catalog right, anonymous, no token
NOCAT=$(auth_token nocat:team-secret 'registry:catalog:*')
req GET /v2/_catalog -H "$(bearer "$NOCAT")"
expect_status auth_catalog.nocat_401 401
expect_hdr_re auth_catalog.nocat_insufficient WWW-Authenticate 'error="insufficient_scope"'
ANON=$(auth_token "" 'registry:catalog:*')
req GET /v2/_catalog -H "$(bearer "$ANON")"
expect_status auth_catalog.anonymous_401 401
req GET /v2/_catalog
expect_status auth_catalog.no_token_401 401

# ---- the names follow the users file in force, not the token: team-a's
# token from before a rule is added lists what the new rule allows
stop_berth
jq '.users[0].rules += [{"repositories": ["other/*"], "actions": ["pull"]}]' \
	"$AUTH_DIR/users.json" >"$AUTH_DIR/users2.json"
if start_berth --auth "$AUTH_DIR/users2.json"; then
	req GET /v2/_catalog -H "$(bearer "$A_TOK")"
	expect_jq auth_catalog.new_rule_counts .repositories \
		'["other/thing","public/base","team-a/app","team-a/web","team-a/x/deep"]'
else
	fail "auth_catalog.restart with the new users file"
fi

FINISH_ARGS=(-H "$(bearer "$OPS_TOK")")
finish
