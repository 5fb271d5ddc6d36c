#!/usr/bin/env bash
# skopeo, podman, buildah and containerd's ctr against berth with token auth
# (auth_lib.sh's users): credentials on the command line, a private podman
# auth file, anonymous pulls of public/, refusals outside a user's rules and
# for wrong passwords, and containerd's OAuth password grant (POST to the
# token endpoint). Passwords and tokens never reach the output or the logs
# kept here, and berth's log must hold none of them.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh
. tests/integration/auth_lib.sh

if [ "$REGISTRY_UNDER_TEST" != berth ]; then
	echo "# token auth is berth's: nothing to run against $REGISTRY_UNDER_TEST"
	exit 0
fi

export CONTAINERD_SNAPSHOTTER=native
export BUILDAH_ISOLATION=chroot
PSTORE=(--root "$T/ps" --runroot "$T/psr" --storage-driver vfs)
BSTORE=(--root "$T/bs" --runroot "$T/bsr" --storage-driver vfs)
PAUTH=$T/podman-auth.json
SP=(--signature-policy "$POLICY")
NV=(--tls-verify=false)

# masked ARGS...: the command line with every credential argument hidden.
masked() {
	local a prev= out=
	for a in "$@"; do
		case $prev:$a in
		--creds:*:* | --src-creds:*:* | --dest-creds:*:* | --user:*:* | -u:*:*) a="${a%%:*}:***" ;;
		esac
		case $a in --creds=* | --src-creds=* | --dest-creds=* | --user=* | -u=*) a="${a%%:*}:***" ;; esac
		out="$out $a"
		prev=$a
	done
	printf '%s' "$out"
}
# run ARGS...: bounded, output in $T/last.out (stdout+stderr) and the log.
run() {
	local rc t0=$SECONDS
	echo "+$(masked "$@")" >>"$T/clients.log"
	timeout 120 "$@" >"$T/last.out" 2>&1
	rc=$?
	cat "$T/last.out" >>"$T/clients.log"
	echo "= rc $rc in $((SECONDS - t0)) s" >>"$T/clients.log"
	return $rc
}
# run_pw PASSWORD ARGS...: run with PASSWORD on stdin.
run_pw() {
	local pw=$1 rc t0=$SECONDS
	shift
	echo "+$(masked "$@") <password" >>"$T/clients.log"
	printf '%s\n' "$pw" | timeout 60 "$@" >"$T/last.out" 2>&1
	rc=$?
	cat "$T/last.out" >>"$T/clients.log"
	echo "= rc $rc in $((SECONDS - t0)) s" >>"$T/clients.log"
	return $rc
}
why() { echo "$1 ($(tail_msg "$T/last.out"))"; }
refused() { grep -qiE 'denied|unauthori[sz]ed|insufficient_scope|invalid username|\b(401|403)\b' "$T/last.out"; }
sk() { run skopeo --policy "$POLICY" copy "$@"; }
pd() { run podman "${PSTORE[@]}" "$@"; }
bd() { run buildah "${BSTORE[@]}" "$@"; }
c() { run ctr -a "$CTD_SOCK" -n berth-test "$@"; }
cq() { timeout 60 ctr -a "$CTD_SOCK" -n berth-test "$@" 2>>"$T/clients.log"; }

# tcurl USER:PASS SCOPE CURL_ARGS...: curl with a bearer token for SCOPE
# (the header goes through a file, never on a command line or the output).
tcurl() {
	local tok rc
	tok=$(auth_token "$1" "$2" 2>/dev/null)
	shift 2
	printf 'Authorization: Bearer %s\n' "$tok" >"$T/bearer.hdr"
	$CURL -H @"$T/bearer.hdr" "$@"
	rc=$?
	rm -f "$T/bearer.hdr"
	return $rc
}
ADMIN=admin:admin-secret
# adm_digest REPO REF: Docker-Content-Digest of HEAD, with admin's token
# (empty when the manifest is not there).
adm_digest() {
	tcurl "$ADMIN" "repository:$1:pull" -I -H "Accept: $MANIFEST_ACCEPT" \
		"$URL/v2/$1/manifests/$2" 2>/dev/null |
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}
adm_code() {
	tcurl "$ADMIN" "repository:$1:pull" -o /dev/null -w '%{http_code}' -I \
		-H "Accept: $MANIFEST_ACCEPT" "$URL/v2/$1/manifests/$2" 2>/dev/null
}

started=
for _ in 1 2 3; do
	rm -rf "$T/auth"
	if auth_setup && start_berth --auth "$AUTH_FILE"; then started=1; break; fi
	kill -0 "$BERTH_PID" 2>/dev/null && break
	BERTH_PID=
done
if [ -z "$started" ]; then
	fail "tauth.registry_start: berth --auth did not answer: $(tail_msg "$T/berth.log")"
	exit 1
