#!/usr/bin/env bash
# docker (CI's path) against berth with token auth (auth_lib.sh's users),
# through a private dockerd (vfs) and a private client config dir:
# login, push, rmi + pull (image ID and file content), a push outside the
# user's rules refused and leaving nothing behind, logout, a pull-only
# user, wrong and expired passwords. Passwords and tokens never reach the
# output, and berth's log must hold none of them.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh
. tests/integration/auth_lib.sh

if [ "$REGISTRY_UNDER_TEST" != berth ]; then
	echo "# token auth is berth's: nothing to run against $REGISTRY_UNDER_TEST"
	exit 0
fi

# d ARGS...: the docker client, bounded, output kept in a log.
d() {
	echo "+ docker $*" >>"$T/docker.log"
	timeout 120 "$DOCKER" "$@" >"$T/last.out" 2>&1
	local rc=$?
	cat "$T/last.out" >>"$T/docker.log"
	return $rc
}
# dlogin USER PASSWORD: docker login with the password on stdin.
dlogin() {
	echo "+ docker login $REG -u $1 --password-stdin" >>"$T/docker.log"
	printf '%s\n' "$2" | timeout 60 "$DOCKER" login "$REG" -u "$1" --password-stdin \
		>"$T/last.out" 2>&1
	local rc=$?
	cat "$T/last.out" >>"$T/docker.log"
	return $rc
}
why() { echo "$1 (docker: $(tail_msg "$T/last.out" 2))"; }
push_digest() { sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\) size.*/\1/p' "$T/last.out" | tail -n 1; }
image_id() { timeout 30 "$DOCKER" image inspect -f '{{.Id}}' "$1" 2>/dev/null; }
# container_file IMAGE PATH: PATH's content through docker create + export.
container_file() {
	local c out
	c=$(timeout 30 "$DOCKER" create "$1" 2>>"$T/docker.log") || return 1
	out=$(timeout 60 "$DOCKER" export "$c" 2>>"$T/docker.log" | tar -xO "$2" 2>/dev/null)
	timeout 30 "$DOCKER" rm -f "$c" >/dev/null 2>&1
	printf '%s' "$out"
}
# refused: the last client output says why access was refused.
refused() { grep -qiE 'denied|unauthorized|insufficient_scope' "$T/last.out"; }
# has_login: the private client config holds credentials for $REG.
has_login() { jq -e --arg r "$REG" '.auths[$r].auth // empty' "$DOCKER_CONFIG/config.json" >/dev/null 2>&1; }

# tcurl USER:PASS SCOPE CURL_ARGS...: curl with a bearer token for SCOPE
# (the header goes through a file, never on a command line or the output).
tcurl() {
	local tok
	tok=$(auth_token "$1" "$2" 2>/dev/null)
	shift 2
	printf 'Authorization: Bearer %s\n' "$tok" >"$T/bearer.hdr"
	$CURL -H @"$T/bearer.hdr" "$@"
	local rc=$?
	rm -f "$T/bearer.hdr"
	return $rc
}
ADMIN=admin:admin-secret
# adm_digest REPO REF: Docker-Content-Digest of HEAD, with admin's token.
adm_digest() {
	tcurl "$ADMIN" "repository:$1:pull" -I -H "Accept: $MANIFEST_ACCEPT" \
		"$URL/v2/$1/manifests/$2" 2>/dev/null |
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}
# adm_code REPO PATH: status of GET PATH with admin's pull token for REPO.
adm_code() {
	tcurl "$ADMIN" "repository:$1:pull" -o /dev/null -w '%{http_code}' \
		-H "Accept: $MANIFEST_ACCEPT" "$URL$2" 2>/dev/null
}

# Keys, users file and berth, on a port the realm names (a new port and
# new keys when another process took the port before berth bound it).
started=
for _ in 1 2 3; do
	rm -rf "$T/auth"
	if auth_setup && start_berth --auth "$AUTH_FILE"; then started=1; break; fi
	kill -0 "$BERTH_PID" 2>/dev/null && break
	BERTH_PID=
done
if [ -z "$started" ]; then
	fail "dauth.registry_start: berth --auth did not answer: $(tail_msg "$T/berth.log")"
	exit 1
fi

# Without a token: 401 and a challenge naming the realm and the scope.
hdr=$($CURL -o /dev/null -D - -H "Accept: $MANIFEST_ACCEPT" "$URL/v2/review/app/manifests/v1" 2>/dev/null | tr -d '\r')
expect_eq dauth.anonymous_challenge \
	"401 Bearer realm=\"$AUTH_REALM\",service=\"$AUTH_SERVICE\",scope=\"repository:review/app:pull\"" \
	"$(printf '%s\n' "$hdr" | awk 'NR == 1 { print $2 }') $(printf '%s\n' "$hdr" |
		sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: //p')"

L=$T/layout
make_oci_image "$L" app "hello from docker auth" || { fail "dauth.build_image"; exit 1; }
CFG=$IMG_CONFIG_DIGEST
if ! timeout 120 skopeo --policy "$POLICY" copy "oci:$L:app" "docker-archive:$T/app.tar:ci/app:v1" \
	>>"$T/skopeo.log" 2>&1; then
	fail "dauth.build_archive: $(tail_msg "$T/skopeo.log")"
	exit 1
fi
if ! start_dockerd; then
	fail "dauth.dockerd_start: $(grep -E 'level=(fatal|error)' "$T/dockerd.log" | tail -n 1 | tail -c 400)"
	exit 1
fi
if ! d load -i "$T/app.tar"; then
	fail "dauth.load: $(why 'docker load failed')"
	exit 1
