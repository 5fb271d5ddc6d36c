# Shared helpers for integration tests. Source it; it starts nothing by
# itself. Every check records "ok NAME" or "FAIL NAME: why" into $RESULTS.
set -u
BERTH_BIN=${BERTH_BIN:-build/debug/berth}
RESULTS=${RESULTS:-/dev/null}
T=$(mktemp -d /tmp/berth-it.XXXXXX)
BERTH_PID=
cleanup_fns=()

ok() { echo "ok $*" | tee -a "$RESULTS"; }
fail() { echo "FAIL $*" | tee -a "$RESULTS"; }
# check NAME CMD...: ok when CMD succeeds.
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n"; fi; }
# expect_eq NAME WANT GOT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: want '$2' got '$3'"; fi
}

on_exit() {
	local f
	for f in "${cleanup_fns[@]}"; do $f || true; done
	[ -n "$BERTH_PID" ] && kill "$BERTH_PID" 2>/dev/null && wait "$BERTH_PID" 2>/dev/null
	rm -rf "$T"
}
trap on_exit EXIT

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 12000)) # below the ephemeral range
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
	done
	return 1
}

# start_berth [extra serve args]: starts berth on a free port with
# $T/data; sets PORT, REG (host:port), URL.
start_berth() {
	PORT=$(free_port)
	REG=127.0.0.1:$PORT
	URL=http://$REG
	mkdir -p "$T/data"
	"$BERTH_BIN" serve --listen "$REG" --data "$T/data" "$@" >>"$T/berth.log" 2>&1 &
	BERTH_PID=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$URL/v2/" 2>/dev/null && return 0
		kill -0 "$BERTH_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "berth did not start; log:" >&2
	cat "$T/berth.log" >&2
	return 1
}

stop_berth() {
	[ -n "$BERTH_PID" ] || return 0
	kill -TERM "$BERTH_PID" 2>/dev/null
	wait "$BERTH_PID" 2>/dev/null
	local rc=$?
	BERTH_PID=
	return $rc
}

sha256() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
