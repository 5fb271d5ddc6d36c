#!/usr/bin/env bash
# Request mutation over the network: tests/fuzz/http_mutate.py sends berth
# (default options) mutated requests for every route on raw sockets, so the
# request-line, query and header checks that the libFuzzer harnesses cannot
# reach (route_check_line(), paging n/last, artifactType, digest/mount/from,
# the /v2/_berth/ routes, Range, Content-Range, Content-Length) get random
# input. No answer may be 500/502/503/507, malformed, an error without OCI
# error JSON, or missing for a complete request; berth must still answer at
# the end, and a canary repository no request names keeps its manifest.
# Fixed probes (a small body where a route takes none, Expect: 100-continue
# before a pipelined request, Transfer-Encoding: gzip) run alongside; at the
# end berth has no request in flight and uses no CPU.
#   MUTATE_SEED     the PRNG seed (default: random, printed to replay a run)
#   MUTATE_SECONDS  how long to send (default 12; make check: 6)
#   MUTATE_MAX      at most this many requests (default 20000)
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh

SEED=${MUTATE_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
SECONDS_=${MUTATE_SECONDS:-12}
MAX=${MUTATE_MAX:-20000}

# --idle-timeout 4: the in-flight check below waits for it
start_registry --idle-timeout 4 || { fail "api_mutate: registry did not start"; exit 1; }
berth_only "request mutation" || { finish; exit 0; }
echo "figure mutate seed $SEED (replay: MUTATE_SEED=$SEED MUTATE_SECONDS=$SECONDS_ MUTATE_MAX=$MAX)"

# the repository the mutated requests work on, with a referrer so that
# referrers?artifactType= has something to filter; $RANDOM (in mk_image's
# layers) seeded too, so that a seed replays the same digests
RANDOM=$SEED
R=mutate/fuzz
mk_image "$R" img || fail "api_mutate: pushing the image's blobs"
MD=$(dg "$T/img.json")
check "push $R:v1" push_manifest "$R" v1 "$T/img.json" "$OCI_MANIFEST"
mkblob empty '{}'
push_blob "$R" "$T/empty" || fail "api_mutate: pushing the empty config"
printf '{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.berth.mutate.test+json","config":{"mediaType":"%s","digest":"%s","size":2},"layers":[{"mediaType":"%s","digest":"%s","size":2}],"subject":{"mediaType":"%s","digest":"%s","size":%s}}' \
	"$OCI_MANIFEST" "$OCI_EMPTY" "$EMPTY_DIGEST" "$OCI_EMPTY" "$EMPTY_DIGEST" \
	"$OCI_MANIFEST" "$MD" "$(sz "$T/img.json")" >"$T/ref.json"
check "push a referrer of $R:v1" push_manifest "$R" "$(dg "$T/ref.json")" "$T/ref.json" "$OCI_MANIFEST"
req POST "/v2/$R/blobs/uploads/"
expect_status "an upload session for the mutated requests" 202
UP=$(loc_path)

# the canary: no mutated request names it
C=canary/keep
mk_image "$C" can || fail "api_mutate: pushing the canary's blobs"
CD=$(dg "$T/can.json")
check "push $C:v1" push_manifest "$C" v1 "$T/can.json" "$OCI_MANIFEST"


timeout $((SECONDS_ + 60)) python3 tests/fuzz/http_mutate.py "$PORT" "$SEED" "$SECONDS_" "$MAX" \
	"$R" v1 "$MD" "$UP" "$C" v1 "$CD" 2>&1 | report mutate

# Every connection of the probe is closed now: berth must be idle. CPU time
# (user + system, clock ticks) of the process over one quiet second.
cpu_ticks() { sed 's/.*) //' "/proc/$BERTH_PID/stat" | awk '{print $12 + $13}'; }
if [ -r "/proc/$BERTH_PID/stat" ]; then
	sleep 0.5
	t0=$(cpu_ticks)
	sleep 1
	busy=$(($(cpu_ticks) - t0))
	hz=$(getconf CLK_TCK)
	echo "figure mutate berth CPU over 1 idle second: $busy ticks of $hz"
	if [ $((busy * 10)) -le "$hz" ]; then
		ok "berth is idle once the clients are gone ($busy/$hz ticks in 1 s)"
	else
		fail "berth is idle once the clients are gone: $busy/$hz ticks of CPU in 1 s with no client (a worker spinning on a connection it holds?)"
	fi
fi

# the canary through req too (its bookkeeping: 5xx, API version header)
req GET "/v2/$C/manifests/v1"
expect_status "canary $C:v1 still served" 200
expect_hdr "canary $C:v1 has its digest" Docker-Content-Digest "$CD"
expect_eq "canary $C:v1 body is the pushed manifest" "$CD" "$(dg "$T/b")"
if kill -0 "$BERTH_PID" 2>/dev/null && ! grep -q '"status":5[0-9][0-9]' "$T/berth.log"; then
	ok "no 5xx in berth's access log"
else
	fail "no 5xx in berth's access log: $(grep -m3 '"status":5[0-9][0-9]' "$T/berth.log" | cut -c1-300 | tr '\n' ';')"
fi

finish