fi

L=$T/layout B=$T/back
make_oci_image "$L" app "hello from auth tools" || { fail "tauth.build_image"; exit 1; }
APP=$IMG_MANIFEST_DIGEST APP_TOP=${IMG_LAYERS##* }
make_oci_image "$L" pub "hello from public" || { fail "tauth.build_public"; exit 1; }
PUB=$IMG_MANIFEST_DIGEST

# ---------------------------------------------------------------- skopeo

# 1. ci pushes, kubelet pulls back: same digest, same file.
if sk --dest-tls-verify=false --dest-creds ci:ci-secret "oci:$L:app" "docker://$REG/review/sk:v1"; then
	expect_eq skopeo_auth.push_digest "$APP" "$(adm_digest review/sk v1)"
else
	fail "skopeo_auth.push: $(why 'copy as ci failed')"
fi
if sk --src-tls-verify=false --src-creds kubelet:kube-secret "docker://$REG/review/sk:v1" "oci:$B:v1"; then
	expect_eq skopeo_auth.pull_digest "$APP" "$(oci_ref_digest "$B" v1)"
	expect_eq skopeo_auth.pull_file "hello from auth tools" "$(oci_layout_file "$B" v1 hello.txt)"
else
	fail "skopeo_auth.pull: $(why 'copy back as kubelet failed')"
fi

# 2. Wrong password, and a push outside the user's rules: refused.
if sk --dest-tls-verify=false --dest-creds ci:wrong-password "oci:$L:app" "docker://$REG/review/sk:bad"; then
	fail "skopeo_auth.wrong_password: copy succeeded"
else
	expect_eq skopeo_auth.wrong_password "refused 404" \
		"$(refused && echo refused || tail_msg "$T/last.out") $(adm_code review/sk bad)"
fi
if sk --src-tls-verify=false --src-creds kubelet:wrong-password "docker://$REG/review/sk:v1" "oci:$B:bad"; then
	fail "skopeo_auth.wrong_password_pull: copy succeeded"
else
	check skopeo_auth.wrong_password_pull refused
fi
if sk --dest-tls-verify=false --dest-creds kubelet:kube-secret "oci:$L:app" "docker://$REG/review/sk:kube"; then
	fail "skopeo_auth.kubelet_push_denied: copy succeeded"
else
	expect_eq skopeo_auth.kubelet_push_denied "refused 404" \
		"$(refused && echo refused || tail_msg "$T/last.out") $(adm_code review/sk kube)"
fi

# 3. Anonymous: public/ (pushed by admin) can be pulled, review/ cannot.
if sk --dest-tls-verify=false --dest-creds "$ADMIN" "oci:$L:pub" "docker://$REG/public/base:v1"; then
	if sk --src-tls-verify=false --src-no-creds "docker://$REG/public/base:v1" "oci:$B:pub"; then
		expect_eq skopeo_auth.anonymous_public_digest "$PUB" "$(oci_ref_digest "$B" pub)"
		expect_eq skopeo_auth.anonymous_public_file "hello from public" "$(oci_layout_file "$B" pub hello.txt)"
	else
		fail "skopeo_auth.anonymous_public: $(why 'anonymous copy from public/ failed')"
	fi
else
	fail "skopeo_auth.admin_push_public: $(why 'copy as admin failed')"
fi
if sk --src-tls-verify=false --src-no-creds "docker://$REG/review/sk:v1" "oci:$B:anon"; then
	fail "skopeo_auth.anonymous_review_denied: anonymous copy from review/ succeeded"
else
	check skopeo_auth.anonymous_review_denied refused
fi
if sk --dest-tls-verify=false --dest-no-creds "oci:$L:pub" "docker://$REG/public/anon:v1"; then
	fail "skopeo_auth.anonymous_push_denied: anonymous push to public/ succeeded"
else
	expect_eq skopeo_auth.anonymous_push_denied "refused 404" \
		"$(refused && echo refused || tail_msg "$T/last.out") $(adm_code public/anon v1)"
fi

# ---------------------------------------------------------------- podman

# 4. podman login into a private auth file; wrong password refused.
printf '{"auths":{}}\n' >"$PAUTH"
pauth_has() { jq -e --arg r "$REG" '.auths[$r].auth // empty' "$PAUTH" >/dev/null 2>&1; }
if run_pw wrong-password podman "${PSTORE[@]}" login "${NV[@]}" --authfile "$PAUTH" \
	-u ci --password-stdin "$REG"; then
	fail "podman_auth.login_wrong_password: login succeeded"
else
	expect_eq podman_auth.login_wrong_password "refused, not stored" \
		"$(refused && echo refused || tail_msg "$T/last.out"), $(pauth_has && echo stored || echo 'not stored')"
fi
PA=(--authfile "$PAUTH")
if run_pw ci-secret podman "${PSTORE[@]}" login "${NV[@]}" "${PA[@]}" -u ci --password-stdin "$REG"; then
	check podman_auth.login_stored pauth_has
else
	fail "podman_auth.login: $(why 'podman login as ci failed')"
fi

# 5. pull (pushed by skopeo), push elsewhere, rmi, pull back.
pd_file() {
	local m
	pd image mount "$1" || return 1
	m=$(tail -n 1 "$T/last.out")
	cat "$m/$2" 2>/dev/null
	pd image unmount "$1" >/dev/null
}
if pd pull "${SP[@]}" "${NV[@]}" "${PA[@]}" "$REG/review/sk:v1"; then
	expect_eq podman_auth.pull_digest "$APP" \
		"$(podman "${PSTORE[@]}" inspect -f '{{.Digest}}' "$REG/review/sk:v1" 2>/dev/null)"
	expect_eq podman_auth.pull_file "hello from auth tools" "$(pd_file "$REG/review/sk:v1" hello.txt)"
else
	fail "podman_auth.pull: $(why 'podman pull as ci failed')"
fi
if pd push "${SP[@]}" "${NV[@]}" "${PA[@]}" --digestfile "$T/pd.dig" "$REG/review/sk:v1" \
	"docker://$REG/review/pd:v1"; then
	expect_eq podman_auth.push_digest "$(cat "$T/pd.dig")" "$(adm_digest review/pd v1)"
	pd rmi -f "$REG/review/sk:v1"
	if pd pull "${SP[@]}" "${NV[@]}" "${PA[@]}" "$REG/review/pd:v1"; then
		expect_eq podman_auth.repull_file "hello from auth tools" "$(pd_file "$REG/review/pd:v1" hello.txt)"
	else
		fail "podman_auth.repull: $(why 'podman pull of the pushed image failed')"
	fi
else
	fail "podman_auth.push: $(why 'podman push as ci failed')"
fi
if pd push "${SP[@]}" "${NV[@]}" "${PA[@]}" "$REG/review/pd:v1" "docker://$REG/apps/pd:v1"; then
	fail "podman_auth.push_denied: push to apps/ as ci succeeded"
else
	expect_eq podman_auth.push_denied "refused 404" \
		"$(refused && echo refused || tail_msg "$T/last.out") $(adm_code apps/pd v1)"
fi

# 6. logout: credentials gone, pull refused.
if pd logout "${PA[@]}" "$REG"; then
	if pauth_has; then fail "podman_auth.logout: credentials still stored"; else ok podman_auth.logout; fi
else
	fail "podman_auth.logout: $(why 'podman logout failed')"
fi
pd rmi -f "$REG/review/pd:v1"
if pd pull "${SP[@]}" "${NV[@]}" "${PA[@]}" "$REG/review/pd:v1"; then
	fail "podman_auth.pull_after_logout: pull succeeded"
else
	check podman_auth.pull_after_logout_refused refused
fi

# 7. buildah: FROM scratch, push with --creds (ci may, kubelet may not).
printf 'hello from buildah auth\n' >"$T/hello.txt"
if bd from "${SP[@]}" --name bw scratch && bd copy bw "$T/hello.txt" /hello.txt &&
	bd commit "${SP[@]}" bw bd/img:v1; then
	if bd push "${SP[@]}" "${NV[@]}" --creds ci:ci-secret --digestfile "$T/bd.dig" bd/img:v1 \
		"docker://$REG/review/bd:v1"; then
		expect_eq buildah_auth.push_digest "$(cat "$T/bd.dig")" "$(adm_digest review/bd v1)"
	else
		fail "buildah_auth.push: $(why 'buildah push --creds ci failed')"
	fi
	if bd push "${SP[@]}" "${NV[@]}" --creds kubelet:kube-secret bd/img:v1 "docker://$REG/review/bd:kube"; then
		fail "buildah_auth.kubelet_push_denied: push succeeded"
	else
		expect_eq buildah_auth.kubelet_push_denied "refused 404" \
			"$(refused && echo refused || tail_msg "$T/last.out") $(adm_code review/bd kube)"
	fi
else
	fail "buildah_auth.build: $(why 'buildah from/copy/commit failed')"
fi

# ---------------------------------------------------------------- ctr

if ! start_containerd; then
	fail "ctr_auth.containerd_start: $(grep -E 'level=(fatal|error)' "$T/ctd/containerd.log" | tail -n 1 | tail -c 400)"
	exit 1
fi
image_digest() { cq images ls | awk -v r="$1" '$1 == r { print $3 }'; }
mounted_file() {
	local m=$T/mnt.$RANDOM out
	mkdir -p "$m"
	c images mount "$1" "$m" || return 1
	out=$(cat "$m/$2" 2>/dev/null)
	c images unmount --rm "$m"
	printf '%s' "$out"
}

# 8. kubelet pulls what skopeo pushed: digest, unpacked file, layer blob.
IMG=$REG/review/sk:v1
if c images pull --plain-http --user kubelet:kube-secret "$IMG"; then
	expect_eq ctr_auth.pull_digest "$APP" "$(image_digest "$IMG")"
	expect_eq ctr_auth.pull_unpacked_file "hello from auth tools" "$(mounted_file "$IMG" hello.txt)"
	expect_eq ctr_auth.pull_layer_blob "hello from auth tools" \
		"$(cq content get "$APP_TOP" | tar -xzO ./hello.txt 2>/dev/null)"
else
	fail "ctr_auth.pull: $(why 'ctr pull as kubelet failed')"
fi

# 9. ci pushes with ctr; kubelet may not; a wrong password pulls nothing.
if c images push --plain-http --user ci:ci-secret "$REG/review/ctr:v1" "$IMG"; then
	expect_eq ctr_auth.push_digest "$APP" "$(adm_digest review/ctr v1)"
else
	fail "ctr_auth.push: $(why 'ctr push as ci failed')"
fi
# The blobs are in review/ctr already (kubelet may read them), so the
# refusal lands on the manifest PUT. containerd then retries with a fresh
# token and cannot replay the streamed body: depending on timing ctr
# reports the 401 or "read/write on closed pipe". What counts: ctr failed,
# berth answered that PUT with 401, and nothing was stored.
if c images push --plain-http --user kubelet:kube-secret "$REG/review/ctr:kube" "$IMG"; then
	fail "ctr_auth.kubelet_push_denied: push succeeded"
else
	put401=$(jq -r 'select(.msg == "request" and .route == "manifest" and
		.method == "PUT" and .name == "review/ctr" and .ref == "kube") | .status' \
		"$T/berth.log" 2>/dev/null | sort -u | tr '\n' ' ')
	case " $put401" in
	*" 401 "*) case " $put401" in *" 2"??" "*) put401="stored: $put401" ;; *) put401=401 ;; esac ;;
	esac
	expect_eq ctr_auth.kubelet_push_denied "401 404" "$put401 $(adm_code review/ctr kube)"
