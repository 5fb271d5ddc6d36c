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
# start_berth [ARGS...]: berth on a free port (BERTH_PORT to choose one,
# e.g. when a users file must name the realm's port beforehand).
start_berth() {
	PORT=${BERTH_PORT:-$(free_port)}
	REG=127.0.0.1:$PORT
	URL=http://$REG
	mkdir -p "$T/data"
	"$BERTH_BIN" serve --listen "$REG" --data "$T/data" "$@" >>"$T/berth.log" 2>&1 &
	BERTH_PID=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && return 0
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

# start_distribution: Debian's docker-registry (CNCF distribution 2.8) as the
# registry under test, with $T/data (reused on restart, like start_berth);
# sets PORT, REG, URL and BERTH_PID so stop_berth and the exit trap work.
start_distribution() {
	PORT=$(free_port)
	REG=127.0.0.1:$PORT
	URL=http://$REG
	mkdir -p "$T/data" "$T/home"
	cat >"$T/dist.yml" <<-EOF
		version: 0.1
		log:
		  level: error
		  accesslog:
		    disabled: true
		storage:
		  filesystem:
		    rootdirectory: $T/data
		  delete:
		    enabled: true
		  maintenance:
		    uploadpurging:
		      enabled: false
		http:
		  addr: $REG
		  secret: berth-integration-tests
	EOF
	# A clean environment: distribution reads REGISTRY_* variables as
	# configuration (REGISTRY_AUTH_FILE would become its "auth" section).
	env -i PATH="$PATH" HOME="$T/home" /usr/bin/docker-registry serve "$T/dist.yml" \
		>>"$T/berth.log" 2>&1 &
	BERTH_PID=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null --max-time 2 "$URL/v2/" 2>/dev/null && return 0
		kill -0 "$BERTH_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "distribution did not start; log:" >&2
	cat "$T/berth.log" >&2
	return 1
}

# start_registry [berth serve args]: the registry under test, berth unless
# REGISTRY_UNDER_TEST=distribution. Retried on a new port when the process
# died at start (another socket can take a probed port before the bind).
REGISTRY_UNDER_TEST=${REGISTRY_UNDER_TEST:-berth}
start_registry() {
	local i
	for i in 1 2 3; do
		case $REGISTRY_UNDER_TEST in
		berth) start_berth "$@" && return 0 ;;
		distribution) start_distribution && return 0 ;;
		*) echo "unknown REGISTRY_UNDER_TEST=$REGISTRY_UNDER_TEST" >&2; return 1 ;;
		esac
		kill -0 "$BERTH_PID" 2>/dev/null && return 1
		BERTH_PID=
		echo "registry start attempt $i failed, retrying" >&2
	done
	return 1
}

sha256() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# mount_ns_usable: true when the test may make a mount namespace of its
# own (root or CAP_SYS_ADMIN, unshare and nsenter present).
mount_ns_usable() {
	command -v unshare >/dev/null && command -v nsenter >/dev/null &&
		unshare -m --propagation private true 2>/dev/null
}

# mount_ns_start: a mount namespace of the test's own, kept alive across
# berth's restarts by a holder process (stopped at exit). `ns CMD...` runs
# a command in it; BERTH_BIN then starts berth in it (nsenter execs it:
# same pid); REAL_BIN is the binary itself.
mount_ns_start() {
	REAL_BIN=$(readlink -f "$BERTH_BIN")
	unshare -m --propagation private sleep infinity &
	HOLDER=$!
	cleanup_fns+=(stop_holder)
	for _ in $(seq 1 50); do
		[ "$(readlink "/proc/$HOLDER/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && break
		sleep 0.05
	done
	printf '#!/bin/sh\nexec nsenter -t %s -m "%s" "$@"\n' "$HOLDER" "$REAL_BIN" >"$T/berth-ns"
	chmod +x "$T/berth-ns"
	BERTH_BIN=$T/berth-ns
}
stop_holder() { kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null; }
ns() { nsenter -t "$HOLDER" -m "$@"; }
