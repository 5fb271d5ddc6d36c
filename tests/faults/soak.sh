#!/usr/bin/env bash
# `make soak`: the crash loop with 1,000 kills (SOAK_KILLS), then the race
# storm of tests/integration/test_gc_race.sh for SOAK_RACE_SECONDS (120):
# pushes, deletes, re-tags and collection runs with pulls. Bounded: every
# round and every request has a deadline. Ends with "N passed, M failed".
# usage: tests/faults/soak.sh BERTH_BIN
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
res=$(mktemp)
t0=$SECONDS
BERTH_BIN=$bin RESULTS=$res CRASH_KILLS=${SOAK_KILLS:-1000} CRASH_ROUND_MAX=0.3 \
	CRASH_LONG_ROUNDS=0.1 CRASH_WORKERS=2 bash "$here/test_crash.sh" | grep -v '^ok '
echo "soak: crash loop took $((SECONDS - t0)) s"
t1=$SECONDS
BERTH_BIN=$bin RESULTS=$res GC_RACE_SECONDS=${SOAK_RACE_SECONDS:-120} \
	bash "$here/../integration/test_gc_race.sh" | grep -v '^ok '
echo "soak: race storm took $((SECONDS - t1)) s"
p=$(grep -c '^ok ' "$res") f=$(grep -c '^FAIL ' "$res")
rm -f "$res"
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
