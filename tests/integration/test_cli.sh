#!/usr/bin/env bash
# The berth command line: help, version, flag/env/config precedence, clear
# one-line errors with a non-zero exit, and a clean SIGTERM shutdown that
# lets a request in flight finish.
. "$(dirname "$0")/lib.sh"

out=$("$BERTH_BIN" --help 2>&1); rc=$?
expect_eq "help exits 0" 0 "$rc"
case "$out" in *serve*version*) ok "help lists commands" ;; *) fail "help lists commands: $out" ;; esac
out=$("$BERTH_BIN" serve --help 2>&1)
miss=""
for f in --listen --data --config --threads --max-connections --access-log --gc-grace --shutdown-timeout --idle-timeout BERTH_LISTEN BERTH_DATA; do
	case "$out" in *"$f"*) ;; *) miss="$miss $f" ;; esac
done
expect_eq "serve --help explains every option" "" "$miss"
out=$("$BERTH_BIN" version); case "$out" in "berth "[0-9]*) ok "version" ;; *) fail "version: $out" ;; esac

out=$("$BERTH_BIN" serve --bogus 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && case "$out" in *--bogus*) true ;; *) false ;; esac &&
	ok "unknown flag: one-line error, non-zero exit" || fail "unknown flag: rc=$rc out=$out"
out=$("$BERTH_BIN" serve --threads many 2>&1); rc=$?
[ "$rc" -ne 0 ] && case "$out" in *threads*) true ;; *) false ;; esac && ok "bad number rejected" || fail "bad number: $rc $out"
out=$("$BERTH_BIN" serve --listen nonsense 2>&1); rc=$?
[ "$rc" -ne 0 ] && case "$out" in *listen*) true ;; *) false ;; esac && ok "bad listen address rejected" || fail "bad listen: $rc $out"

touch "$T/afile"
out=$("$BERTH_BIN" serve --listen 127.0.0.1:$(free_port) --data "$T/afile/data" 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && case "$out" in *data*) true ;; *) false ;; esac &&
	ok "unusable data dir: one-line error" || fail "unusable data dir: rc=$rc out=$out"

start_berth
out=$("$BERTH_BIN" serve --listen "$REG" --data "$T/data2" 2>&1); rc=$?
[ "$rc" -ne 0 ] && case "$out" in *"in use"*) true ;; *) false ;; esac && ok "port in use: clear error" || fail "port in use: rc=$rc out=$out"

# Config file and environment: flag > env > file > default.
p1=$(free_port)
printf '{"listen":"127.0.0.1:%s","data":"%s","access_log":false}\n' "$p1" "$T/cfgdata" >"$T/cfg.json"
"$BERTH_BIN" serve --config "$T/cfg.json" >"$T/cfg.log" 2>&1 &
cpid=$!
up=0; for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$p1/v2/" 2>/dev/null && { up=1; break; }; sleep 0.1; done
expect_eq "config file sets listen address" 1 "$up"
[ -d "$T/cfgdata/meta" ] && ok "config file sets data dir" || fail "config file sets data dir"
kill "$cpid"; wait "$cpid"
p2=$(free_port)
BERTH_LISTEN=127.0.0.1:$p2 BERTH_DATA="$T/envdata" "$BERTH_BIN" serve --config "$T/cfg.json" >"$T/env.log" 2>&1 &
epid=$!
up=0; for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$p2/v2/" 2>/dev/null && { up=1; break; }; sleep 0.1; done
expect_eq "environment overrides config file" 1 "$up"
kill "$epid"; wait "$epid"
printf '{"listen": 5}' >"$T/bad.json"
out=$("$BERTH_BIN" serve --config "$T/bad.json" 2>&1); rc=$?
[ "$rc" -ne 0 ] && ok "config with a wrong type is refused" || fail "bad config accepted: $out"
printf '{"nope": 1}' >"$T/bad2.json"
out=$("$BERTH_BIN" serve --config "$T/bad2.json" 2>&1); rc=$?
[ "$rc" -ne 0 ] && case "$out" in *nope*) true ;; *) false ;; esac && ok "unknown config key is refused" || fail "unknown key: $rc $out"

# SIGTERM while an upload is streaming: the request finishes, then berth
# exits 0 and a restart sees the blob.
head -c 8388608 /dev/urandom >"$T/big"
d=$(sha256 "$T/big")
curl -s -o /dev/null -w '%{http_code}' --limit-rate 8M -X POST \
	-H 'Content-Type: application/octet-stream' --data-binary @"$T/big" \
	"$URL/v2/cli/drain/blobs/uploads/?digest=$d" >"$T/code" &
cpid=$!
sleep 0.3
kill -TERM "$BERTH_PID"
wait "$cpid"
expect_eq "request in flight completes during shutdown" 201 "$(cat "$T/code")"
wait "$BERTH_PID"; rc=$?; BERTH_PID=
expect_eq "SIGTERM exits 0" 0 "$rc"
grep -q '"stopped"' "$T/berth.log" && ok "shutdown is logged" || fail "no stop log line"
start_berth
code=$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/v2/cli/drain/blobs/$d")
expect_eq "blob pushed during shutdown survives restart" 200 "$code"
