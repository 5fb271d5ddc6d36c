#!/usr/bin/env bash
# Crash consistency (tests/faults/crash.py): CRASH_KILLS (30) rounds of
# mixed pushes, deletes, tag moves and collection runs, each ended by
# SIGKILL, then `berth check`, a restart and the checks of everything
# acknowledged. `make soak` runs it with 1,000 shorter rounds. CRASH_SEED
# repeats a run (the seed is printed first); CRASH_ROUND_MAX and
# CRASH_LONG_ROUNDS shape the rounds, CRASH_WORKERS the writers (see
# crash.py).
. "$(dirname "$0")/../integration/lib.sh"
out=$T/crash.out
python3 "$(dirname "$0")/crash.py" "$BERTH_BIN" "$T" --kills "${CRASH_KILLS:-30}" \
	${CRASH_SEED:+--seed "$CRASH_SEED"} ${CRASH_ROUND_MAX:+--round-max "$CRASH_ROUND_MAX"} \
	${CRASH_LONG_ROUNDS:+--long-rounds "$CRASH_LONG_ROUNDS"} \
	${CRASH_WORKERS:+--workers "$CRASH_WORKERS"} >"$out" 2>&1
rc=$?
grep -E '^(ok|FAIL) ' "$out" | tee -a "$RESULTS"
grep -v -E '^(ok|FAIL) ' "$out"
if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
	fail "crash.driver exited $rc: $(tail -3 "$out" | tr '\n' ' ')"
	tail -20 "$T/berth.log"
fi