fi
IMG=$REG/review/app:v1
d tag ci/app:v1 "$IMG"

# 1. Wrong password and an expired user: login refused, nothing stored.
if dlogin ci wrong-password; then
	fail "dauth.login_wrong_password: docker login succeeded"
else
	expect_eq dauth.login_wrong_password "refused, not stored" \
		"$(refused && echo refused || tail_msg "$T/last.out"), $(has_login && echo stored || echo 'not stored')"
fi
if dlogin old old-secret; then
	fail "dauth.login_expired_user: docker login succeeded for an expired user"
else
	ok dauth.login_expired_user
fi

# 2. docker login as ci: credentials land in the private config dir only.
if dlogin ci ci-secret; then
	check dauth.login_stored has_login
	if grep -qsF "$REG" "$HOME/.docker/config.json" 2>/dev/null; then
		fail "dauth.login_private_config: $HOME/.docker/config.json names $REG"
	else
		ok dauth.login_private_config
	fi
else
	fail "dauth.login: $(why 'docker login as ci failed')"
fi

# 3. Push where ci may: the registry (read with admin's token) agrees.
P=
if d push "$IMG"; then
	P=$(push_digest)
	expect_eq dauth.push_digest "$P" "$(adm_digest review/app v1)"
	n=0 want=0
	for b in $(tcurl "$ADMIN" repository:review/app:pull -H "Accept: $MANIFEST_ACCEPT" \
		"$URL/v2/review/app/manifests/v1" | jq -r '.config.digest, .layers[].digest' 2>/dev/null); do
		want=$((want + 1))
		got=$(tcurl ci:ci-secret repository:review/app:pull -L "$URL/v2/review/app/blobs/$b" |
			sha256sum | cut -d' ' -f1)
		[ "sha256:$got" = "$b" ] && n=$((n + 1))
	done
	expect_eq dauth.push_blobs_content "3/3" "$n/$want"
else
	fail "dauth.push: $(why 'docker push as ci failed')"
fi

# 4. rmi, pull back: same image ID, same file.
d rmi "$IMG" ci/app:v1
if [ -n "$(image_id "$IMG")" ]; then fail "dauth.rmi: image still present"; fi
if d pull "$IMG"; then
	expect_eq dauth.pull_digest "Digest: $P" "$(grep -o 'Digest: sha256:[0-9a-f]*' "$T/last.out")"
	expect_eq dauth.pull_image_id "$CFG" "$(image_id "$IMG")"
	expect_eq dauth.pull_file "hello from docker auth" "$(container_file "$IMG" hello.txt)"
else
	fail "dauth.pull: $(why 'docker pull as ci failed')"
fi

# 5. Push outside ci's rules (apps/**): refused, nothing in apps/web.
d tag "$IMG" "$REG/apps/web:v1"
if d push "$REG/apps/web:v1"; then
	fail "dauth.push_denied: docker push to apps/web as ci succeeded"
else
	check dauth.push_denied_message refused
fi
expect_eq dauth.push_denied_nothing_stored "404 404" \
	"$(adm_code apps/web /v2/apps/web/manifests/v1) $(adm_code apps/web /v2/apps/web/tags/list)"
d rmi "$REG/apps/web:v1"

# 6. logout: the credentials are gone and a pull of review/ is refused.
if d logout "$REG"; then
	if has_login; then fail "dauth.logout: credentials still stored"; else ok dauth.logout; fi
else
	fail "dauth.logout: $(why 'docker logout failed')"
fi
d rmi "$IMG"
if d pull "$IMG"; then
	fail "dauth.pull_after_logout: anonymous pull of review/app succeeded"
else
	check dauth.pull_after_logout_refused refused
fi

# 7. kubelet (pull-only): pull works, push is refused and stores nothing.
if dlogin kubelet kube-secret; then
	if d pull "$IMG"; then
		expect_eq dauth.kubelet_pull_image_id "$CFG" "$(image_id "$IMG")"
		expect_eq dauth.kubelet_pull_file "hello from docker auth" "$(container_file "$IMG" hello.txt)"
	else
		fail "dauth.kubelet_pull: $(why 'docker pull as kubelet failed')"
	fi
	d tag "$IMG" "$REG/review/app:kube"
	if d push "$REG/review/app:kube"; then
		fail "dauth.kubelet_push_denied: docker push as kubelet succeeded"
	else
		check dauth.kubelet_push_denied_message refused
	fi
	expect_eq dauth.kubelet_push_nothing_stored 404 \
		"$(adm_code review/app /v2/review/app/manifests/kube)"
	d logout "$REG"
else
	fail "dauth.kubelet_login: $(why 'docker login as kubelet failed')"
fi

# Stop berth (its shutdown lines count for the checks below) and look for
# sanitizer reports (ASan/UBSan builds).
stop_berth
src=$?
if grep -q 'Sanitizer\|runtime error:' "$T/berth.log" 2>/dev/null; then
	fail "dauth.no_sanitizer_report: $(grep -m3 'Sanitizer\|runtime error:\|#[0-3] ' "$T/berth.log" | tr '\n' ';' | tail -c 400)"
else
	expect_eq dauth.clean_exit 0 "$src"
fi

# 8. berth's log: the refused sign-ins are there, no password or token is.
check dauth.log_sign_in_refused grep -q '"msg":"sign-in refused"' "$T/berth.log"
leaks=
for s in ci-secret admin-secret kube-secret old-secret wrong-password "Bearer ey"; do
	grep -qF -- "$s" "$T/berth.log" && leaks="$leaks[$s]"
done
expect_eq dauth.log_no_secrets "" "${leaks:+a password or token is in berth.log}"
exit 0
