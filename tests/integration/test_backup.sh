#!/usr/bin/env bash
# Online backup and restore: `berth backup` of a running server while a
# bounded loop pushes, moves and deletes tags and runs the collector;
# `berth restore` into new directories; the restored registry serves every
# tag with a digest the source acknowledged for it, every blob hashes to
# its name, `berth check` is clean. A manifest deleted and collected after
# the snapshot but before its blobs are sent still arrives whole (the test
# hook BERTH_BACKUP_TEST_HOLD pauses the stream there). A corrupted or
# truncated archive is refused and leaves the target empty; a non-empty
# target needs --force; --repositories limits what is carried; with auth,
# only a user with {"backup": true} may back up.
. "$(dirname "$0")/api_lib.sh"
. "$(dirname "$0")/auth_lib.sh"
REGISTRY_UNDER_TEST=berth

GRACE=1
HOLD=$T/hold
export BERTH_BACKUP_TEST_HOLD=$HOLD
start_berth --gc-grace "$GRACE" || exit 1

# Every (repo:tag digest) the source acknowledged with a 201.
: >"$T/acked"
ack() { echo "$1:$2 $3" >>"$T/acked"; }
# tag_image REPO TAG PREFIX: a fresh image under REPO:TAG, acknowledged.
tag_image() {
	mk_image "$1" "$3" && push_manifest "$1" "$2" "$T/$3.json" "$OCI_MANIFEST" &&
		ack "$1" "$2" "$(dg "$T/$3.json")"
}
blob_file() { local d=${1#sha256:}; echo "$2/blobs/sha256/${d:0:2}/$d"; }

tag_image app/one v1 one || fail "push app/one:v1"
tag_image app/two v1 two || fail "push app/two:v1"
tag_image other/x v1 x || fail "push other/x:v1"
tag_image app/one gone gone || fail "push app/one:gone"
ONE_V1=$(dg "$T/one.json")
req DELETE /v2/app/one/manifests/gone
expect_status "tag app/one:gone deleted before the backup" 202
# The image the collector deletes during the backup: its own blobs only.
tag_image app/race v1 race || fail "push app/race:v1"
RACE=$(dg "$T/race.json")
RACE_BLOBS=("$(dg "$T/race.cfg")" "$(dg "$T/race.layer")")

# A bounded churn loop: pushes, moves a tag, deletes, collects, with its
# own curl calls (req's files belong to the main flow).
mkdir -p "$T/churn"
cpush() { # cpush REPO FILE: monolithic upload, 201 or not
	[ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X POST \
		--data-binary "@$2" "$URL/v2/$1/blobs/uploads/?digest=$(dg "$2")")" = 201 ]
}
ctag() { # ctag REPO TAG N: an image of its own under REPO:TAG
	local f=$T/churn/$3
	printf '{"architecture":"amd64","os":"linux","n":"%s"}' "$3" >"$f.cfg"
	printf 'churn layer %s %s' "$3" "$RANDOM" >"$f.layer"
	cpush "$1" "$f.cfg" && cpush "$1" "$f.layer" || return 1
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
		"$OCI_MANIFEST" "$OCI_CONFIG" "$(dg "$f.cfg")" "$(sz "$f.cfg")" \
		"$OCI_LAYER" "$(dg "$f.layer")" "$(sz "$f.layer")" >"$f.json"
	[ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X PUT \
		-H "Content-Type: $OCI_MANIFEST" --data-binary "@$f.json" \
		"$URL/v2/$1/manifests/$2")" = 201 ] && ack "$1" "$2" "$(dg "$f.json")"
}
churn() {
	local i
	for i in $(seq 1 15); do
		[ -e "$T/stop" ] && break
		ctag "churn/c$i" t "c$i"
		ctag app/two moving "m$i"
		[ "$i" -gt 2 ] && curl -sS -o /dev/null --max-time 30 -X DELETE "$URL/v2/churn/c$((i - 2))/manifests/t"
		curl -sS -o /dev/null --max-time 60 -X POST "$URL/v2/_berth/gc"
	done
}

# ---- the backup, with the collector racing it ----
touch "$HOLD"
churn &
CH=$!
sleep 0.3
"$BERTH_BIN" backup --server "$URL" >"$T/full.tar.zst" 2>"$T/backup.err" &
BK=$!
for _ in $(seq 1 100); do [ -e "$HOLD.snap" ] && break; sleep 0.1; done
check "the backup took its snapshot" test -e "$HOLD.snap"
# After the snapshot, before its blobs are sent: app/race goes, and the
# collector deletes its blobs' rows once past the grace.
req DELETE "/v2/app/race/manifests/$RACE"
expect_status "app/race deleted after the snapshot" 202
sleep $((GRACE + 1))
req POST /v2/_berth/gc
expect_status "gc during the backup answers 200" 200
for d in "${RACE_BLOBS[@]}"; do
	req HEAD "/v2/app/race/blobs/$d"
	expect_status "gc during the backup deleted app/race blob ${d:7:12} from the index" 404
done
check "their files stay while the backup runs" \
	test -e "$(blob_file "${RACE_BLOBS[1]}" "$T/data")"
rm -f "$HOLD"
wait "$BK"
expect_eq "berth backup exits 0" 0 "$?"
touch "$T/stop"
wait "$CH"
check "berth backup says what it wrote" grep -q 'written' "$T/backup.err"
req POST /v2/_berth/gc
check "after the backup, a run unlinks the held files" \
	test ! -e "$(blob_file "${RACE_BLOBS[1]}" "$T/data")"
zstd -dc "$T/full.tar.zst" | tar -tf - >"$T/full.list" 2>/dev/null
expect_eq "the archive is a tar.zst starting with its header" berth-backup.json "$(head -1 "$T/full.list")"
expect_eq "the archive ends with its end member" berth-backup.end "$(tail -1 "$T/full.list")"
check "the archive carries app/race's layer" grep -q "${RACE_BLOBS[1]#sha256:}" "$T/full.list"
stop_berth

# ---- restore, check, serve ----
"$BERTH_BIN" restore --data "$T/r" <"$T/full.tar.zst" 2>"$T/restore.err"
expect_eq "berth restore exits 0" 0 "$?"
check "restore says the digests were verified" grep -q 'digests verified, check clean' "$T/restore.err"
"$BERTH_BIN" check --data "$T/r" >"$T/check.out" 2>&1
expect_eq "berth check on the restored directory is clean" 0 "$?"
bad=0
while read -r f; do
	[ "$(sha256sum "$f" | cut -c1-64)" = "$(basename "$f")" ] || bad=$((bad + 1))
done < <(find "$T/r/blobs" -type f)
expect_eq "every restored blob file hashes to its name" 0 "$bad"
check "no staging directory left" test ! -e "$T/r/.restore-tmp"

# serve_dir DIR: a second server on DIR; sets URL.
serve_dir() {
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	"$BERTH_BIN" serve --listen "127.0.0.1:$PORT" --data "$1" >>"$T/berth.log" 2>&1 &
	BERTH_PID=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
serve_dir "$T/r" || fail "serve the restored directory"
req HEAD /v2/app/one/manifests/v1
expect_eq "app/one:v1 (untouched) is restored with its digest" "$ONE_V1" "$(hdr Docker-Content-Digest)"
req HEAD /v2/app/one/manifests/gone
expect_status "app/one:gone (deleted before) is absent" 404
req GET "/v2/app/race/manifests/$RACE"
expect_status "app/race (collected during the backup) is restored" 200
for d in "${RACE_BLOBS[@]}"; do
	req GET "/v2/app/race/blobs/$d"
	expect_eq "app/race blob ${d:7:12} pulls byte for byte" "$d" "sha256:$(sha256sum "$T/b" | cut -c1-64)"
done
# Every restored tag pulls with a digest the source acknowledged for it.
n=0 unacked=0
req GET /v2/_catalog
for repo in $(jq -r '.repositories[]' "$T/b"); do
	req GET "/v2/$repo/tags/list"
	for tag in $(jq -r '.tags[]?' "$T/b"); do
		req GET "/v2/$repo/manifests/$tag"
		got=sha256:$(sha256sum "$T/b" | cut -c1-64)
		n=$((n + 1))
		grep -qxF "$repo:$tag $got" "$T/acked" || { unacked=$((unacked + 1)); echo "unacked $repo:$tag $got" >&2; }
	done
done
check "the restored registry has tags ($n)" test "$n" -ge 4
expect_eq "every restored tag pulls with an acknowledged digest" 0 "$unacked"
finish

# ---- damaged archives ----
size=$(stat -c %s "$T/full.tar.zst")
cp "$T/full.tar.zst" "$T/bad.tar.zst"
printf '\xff' | dd of="$T/bad.tar.zst" bs=1 seek=$((size / 2)) conv=notrunc status=none
# (0x00 instead if that byte was 0xff already)
if cmp -s "$T/full.tar.zst" "$T/bad.tar.zst"; then
	printf '\x00' | dd of="$T/bad.tar.zst" bs=1 seek=$((size / 2)) conv=notrunc status=none
fi
"$BERTH_BIN" restore --data "$T/c" <"$T/bad.tar.zst" 2>"$T/corrupt.err"
expect_eq "a corrupted archive is refused (exit 1)" 1 "$?"
check "with a clear error" grep -q 'corrupt' "$T/corrupt.err"
check "the target holds no index (not servable)" test ! -e "$T/c/meta"
check "and no staging directory" test ! -e "$T/c/.restore-tmp"
head -c $((size * 2 / 3)) "$T/full.tar.zst" >"$T/short.tar.zst"
"$BERTH_BIN" restore --data "$T/t" --input "$T/short.tar.zst" 2>"$T/short.err"
expect_eq "a truncated archive is refused (exit 1)" 1 "$?"
check "with a clear error" grep -q 'truncated' "$T/short.err"
expect_eq "the target is left empty" "lock" "$(ls -A "$T/t" | tr '\n' ' ' | sed 's/ $//')"
"$BERTH_BIN" restore --data "$T/r" <"$T/full.tar.zst" 2>"$T/nonempty.err"
expect_eq "restore into a non-empty directory without --force is refused" 1 "$?"
check "saying so" grep -q 'not empty' "$T/nonempty.err"

# ---- --repositories, and auth ----
stop_berth
auth_setup || fail "auth setup"
jq --arg h "$(auth_hash bk-secret)" '.users += [{"name": "bk", "password_hash": $h, "rules": [{"backup": true}]}]' \
	"$AUTH_FILE" >"$AUTH_FILE.new" && mv "$AUTH_FILE.new" "$AUTH_FILE"
printf 'admin-secret\n' >"$T/admin.pw"
printf 'bk-secret\n' >"$T/bk.pw"
start_berth --auth "$AUTH_FILE" || fail "start with auth"
"$BERTH_BIN" restore --data "$T/data" <"$T/full.tar.zst" 2>"$T/inuse.err"
expect_eq "restore into the directory of a running server is refused" 1 "$?"
check "naming the server's lock" grep -q 'in use by another berth process' "$T/inuse.err"
"$BERTH_BIN" backup --server "$URL" --user admin --password-file "$T/admin.pw" >"$T/denied.tar.zst" 2>"$T/denied.err"
expect_eq "a user without the backup rule is refused (exit 1)" 1 "$?"
check "told it needs {\"backup\": true}" grep -q '"backup": true' "$T/denied.err"
tok=$(auth_token admin:admin-secret 'registry:backup:*')
req GET /v2/_berth/backup -H "Authorization: Bearer $tok"
expect_status "GET /v2/_berth/backup without the rule: 401" 401
expect_hdr_re "with insufficient_scope for registry:backup:*" WWW-Authenticate 'scope="registry:backup:\*",error="insufficient_scope"'
expect_eq "and an OCI error body" UNAUTHORIZED "$(errcode)"
req GET '/v2/_berth/backup?level=99' -H "Authorization: Bearer $(auth_token bk:bk-secret 'registry:backup:*')"
expect_status "a bad level is refused" 400
"$BERTH_BIN" backup --server "$URL" --user bk --password-file "$T/bk.pw" \
	--repositories 'app/one' --level 5 >"$T/one.tar.zst" 2>"$T/one.err"
expect_eq "the backup user may back up (exit 0)" 0 "$?"
zstd -dc "$T/one.tar.zst" | tar -xOf - berth-backup.json >"$T/one.header"
expect_eq "a --repositories backup carries one repository" 1 "$(jq .repository_count "$T/one.header")"
expect_eq "and its globs" '["app/one"]' "$(jq -c .repositories "$T/one.header")"
expect_eq "and only app/one's two blobs" 2 "$(zstd -dc "$T/one.tar.zst" | tar -tf - | grep -c '^blobs/')"
stop_berth
"$BERTH_BIN" restore --data "$T/r" --force <"$T/one.tar.zst" 2>"$T/force.err"
expect_eq "restore --force replaces a registry" 0 "$?"
check "no old data left beside it" test ! -e "$T/r/.restore-old"
serve_dir "$T/r" || fail "serve the replaced directory"
req GET /v2/_catalog
expect_eq "the restored catalog is app/one only" '["app/one"]' "$(jq -c .repositories "$T/b")"
req HEAD /v2/app/one/manifests/v1
expect_eq "app/one:v1 pulls with its digest" "$ONE_V1" "$(hdr Docker-Content-Digest)"
stop_berth
"$BERTH_BIN" check --data "$T/r" >/dev/null 2>&1
expect_eq "berth check after the --force restore is clean" 0 "$?"
if grep -l 'Sanitizer\|runtime error:' "$T"/berth.log "$T"/*.err >/dev/null 2>&1; then
	fail "no sanitizer report from any server, backup or restore: $(grep -l 'Sanitizer\|runtime error:' "$T"/berth.log "$T"/*.err | tr '\n' ' ')"
else
	ok "no sanitizer report from any server, backup or restore"
fi
