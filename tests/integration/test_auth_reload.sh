#!/usr/bin/env bash
# The users file and the keys it names reload without a restart: the
# file lives in a directory laid out as the kubelet mounts a Secret
# (users.json -> ..data/users.json, ..data -> a timestamped directory that
# an update replaces with one atomic rename). A new version is picked up
# by polling within seconds or at once on SIGHUP; a broken one (JSON
# syntax, an unknown action, a missing key file) keeps the rules in
# force, is logged with file and line and counted; a key rotation through
# previous_keys keeps old tokens valid until the old key goes; a key file
# changed alone is seen too; signals in quick succession never end the
# server; an upload in flight across a reload ends normally; without
# --auth a SIGHUP changes nothing.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh

SERVICE=berth-reload
ISSUER=berth-reload-issuer
PORT=$(free_port)
export BERTH_PORT=$PORT
REALM_PATH=/auth/token
S=$T/secret # the Secret's mount point
NEXT=$T/next
mkdir -p "$S" "$NEXT" "$T/keys"
for k in 1 2 3; do
	"$BERTH_BIN" auth keygen --out "$T/keys/key$k.pem" >/dev/null || { fail "keygen"; exit 1; }
done
# Password hashes at the fewest iterations a users file accepts (210,000,
# a third of what `berth auth hash` spends): every reload starts a new
# credential cache, so this test signs in afresh some thirty times.
hash_fast() {
	python3 -c 'import base64, hashlib, os, sys
e = lambda b: base64.b64encode(b).decode().rstrip("=")
s = os.urandom(16)
h = hashlib.pbkdf2_hmac("sha256", sys.argv[1].encode(), s, 210000)
print("$pbkdf2-sha256$i=210000$" + e(s) + "$" + e(h))' "$1"
}
H_ALICE=$(hash_fast alice-pw)
H_BOB=$(hash_fast bob-pw)
H_CAROL=$(hash_fast carol-pw)