fi
if c images pull --plain-http --user kubelet:wrong-password "$REG/review/ctr:v1"; then
	fail "ctr_auth.wrong_password: pull succeeded"
else
	expect_eq ctr_auth.wrong_password "refused, not listed" \
		"$(refused && echo refused || tail_msg "$T/last.out"), $([ -n "$(image_digest "$REG/review/ctr:v1")" ] && echo listed || echo 'not listed')"
fi
c images rm "$IMG"
if c images pull --plain-http --user kubelet:kube-secret "$REG/review/ctr:v1"; then
	expect_eq ctr_auth.pull_pushed_digest "$APP" "$(image_digest "$REG/review/ctr:v1")"
else
	fail "ctr_auth.pull_pushed: $(why 'ctr pull of the ctr-pushed image failed')"
fi

# 10. containerd took the OAuth path: POSTs to the token endpoint from
# containerd answered 200 (route "token" in the access log).
posts=$(jq -r 'select(.msg == "request" and .route == "token" and
	.method == "POST" and (.agent // "" | test("containerd"))) | .status' \
	"$T/berth.log" 2>/dev/null | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
if printf '%s' "$posts" | grep -qE '(^| )200:'; then
	ok ctr_auth.oauth_post_token
else
	fail "ctr_auth.oauth_post_token: containerd POST statuses '$posts'"
fi
# The wrong password was refused on the POST too.
if printf '%s' "$posts" | grep -qE '(^| )401:'; then
	ok ctr_auth.oauth_post_refused
else
	fail "ctr_auth.oauth_post_refused: containerd POST statuses '$posts'"
fi

# Stop berth (its shutdown lines count for the checks below) and look for
# sanitizer reports (ASan/UBSan builds).
stop_berth
src=$?
if grep -q 'Sanitizer\|runtime error:' "$T/berth.log" 2>/dev/null; then
	fail "tauth.no_sanitizer_report: $(grep -m3 'Sanitizer\|runtime error:\|#[0-3] ' "$T/berth.log" | tr '\n' ';' | tail -c 400)"
else
	expect_eq tauth.clean_exit 0 "$src"
fi

# 11. berth's log and the clients' log: no password, no token.
leaks=
for s in ci-secret admin-secret kube-secret old-secret wrong-password "Bearer ey"; do
	grep -qF -- "$s" "$T/berth.log" && leaks="$leaks berth.log"
	grep -qF -- "$s" "$T/clients.log" && leaks="$leaks clients.log"
done
expect_eq tauth.logs_no_secrets "" "${leaks:+a password or token is in$leaks}"
exit 0
