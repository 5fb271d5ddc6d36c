#!/usr/bin/env bash
# Token auth over plain HTTP with curl: challenges, the token endpoint (GET
# with Basic or anonymous, POST password grant), what each user's token
# allows and refuses, mounts across repositories, and that no secret
# reaches the log.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh
. tests/integration/auth_lib.sh

if ! auth_setup; then
	fail "auth.setup: keys or users file"
	exit 1
fi
auth_check() { "$BERTH_BIN" auth check "$1" >/dev/null; }
check auth.check_file auth_check "$AUTH_FILE"
if ! start_berth --auth "$AUTH_FILE"; then
	fail "auth.start: berth did not start with --auth"
	exit 1
fi

b64url_json() { # decodes one base64url JWT part
	local s=${1//-/+}
	s=${s//_//}
	case $((${#s} % 4)) in 2) s="$s==" ;; 3) s="$s=" ;; esac
	printf '%s' "$s" | base64 -d 2>/dev/null
}
jwt_part() { b64url_json "$(printf '%s' "$1" | cut -d. -f"$2")"; }
bearer() { printf 'Authorization: Bearer %s' "$1"; }

# ---- unauthenticated endpoints and challenges
req GET /healthz
expect_status auth.healthz_open 200
req GET /metrics
expect_status auth.metrics_open 200

req GET /v2/
expect_status auth.base_401 401
expect_hdr auth.base_challenge WWW-Authenticate \
	"Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\""
expect_eq auth.base_error_code UNAUTHORIZED "$(errcode)"

req HEAD /v2/review/app/manifests/v1
expect_status auth.head_401 401
expect_hdr auth.head_challenge_scope WWW-Authenticate \
	"Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\",scope=\"repository:review/app:pull\""
req POST /v2/review/app/blobs/uploads/
expect_hdr auth.post_challenge_scope WWW-Authenticate \
	"Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\",scope=\"repository:review/app:pull,push\""
req DELETE /v2/review/app/manifests/v1
expect_hdr auth.delete_challenge_scope WWW-Authenticate \
	"Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\",scope=\"repository:review/app:delete\""
req GET /v2/_catalog
expect_hdr auth.catalog_challenge_scope WWW-Authenticate \
	"Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\",scope=\"registry:catalog:*\""

# ---- the token endpoint (GET)
tok_get() { # CRED QUERY -> status in TST, body in $T/tok
	local a=(-sS --max-time 30 -o "$T/tok" -w '%{http_code}')
	[ -n "$1" ] && a+=(-u "$1")
	TST=$(curl "${a[@]}" "$AUTH_REALM?$2")
}
tok_get ci:ci-secret "service=$AUTH_SERVICE&scope=repository:review/app:pull,push&account=ci&client_id=docker&offline_token=true"
expect_eq auth.token_get_200 200 "$TST"
CI_TOK=$(jq -r .token "$T/tok")
expect_eq auth.token_fields_equal "$CI_TOK" "$(jq -r .access_token "$T/tok")"
expect_eq auth.token_expires_in 300 "$(jq -r .expires_in "$T/tok")"
check auth.token_issued_at_rfc3339 grep -Eq '"issued_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z"' "$T/tok"
expect_eq auth.no_refresh_token null "$(jq -r .refresh_token "$T/tok")"
H=$(jwt_part "$CI_TOK" 1)
C=$(jwt_part "$CI_TOK" 2)
expect_eq auth.jwt_alg ES256 "$(printf '%s' "$H" | jq -r .alg)"
expect_eq auth.jwt_typ JWT "$(printf '%s' "$H" | jq -r .typ)"
KID=$(printf '%s' "$H" | jq -r .kid)
if [[ $KID =~ ^[A-Za-z0-9_-]{43}$ ]]; then ok auth.jwt_kid_thumbprint; else fail "auth.jwt_kid_thumbprint: '$KID'"; fi
expect_eq auth.jwt_iss "$AUTH_ISSUER" "$(printf '%s' "$C" | jq -r .iss)"
expect_eq auth.jwt_aud "$AUTH_SERVICE" "$(printf '%s' "$C" | jq -r '.aud | if type == "array" then .[0] else . end')"
expect_eq auth.jwt_sub ci "$(printf '%s' "$C" | jq -r .sub)"
expect_eq auth.jwt_access '[{"type":"repository","name":"review/app","actions":["pull","push"]}]' \
	"$(printf '%s' "$C" | jq -c .access)"
expect_eq auth.jwt_lifetime 300 "$(printf '%s' "$C" | jq -r '.exp - .iat')"
check auth.jwt_jti test -n "$(printf '%s' "$C" | jq -r '.jti // empty')"

tok_get ci:wrong "service=$AUTH_SERVICE&scope=repository:review/app:pull"
expect_eq auth.token_wrong_password_401 401 "$TST"
expect_eq auth.token_wrong_password_code UNAUTHORIZED "$(jq -r '.errors[0].code' "$T/tok")"
tok_get nobody:ci-secret "service=$AUTH_SERVICE"
expect_eq auth.token_unknown_user_401 401 "$TST"
tok_get old:old-secret "service=$AUTH_SERVICE&scope=repository:review/app:pull"
expect_eq auth.token_expired_user_401 401 "$TST"
tok_get ci:ci-secret "service=other-service&scope=repository:review/app:pull"
expect_eq auth.token_other_service_400 400 "$TST"

# several scopes in one request, a name with host:port, unknown actions
tok_get admin:admin-secret "service=$AUTH_SERVICE&scope=repository:review/a:pull&scope=repository:localhost:5000/x/y:push,frobnicate&scope=registry:catalog:*"
expect_eq auth.token_multi_scope "$(printf '%s' '[{"type":"repository","name":"review/a","actions":["pull"]},{"type":"repository","name":"localhost:5000/x/y","actions":["push"]},{"type":"registry","name":"catalog","actions":["*"]}]')" \
	"$(jwt_part "$(jq -r .token "$T/tok")" 2 | jq -c .access)"
# asking for more than allowed: the intersection; nothing allowed: an empty
# grant, still a valid token (docker login needs one)
tok_get ci:ci-secret "service=$AUTH_SERVICE&scope=repository:review/app:pull,push,delete&scope=repository:apps/web:pull,push"
expect_eq auth.token_intersection '[{"type":"repository","name":"review/app","actions":["pull","push"]}]' \
	"$(jwt_part "$(jq -r .token "$T/tok")" 2 | jq -c .access)"
tok_get ci:ci-secret "service=$AUTH_SERVICE"
expect_eq auth.token_login_empty_grant 200 "$TST"
LOGIN_TOK=$(jq -r .token "$T/tok")
expect_eq auth.token_login_empty_access '[]' "$(jwt_part "$LOGIN_TOK" 2 | jq -c .access)"
req GET /v2/ -H "$(bearer "$LOGIN_TOK")"
expect_status auth.base_with_empty_grant_200 200

# ---- the token endpoint (POST, containerd's OAuth2 password grant)
tok_post() { # FORM -> TST, $T/tok
	TST=$(curl -sS --max-time 30 -o "$T/tok" -w '%{http_code}' \
		-H 'Content-Type: application/x-www-form-urlencoded' --data "$1" "$AUTH_REALM")
}
tok_post "grant_type=password&username=ci&password=ci-secret&service=$AUTH_SERVICE&client_id=containerd-client&scope=repository%3Areview%2Fapp%3Apull+repository%3Areview%2Fother%3Apull%2Cpush"
expect_eq auth.post_200 200 "$TST"
POST_TOK=$(jq -r .access_token "$T/tok")
expect_eq auth.post_access '[{"type":"repository","name":"review/app","actions":["pull"]},{"type":"repository","name":"review/other","actions":["pull","push"]}]' \
	"$(jwt_part "$POST_TOK" 2 | jq -c .access)"
expect_eq auth.post_both_fields "$POST_TOK" "$(jq -r .token "$T/tok")"
tok_post "grant_type=password&username=ci&password=nope&service=$AUTH_SERVICE"
expect_eq auth.post_bad_password_401 401 "$TST"
tok_post "grant_type=refresh_token&refresh_token=abc&service=$AUTH_SERVICE&client_id=x"
expect_eq auth.post_refresh_400 400 "$TST"
expect_eq auth.post_refresh_error unsupported_grant_type "$(jq -r .error "$T/tok")"
tok_post "username=ci&password=ci-secret"
expect_eq auth.post_no_grant_400 400 "$TST"
tok_post "grant_type=password&username=ci"
expect_eq auth.post_no_password_400 400 "$TST"
# a password with reserved characters survives form encoding
# (ci-secret has none; this checks decoding of %XX and +)
tok_post "grant_type=password&username=%63i&password=ci%2Dsecret&service=$AUTH_SERVICE"
expect_eq auth.post_percent_decoding 200 "$TST"

# ---- what tokens allow
mkblob a.txt "auth layer $RANDOM"
A_D=$(dg "$T/a.txt")
TOK=$(auth_token ci:ci-secret repository:review/app:pull,push)
req POST "/v2/review/app/blobs/uploads/?digest=$A_D" -H "$(bearer "$TOK")" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/a.txt"
expect_status auth.ci_push_201 201
req HEAD "/v2/review/app/blobs/$A_D" -H "$(bearer "$TOK")"
expect_status auth.ci_head_200 200
req GET "/v2/review/app/blobs/$A_D" -H "$(bearer "$TOK")"
expect_body_file auth.ci_get_content "$T/a.txt"
req GET "/v2/review/app/blobs/$A_D" -H "$(bearer "$TOK")x"
expect_status auth.tampered_token_401 401
expect_hdr_re auth.tampered_token_error WWW-Authenticate 'error="invalid_token"'

# a token for review/app is refused on review/other (repo A on repo B)
req HEAD "/v2/review/other/blobs/$A_D" -H "$(bearer "$TOK")"
expect_status auth.token_other_repo_401 401
expect_hdr_re auth.token_other_repo_scope WWW-Authenticate \
	'scope="repository:review/other:pull",error="insufficient_scope"'

# the CI robot cannot push to apps/web nor read the catalog nor delete
TOK_WEB=$(auth_token ci:ci-secret repository:apps/web:pull,push)
req POST /v2/apps/web/blobs/uploads/ -H "$(bearer "$TOK_WEB")"
expect_status auth.ci_push_apps_web_401 401
expect_hdr_re auth.ci_push_apps_web_insufficient WWW-Authenticate 'error="insufficient_scope"'
TOK_CAT=$(auth_token ci:ci-secret 'registry:catalog:*')
req GET /v2/_catalog -H "$(bearer "$TOK_CAT")"
expect_status auth.ci_catalog_401 401
expect_hdr_re auth.ci_catalog_insufficient WWW-Authenticate 'error="insufficient_scope"'
TOK_DEL=$(auth_token ci:ci-secret repository:review/app:delete)
req DELETE "/v2/review/app/blobs/$A_D" -H "$(bearer "$TOK_DEL")"
expect_status auth.ci_delete_401 401
req HEAD "/v2/review/app/blobs/$A_D" -H "$(bearer "$TOK")"
expect_status auth.ci_delete_refused_blob_kept 200

# admin: catalog, push anywhere
ADM=$(auth_token admin:admin-secret 'registry:catalog:*' repository:apps/web:pull,push,delete \
	repository:public/base:pull,push)
req GET /v2/_catalog -H "$(bearer "$ADM")"
expect_status auth.admin_catalog_200 200
req POST "/v2/apps/web/blobs/uploads/?digest=$A_D" -H "$(bearer "$ADM")" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/a.txt"
expect_status auth.admin_push_apps_web 201

# mounts: allowed from a repository the token may pull from, else a
# plain upload (202) that tells nothing about the blob
TOK_MNT=$(auth_token ci:ci-secret repository:review/mnt:pull,push repository:review/app:pull)
req POST "/v2/review/mnt/blobs/uploads/?mount=$A_D&from=review/app" -H "$(bearer "$TOK_MNT")"
expect_status auth.mount_from_pullable_201 201
req POST "/v2/review/mnt2/blobs/uploads/?mount=$A_D&from=apps/web" \
	-H "$(bearer "$(auth_token ci:ci-secret repository:review/mnt2:pull,push repository:apps/web:pull)")"
expect_status auth.mount_from_unpullable_202 202
req POST "/v2/review/mnt3/blobs/uploads/?mount=$A_D" \
	-H "$(bearer "$(auth_token ci:ci-secret repository:review/mnt3:pull,push)")"
expect_status auth.mount_without_from_202 202
req HEAD "/v2/review/mnt2/blobs/$A_D" \
	-H "$(bearer "$(auth_token ci:ci-secret repository:review/mnt2:pull)")"
expect_status auth.mount_refused_not_linked 404

# anonymous: pull where an anonymous rule allows, nothing else
printf '{"architecture":"amd64","os":"linux"}' >"$T/pc.json"
req POST "/v2/public/base/blobs/uploads/?digest=$(dg "$T/pc.json")" -H "$(bearer "$ADM")" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/pc.json"
expect_status auth.admin_push_public 201
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[]}' \
	"$OCI_MANIFEST" "$OCI_CONFIG" "$(dg "$T/pc.json")" "$(sz "$T/pc.json")" >"$T/pm.json"
req PUT /v2/public/base/manifests/v1 -H "$(bearer "$ADM")" -H "Content-Type: $OCI_MANIFEST" \
	--data-binary "@$T/pm.json"
expect_status auth.admin_manifest_public 201
ANON=$(auth_token "" repository:public/base:pull repository:review/app:pull)
expect_eq auth.anon_grant '[{"type":"repository","name":"public/base","actions":["pull"]}]' \
	"$(jwt_part "$ANON" 2 | jq -c .access)"
expect_eq auth.anon_sub "" "$(jwt_part "$ANON" 2 | jq -r .sub)"
req GET /v2/public/base/manifests/v1 -H "$(bearer "$ANON")"
expect_status auth.anon_pull_public_200 200
expect_body_file auth.anon_pull_public_body "$T/pm.json"
req GET "/v2/review/app/blobs/$A_D" -H "$(bearer "$ANON")"
expect_status auth.anon_pull_review_401 401
ANON_PUSH=$(auth_token "" repository:public/base:pull,push)
req POST /v2/public/base/blobs/uploads/ -H "$(bearer "$ANON_PUSH")"
expect_status auth.anon_push_public_401 401
# a signed-in user also gets the anonymous rules
KT=$(auth_token kubelet:kube-secret repository:public/base:pull)
req HEAD /v2/public/base/manifests/v1 -H "$(bearer "$KT")"
expect_status auth.user_gets_anonymous_rules 200

# ---- tokens the registry did not issue, or no longer accepts
EXPIRED=$("$BERTH_BIN" auth token --auth "$AUTH_FILE" --user admin \
	--scope repository:public/base:pull --at $(($(date +%s) - 1000)))
req HEAD /v2/public/base/manifests/v1 -H "$(bearer "$EXPIRED")"
expect_status auth.expired_token_401 401
expect_hdr_re auth.expired_token_invalid WWW-Authenticate 'error="invalid_token"'
FRESH=$("$BERTH_BIN" auth token --auth "$AUTH_FILE" --user admin --scope repository:public/base:pull)
req HEAD /v2/public/base/manifests/v1 -H "$(bearer "$FRESH")"
expect_status auth.cli_token_200 200
FUTURE=$("$BERTH_BIN" auth token --auth "$AUTH_FILE" --user admin \
	--scope repository:public/base:pull --at $(($(date +%s) + 1000)))
req HEAD /v2/public/base/manifests/v1 -H "$(bearer "$FUTURE")"
expect_status auth.not_yet_valid_token_401 401
# the same claims signed by a key berth does not trust
"$BERTH_BIN" auth keygen --out "$AUTH_DIR/other.pem"
auth_write_users "$AUTH_DIR/other.json" other.pem
ROGUE=$("$BERTH_BIN" auth token --auth "$AUTH_DIR/other.json" --user admin \
	--scope repository:public/base:pull)
req HEAD /v2/public/base/manifests/v1 -H "$(bearer "$ROGUE")"
expect_status auth.untrusted_key_401 401
# alg "none": the claims of a good token without a signature
NONE_H=$(printf '{"typ":"JWT","alg":"none"}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
NONE_TOK="$NONE_H.$(printf '%s' "$FRESH" | cut -d. -f2)."
req HEAD /v2/public/base/manifests/v1 -H "$(bearer "$NONE_TOK")"
expect_status auth.alg_none_401 401

# key rotation: a token signed by the old key still verifies once that key
# is listed in previous_keys; berth now signs with the new one
stop_berth
"$BERTH_BIN" auth keygen --out "$AUTH_DIR/new.pem"
auth_write_users "$AUTH_FILE" new.pem key.pem
if start_berth --auth "$AUTH_FILE"; then
	req HEAD /v2/public/base/manifests/v1 -H "$(bearer "$FRESH")"
	expect_status auth.rotation_old_key_accepted 200
	NEW=$(auth_token admin:admin-secret repository:public/base:pull)
	check auth.rotation_new_kid test "$(jwt_part "$NEW" 1 | jq -r .kid)" != "$(jwt_part "$FRESH" 1 | jq -r .kid)"
	req HEAD /v2/public/base/manifests/v1 -H "$(bearer "$NEW")"
	expect_status auth.rotation_new_key_200 200
else
	fail "auth.rotation_restart"
fi

# ---- a malformed users file is refused at start, with where and why
printf '{\n  "service": "x",\n  "issuer": "y",\n  "realm": "/relative",\n' >"$AUTH_DIR/bad.json"
if "$BERTH_BIN" auth check "$AUTH_DIR/bad.json" 2>"$T/bad.err"; then
	fail "auth.bad_file_refused: accepted"
else
	check auth.bad_file_line grep -q 'bad.json:[0-9]' "$T/bad.err"
fi
sed 's#"realm": "[^"]*"#"realm": "/auth/token"#' "$AUTH_FILE" >"$AUTH_DIR/rel.json"
p=$(free_port)
timeout 10 "$BERTH_BIN" serve --listen "127.0.0.1:$p" --data "$T/data2" --auth "$AUTH_DIR/rel.json" \
	>"$T/rel.out" 2>&1
expect_eq auth.relative_realm_exit_2 2 "$?"
check auth.relative_realm_reason grep -q realm "$T/rel.out"

# ---- the CLI's refusals
if "$BERTH_BIN" auth keygen --out "$AUTH_DIR/key.pem" 2>/dev/null; then
	fail "auth.cli_keygen_no_overwrite"
else
	ok auth.cli_keygen_no_overwrite
fi
expect_eq auth.cli_keygen_mode 600 "$(stat -c %a "$AUTH_DIR/key.pem")"
H1=$(auth_hash same-password)
H2=$(auth_hash same-password)
if [[ $H1 =~ ^\$pbkdf2-sha256\$i=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$ ]] && [ "$H1" != "$H2" ]; then
	ok auth.cli_hash_format_and_salt
else
	fail "auth.cli_hash_format_and_salt: '$H1' '$H2'"
fi
"$BERTH_BIN" auth hash </dev/null >/dev/null 2>&1
expect_eq auth.cli_hash_empty_exit_2 2 "$?"
"$BERTH_BIN" auth token --auth "$AUTH_FILE" --user nobody --scope repository:a:pull >/dev/null 2>&1
expect_eq auth.cli_token_unknown_user_exit_1 1 "$?"
"$BERTH_BIN" auth token --auth "$AUTH_FILE" --user old --scope repository:a:pull >/dev/null 2>&1
expect_eq auth.cli_token_expired_user_exit_1 1 "$?"
"$BERTH_BIN" auth token --auth "$AUTH_FILE" --user ci --scope 'not a scope' >/dev/null 2>&1
expect_eq auth.cli_token_bad_scope_exit_2 2 "$?"

# ---- no secret in the log
leak=
for s in ci-secret admin-secret kube-secret old-secret "$CI_TOK" "$POST_TOK" "Bearer ey"; do
	grep -qF -- "$s" "$T/berth.log" && leak="${s:0:12}..."
done
if [ -z "$leak" ]; then ok auth.no_secret_in_log; else fail "auth.no_secret_in_log: found $leak"; fi

FINISH_ARGS=(-H "$(bearer "$LOGIN_TOK")")
finish