# user NAME HASH: a user with pull and push on team/**.
user() {
	printf '{"name": "%s", "password_hash": "%s", "rules": [{"repositories": ["team/**"], "actions": ["pull", "push"]}]}' "$1" "$2"
}
# users_file SIGNING PREVIOUS USER...: a users file into $NEXT/users.json
# (PREVIOUS: the JSON list's inside, or empty).
users_file() {
	local sk=$1 prev=$2
	shift 2
	{
		printf '{\n  "service": "%s",\n  "issuer": "%s",\n' "$SERVICE" "$ISSUER"
		printf '  "realm": "http://127.0.0.1:%s%s",\n' "$PORT" "$REALM_PATH"
		printf '  "token_ttl": 300,\n  "signing_key": "%s",\n' "$sk"
		[ -n "$prev" ] && printf '  "previous_keys": [%s],\n' "$prev"
		printf '  "users": [\n'
		local IFS=,
		printf '    %s\n' "$*" | sed '$!s/$/,/'
		printf '  ]\n}\n'
	} >"$NEXT/users.json"
}
# publish: what $NEXT holds becomes the Secret's content as the kubelet's
# atomic writer does it: a new timestamped directory, a ..data_tmp symlink
# renamed over ..data, a symlink per file name, the old directory and
# names no longer there removed.
NV=0
publish() {
	local d old f n
	NV=$((NV + 1))
	d=..2026_12_03_14_00_$(printf '%02d' "$NV").$RANDOM
	old=$(readlink "$S/..data" 2>/dev/null)
	mkdir "$S/$d"
	cp "$NEXT"/* "$S/$d/"
	ln -s "$d" "$S/..data_tmp"
	mv -T "$S/..data_tmp" "$S/..data"
	for f in "$S/$d"/*; do
		n=$(basename "$f")
		[ -L "$S/$n" ] || ln -s "..data/$n" "$S/$n"
	done
	for f in "$S"/*; do
		n=$(basename "$f")
		[ -e "$S/$d/$n" ] || rm -f "$S/$n"
	done
	[ -n "$old" ] && rm -rf "${S:?}/$old"
	rm -f "$NEXT"/*
}

# token CRED SCOPE: status in ST, the token in TOK (empty unless 200).
token() {
	req GET "$REALM_PATH?service=$SERVICE&scope=$2" -u "$1"
	TOK=
	[ "$ST" = 200 ] && TOK=$(jq -r .token "$T/b")
}
kid_of() { # the kid in a token's header
	local s
	s=$(printf '%s' "$1" | cut -d. -f1 | tr '_-' '/+')
	case $((${#s} % 4)) in 2) s="$s==" ;; 3) s="$s=" ;; esac
	printf '%s' "$s" | base64 -d 2>/dev/null | jq -r .kid
}
bearer() { printf 'Authorization: Bearer %s' "$1"; }
# push TOKEN REPO FILE: a monolithic blob upload; status in ST.
push() {
	req POST "/v2/$2/blobs/uploads/?digest=$(dg "$3")" -H "$(bearer "$1")" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$3"
}
pull() { req GET "/v2/$2/blobs/$(dg "$3")" -H "$(bearer "$1")"; }
metric() { # the value of a users-file reload counter (ok, failed)
	curl -sS --max-time 5 "$URL/metrics" |
		sed -n "s/^berth_reload_total{file=\"users\",result=\"$1\"} //p"
}
# wait_until SECONDS CMD...: true once CMD succeeds, retried every 0.1 s
# until SECONDS have passed.
wait_until() {
	local end=$(($(date +%s%N) + $1 * 1000000000))
	shift
	until "$@"; do
		[ "$(date +%s%N)" -ge "$end" ] && return 1
		sleep 0.1
	done
}
signs_in() { token "$1" "repository:team/app:pull,push"; [ "$ST" = "$2" ]; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
metric_over() { [ "$(metric "$1")" -gt "$2" ]; }
logged() { grep -c "\"msg\":\"$1\"" "$T/berth.log"; }
SCOPE="repository:team/app:pull,push"

# ---- v1: alice
cp "$T/keys/key1.pem" "$NEXT/key.pem"
users_file key.pem "" "$(user alice "$H_ALICE")"
publish
if ! start_berth --auth "$S/users.json"; then
	fail "reload.start: berth did not start with the Secret's users file"
	exit 1
fi
expect_eq reload.metric_ok_starts_at_0 0 "$(metric ok)"
expect_eq reload.metric_failed_starts_at_0 0 "$(metric failed)"
token alice:alice-pw "$SCOPE"
expect_status reload.v1_alice_token 200
ALICE_TOK=$TOK
KID1=$(kid_of "$ALICE_TOK")
printf 'blob of alice %s' "$RANDOM" >"$T/a.bin"
push "$ALICE_TOK" team/app "$T/a.bin"
expect_status reload.v1_alice_pushes 201
pull "$ALICE_TOK" team/app "$T/a.bin"
expect_body_file reload.v1_alice_pulls "$T/a.bin"
token bob:bob-pw "$SCOPE"
expect_error reload.v1_bob_unknown 401 UNAUTHORIZED

# ---- v2 by polling: bob in, alice out (a ..data swap, no signal)
cp "$T/keys/key1.pem" "$NEXT/key.pem"
users_file key.pem "" "$(user bob "$H_BOB")"
t0=$(date +%s%N)
publish
if wait_until 8 signs_in bob:bob-pw 200; then
	ok "reload.poll_picks_up_the_swap ($((($(date +%s%N) - t0) / 1000000)) ms)"
else
	fail "reload.poll_picks_up_the_swap: bob still refused after 8 s $(ctx)"
fi
BOB_TOK=$TOK
token alice:alice-pw "$SCOPE"
expect_error reload.v2_alice_refused 401 UNAUTHORIZED
printf 'blob of bob %s' "$RANDOM" >"$T/b.bin"
push "$BOB_TOK" team/app "$T/b.bin"
expect_status reload.v2_bob_pushes 201
pull "$BOB_TOK" team/app "$T/b.bin"
expect_body_file reload.v2_bob_pulls "$T/b.bin"
# A token is its own proof until it expires (same key): revoking a user
# stops new sign-ins, not tokens already issued.
pull "$ALICE_TOK" team/app "$T/a.bin"
expect_status reload.v2_alice_token_valid_until_expiry 200
expect_eq reload.v2_counted_ok 1 "$(metric ok)"
expect_eq reload.v2_logged 1 "$(logged 'users file reloaded')"

# ---- broken versions: the rules in force stay
still_v2() { # NAME: bob signs in and pushes, alice is refused
	local f
	token bob:bob-pw "$SCOPE"
	expect_status "$1.bob_still_signs_in" 200
	f=$T/x$RANDOM.bin
	printf 'blob %s' "$RANDOM" >"$f"
	push "$TOK" team/app "$f"
	expect_status "$1.bob_still_pushes" 201
	token alice:alice-pw "$SCOPE"
	expect_error "$1.alice_still_refused" 401 UNAUTHORIZED
}
failure_logged() { # NAME ERE: the last failure line's error matches ERE
	local line
	line=$(grep '"msg":"users file reload failed, the previous one stays"' "$T/berth.log" | tail -1)
	if printf '%s' "$line" | jq -e --arg re "$2" --arg f "$S/users.json" \
		'.level == "error" and .file == $f and (.error | test($re))' >/dev/null 2>&1; then
		ok "$1"
	else
		fail "$1: want an error matching /$2/, last failure line: $line"
	fi
}

# JSON syntax error on line 4, found by polling
cp "$T/keys/key1.pem" "$NEXT/key.pem"
users_file key.pem "" "$(user bob "$H_BOB")"
sed -i '4s/,$/,,/' "$NEXT/users.json"
publish
check reload.bad_json_counted wait_until 8 metric_is failed 1
failure_logged reload.bad_json_logged_with_line "^$S/users.json:4:[0-9]+: "
still_v2 reload.bad_json

# an unknown action, on SIGHUP
cp "$T/keys/key1.pem" "$NEXT/key.pem"
users_file key.pem "" "$(user bob "$H_BOB" | sed 's/"push"/"pul"/')"
publish
kill -HUP "$BERTH_PID"
check reload.bad_action_counted wait_until 5 metric_over failed 1
failure_logged reload.bad_action_logged "^$S/users.json:8: users\\[0\\]\\.rules\\[0\\]\\.actions: unknown action \"pul\""
still_v2 reload.bad_action

# a signing key file that is not there, on SIGHUP
cp "$T/keys/key1.pem" "$NEXT/key.pem"
users_file key-next.pem "" "$(user bob "$H_BOB")"
publish
kill -HUP "$BERTH_PID"
check reload.missing_key_counted wait_until 5 metric_over failed 2
failure_logged reload.missing_key_logged "^$S/users.json:6: signing_key: key-next.pem: "
# The same broken files are not read again at every poll (one passes
# within 2 s), once the loads under way are done (a poll may have met the
# signal).
settled() { # NAME RESULT: the counter did not move for 0.3 s
	local a b
	a=$(metric "$2")
	sleep 0.3
	b=$(metric "$2")
	[ "$a" = "$b" ] && printf -v "$1" '%s' "$b"
}
F=
wait_until 5 settled F failed
t0=$(date +%s%N)
still_v2 reload.missing_key
sleep "$(awk -v e=$((($(date +%s%N) - t0) / 1000000)) 'BEGIN { print (e < 2200 ? 2200 - e : 0) / 1000 }')"
expect_eq reload.broken_files_read_once "$F" "$(metric failed)"
expect_eq reload.no_success_while_broken 1 "$(metric ok)"

# ---- SIGHUP: also when nothing changed, and in quick succession
cp "$T/keys/key1.pem" "$NEXT/key.pem"
users_file key.pem "" "$(user bob "$H_BOB")" "$(user carol "$H_CAROL")"
publish
kill -HUP "$BERTH_PID"
check reload.sighup_applies wait_until 5 signs_in carol:carol-pw 200
# Once no load is under way (a poll may have met the signal), a signal
# with nothing changed reloads: the poll never reads unchanged files.
N=
wait_until 5 settled N ok
kill -HUP "$BERTH_PID"
check reload.sighup_unchanged_reloads wait_until 5 metric_is ok $((N + 1))
N=$((N + 1))
# Signals in quick succession, some arriving while a reload runs: each
# is taken by the main thread, never by a thread that would die of it.
for _ in $(seq 1 60); do kill -HUP "$BERTH_PID" 2>/dev/null; sleep 0.003; done
check reload.sighup_burst_reloads wait_until 5 metric_over ok "$N"
sleep 0.2
check reload.sighup_burst_survived kill -0 "$BERTH_PID"

# ---- key rotation: key2 signs, key1 moves to previous_keys
token bob:bob-pw "$SCOPE"
T1=$TOK
expect_eq reload.v3_signed_by_key1 "$KID1" "$(kid_of "$T1")"
cp "$T/keys/key2.pem" "$NEXT/key.pem"
cp "$T/keys/key1.pem" "$NEXT/key-old.pem"
users_file key.pem '"key-old.pem"' "$(user bob "$H_BOB")" "$(user carol "$H_CAROL")"
publish
kill -HUP "$BERTH_PID"
kid_changed() { token bob:bob-pw "$SCOPE" && [ -n "$TOK" ] && [ "$(kid_of "$TOK")" != "$1" ]; }
check reload.rotation_new_key_signs wait_until 5 kid_changed "$KID1"
T2=$TOK
KID2=$(kid_of "$T2")
pull "$T1" team/app "$T/b.bin"
expect_status reload.rotation_old_token_still_accepted 200
pull "$T2" team/app "$T/b.bin"
expect_status reload.rotation_new_token_accepted 200
# the old key leaves previous_keys
cp "$T/keys/key2.pem" "$NEXT/key.pem"
users_file key.pem "" "$(user bob "$H_BOB")" "$(user carol "$H_CAROL")"
publish
kill -HUP "$BERTH_PID"
old_refused() { pull "$T1" team/app "$T/b.bin"; [ "$ST" = 401 ]; }
check reload.rotation_old_token_refused_once_key_gone wait_until 5 old_refused
expect_error reload.rotation_refusal_is_oci 401 UNAUTHORIZED
expect_hdr_re reload.rotation_refusal_says_invalid_token WWW-Authenticate 'error="invalid_token"'
pull "$T2" team/app "$T/b.bin"
expect_status reload.rotation_new_token_still_accepted 200

# ---- only the key file changes (users.json untouched): the poll sees it
cp "$T/keys/key3.pem" "$S/..data/.key.tmp"
mv "$S/..data/.key.tmp" "$S/..data/key.pem"
check reload.key_file_alone_picked_up wait_until 8 kid_changed "$KID2"
pull "$T2" team/app "$T/b.bin"
expect_error reload.key_file_alone_old_key_gone 401 UNAUTHORIZED

# ---- an upload in flight across a reload that removes its user
token bob:bob-pw "$SCOPE"
BOB_TOK=$TOK
head -c 393216 /dev/urandom >"$T/slow.bin"
curl -sS --max-time 30 --limit-rate 128k -o "$T/slow.out" -w '%{http_code}' \
	-H "$(bearer "$BOB_TOK")" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$T/slow.bin" \
	"$URL/v2/team/app/blobs/uploads/?digest=$(dg "$T/slow.bin")" >"$T/slow.st" 2>&1 &
SLOW=$!
sleep 0.3
cp "$T/keys/key3.pem" "$NEXT/key.pem"
users_file key.pem "" "$(user carol "$H_CAROL")"
L=$(logged 'users file reloaded')
publish
kill -HUP "$BERTH_PID"
reloaded() { [ "$(logged 'users file reloaded')" -gt "$L" ]; }
check reload.inflight_reloaded wait_until 2 reloaded
if kill -0 "$SLOW" 2>/dev/null; then ok "reload.inflight_upload_spans_the_reload"; else fail "reload.inflight_upload_spans_the_reload: the upload ended before the reload"; fi
check reload.inflight_user_removed wait_until 5 signs_in bob:bob-pw 401
wait "$SLOW"
expect_eq reload.inflight_upload_completes 201 "$(cat "$T/slow.st")"
token carol:carol-pw "$SCOPE"
CAROL_TOK=$TOK
pull "$CAROL_TOK" team/app "$T/slow.bin"
expect_body_file reload.inflight_upload_stored "$T/slow.bin"

# the three broken versions, each counted (once or, if a poll met the
# signal, twice), and nothing since
[ "${F:-0}" -ge 3 ] && ok "reload.failures_counted ($F)" || fail "reload.failures_counted: $F"
expect_eq reload.no_failure_since "$F" "$(metric failed)"
FINISH_ARGS=(-H "$(bearer "$CAROL_TOK")")
finish

# ---- without --auth a SIGHUP has nothing to reload
unset BERTH_PORT
if start_berth; then
	kill -HUP "$BERTH_PID"
	sleep 0.3
	req GET /v2/
	expect_status reload.noauth_still_open_after_sighup 200
	check reload.noauth_still_running kill -0 "$BERTH_PID"
	expect_eq reload.noauth_nothing_reloaded "0 0" "$(metric ok) $(metric failed)"
	stop_berth
else
	fail "reload.noauth_start"
fi
