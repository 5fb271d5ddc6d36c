# Token-auth fixture for integration tests (source after lib.sh): keys,
# password hashes and a users file made with berth's own CLI, and berth
# started with --auth on a port chosen beforehand (the realm names it).
#
# Users (name / password / rules):
#   ci      ci-secret      review/** pull,push             (a CI robot)
#   admin   admin-secret   ** pull,push,delete + catalog
#   kubelet kube-secret    review/** and apps/** pull      (imagePullSecret)
#   old     old-secret     ** pull, expired in 2020
# Anonymous: public/** pull.
# Sets AUTH_DIR, AUTH_FILE, AUTH_SERVICE, AUTH_ISSUER, AUTH_REALM.

AUTH_SERVICE=berth-test
AUTH_ISSUER=berth-test-issuer

# auth_hash PASSWORD: the users-file hash of PASSWORD.
auth_hash() { printf '%s\n' "$1" | "$BERTH_BIN" auth hash; }

# auth_write_users FILE KEY [PREVIOUS_KEY]: the users file, realm on $PORT.
auth_write_users() {
	local prev=""
	[ -n "${3:-}" ] && prev="\"previous_keys\": [\"$3\"],"
	cat >"$1" <<EOF
{
  "service": "$AUTH_SERVICE",
  "issuer": "$AUTH_ISSUER",
  "realm": "$AUTH_REALM",
  "token_ttl": 300,
  "signing_key": "$2",
  $prev
  "users": [
    {"name": "ci", "password_hash": "$H_CI",
     "rules": [{"repositories": ["review/**"], "actions": ["pull", "push"]}]},
    {"name": "admin", "password_hash": "$H_ADMIN",
     "rules": [{"repositories": ["**"], "actions": ["*"]}, {"catalog": true}]},
    {"name": "kubelet", "password_hash": "$H_KUBE",
     "rules": [{"repositories": ["review/**", "apps/**"], "actions": ["pull"]}]},
    {"name": "old", "password_hash": "$H_OLD", "expires": "2020-01-01T00:00:00Z",
     "rules": [{"repositories": ["**"], "actions": ["pull"]}]}
  ],
  "anonymous": [{"repositories": ["public/**"], "actions": ["pull"]}]
}
EOF
}

# auth_setup: keys and users file under $T/auth; picks PORT (kept by
# start_berth through BERTH_PORT) so the realm can name it.
auth_setup() {
	AUTH_DIR=$T/auth
	mkdir -p "$AUTH_DIR"
	PORT=$(free_port)
	export BERTH_PORT=$PORT
	AUTH_REALM=http://127.0.0.1:$PORT/auth/token
	"$BERTH_BIN" auth keygen --out "$AUTH_DIR/key.pem" || return 1
	H_CI=$(auth_hash ci-secret) && H_ADMIN=$(auth_hash admin-secret) &&
		H_KUBE=$(auth_hash kube-secret) && H_OLD=$(auth_hash old-secret) || return 1
	AUTH_FILE=$AUTH_DIR/users.json
	auth_write_users "$AUTH_FILE" key.pem
}

# auth_token USER:PASS SCOPE...: a token from berth's token endpoint (GET,
# Basic), or empty. USER:PASS empty: anonymous.
auth_token() {
	local cred=$1 q="service=$AUTH_SERVICE" s
	shift
	for s in "$@"; do q="$q&scope=$(printf '%s' "$s" | jq -sRr @uri)"; done
	if [ -n "$cred" ]; then
		curl -sS -u "$cred" "$AUTH_REALM?$q" | jq -r '.token // empty'
	else
		curl -sS "$AUTH_REALM?$q" | jq -r '.token // empty'
	fi
}
