#!/usr/bin/env bash
# Runs the libFuzzer harnesses (tests/fuzz/fuzz_*.c) built into FUZZDIR by
# `make fuzz-build`, each on its seed corpus tests/fuzz/corpus/<name>/.
#
#   tests/fuzz/run.sh --quick [FUZZDIR]   (tests/run.sh, in `make test`)
#       builds the harnesses (make fuzz-build; clang is required: without
#       it this fails, it does not skip), replays every seed, then fuzzes
#       each harness for FUZZ_QUICK_SECONDS (3) on a scratch corpus. One
#       line per harness, "ok fuzz_<name> ..." or "FAIL fuzz_<name> ...",
#       for tests/run.sh to count.
#   tests/fuzz/run.sh --long [FUZZDIR]    (make fuzz)
#       runs each harness for FUZZ_RUNS executions (10000000) or
#       FUZZ_SECONDS (0: no time bound), whichever comes first, on FUZZDIR/corpus/<name>
#       (kept between runs; new inputs go there, never into tests/) plus the
#       seeds; with FUZZ_MERGE=1, then merges into tests/fuzz/corpus/<name>
#       what adds coverage. Prints per harness: executions, exec/s, corpus
#       size, result; exits non-zero when any harness failed.
#
# FUZZ_JOBS (2) harnesses run at a time. FUZZ_ONLY="route jwt" runs only
# those. Logs: FUZZDIR/logs/<name>.{quick,long}.log; a crashing input is
# written to FUZZDIR/artifacts/<name>/ (reproduce: FUZZDIR/fuzz_<name> FILE).
set -u
mode=quick
case "${1:-}" in
--quick) shift ;;
--long) mode=long; shift ;;
esac
root=$(cd "$(dirname "$0")/../.." && pwd)
fuzz=${1:-$root/build/fuzz}
jobs=${FUZZ_JOBS:-2}
quick_secs=${FUZZ_QUICK_SECONDS:-3}
secs=${FUZZ_SECONDS:-0}
runs=${FUZZ_RUNS:-10000000}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Largest input each harness is given (bytes).
max_len() {
	case "$1" in
	manifest) echo 65536 ;;
	jwt | users | policy | pins | ttl) echo 16384 ;;
	token) echo 20480 ;;
	route) echo 2048 ;;
	scope) echo 1024 ;;
	range) echo 512 ;;
	*) echo 4096 ;;
	esac
}

names=()
for src in "$root"/tests/fuzz/fuzz_*.c; do
	n=$(basename "$src" .c)
	n=${n#fuzz_}
	if [ -n "${FUZZ_ONLY:-}" ] && ! [[ " $FUZZ_ONLY " == *" $n "* ]]; then
		continue
	fi
	names+=("$n")
done

if [ "$mode" = quick ]; then
	if ! command -v clang-14 >/dev/null && ! command -v clang >/dev/null; then
		echo "FAIL fuzz: clang is not installed (make deps-test installs clang-14 and libclang-rt-14-dev)"
		exit 1
	fi
	mkdir -p "$fuzz"
	if ! make -C "$root" fuzz-build >"$fuzz/build.log" 2>&1; then
		tail -30 "$fuzz/build.log"
		echo "FAIL fuzz: make fuzz-build failed (log: $fuzz/build.log)"
		exit 1
	fi
fi
mkdir -p "$fuzz/logs" "$fuzz/results"

# stat NAME LOG: "executions exec/s corpus" from libFuzzer's final stats.
stats() {
	local ex eps corp
	ex=$(sed -n 's/^stat::number_of_executed_units: *//p' "$2" | tail -1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$2" | tail -1)
	corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' "$2" | tail -1)
	echo "${ex:-?} ${eps:-?} ${corp:-?}"
}

# why LOG RC: what went wrong: the report's first line, the first frame in
# berth's code or a harness, and the input.
why() {
	local w frame seed art
	w=$(grep -m1 -E '^SUMMARY: |ERROR: libFuzzer|runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$1")
	frame=$(grep -m1 -oE ' in [A-Za-z_0-9]+ [^ ]*/(tests/fuzz|registry|auth|common|gc|storage)/[^ ]+' "$1")
	seed=$(grep '^Running: ' "$1" | tail -1 | sed 's/^Running: //')
	art=$(sed -n 's/.*Test unit written to //p' "$1" | tail -1)
	echo "${w:-exit status $2}${frame:+ at${frame# in}}${seed:+ (input: $seed)}${art:+ (input: $art)}"
}

run_quick() {
	local n=$1 bin=$fuzz/fuzz_$1 seeds=$root/tests/fuzz/corpus/$1
	local log=$fuzz/logs/$1.quick.log work=$fuzz/corpus-quick/$1
	local opts=(-max_len="$(max_len "$n")" -timeout=10
		-artifact_prefix="$fuzz/artifacts/$n/")
	local nseeds rc s
	mkdir -p "$fuzz/artifacts/$n"
	rm -rf "$work" && mkdir -p "$work"
	nseeds=$(find "$seeds" -type f 2>/dev/null | wc -l)
	if [ "$nseeds" -eq 0 ]; then
		echo "FAIL fuzz_$n: no seed corpus in tests/fuzz/corpus/$n"
		return 1
	fi
	# Replay: each seed once, by name (a crash names its input).
	"$bin" "${opts[@]}" "$seeds"/* >"$log" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL fuzz_$n: replay of $nseeds seeds: $(why "$log" "$rc") (log: $log)"
		return 1
	fi
	"$bin" "${opts[@]}" -max_total_time="$quick_secs" -print_final_stats=1 \
		"$work" "$seeds" >>"$log" 2>&1
	rc=$?
	read -r -a s <<<"$(stats "$n" "$log")"
	if [ "$rc" -ne 0 ]; then
		echo "FAIL fuzz_$n: $(why "$log" "$rc") (log: $log)"
		return 1
	fi
	echo "ok fuzz_$n: $nseeds seeds replayed, ${s[0]} executions in ${quick_secs} s (${s[1]}/s), corpus ${s[2]}"
}

run_long() {
	local n=$1 bin=$fuzz/fuzz_$1 seeds=$root/tests/fuzz/corpus/$1
	local log=$fuzz/logs/$1.long.log work=$fuzz/corpus/$1
	local opts=(-max_len="$(max_len "$n")" -timeout=10
		-artifact_prefix="$fuzz/artifacts/$n/")
	local rc s files res
	mkdir -p "$work" "$fuzz/artifacts/$n"
	"$bin" "${opts[@]}" -runs="$runs" -max_total_time="$secs" \
		-print_final_stats=1 "$work" "$seeds" >"$log" 2>&1
	rc=$?
	read -r -a s <<<"$(stats "$n" "$log")"
	files=$(find "$work" -type f | wc -l)
	if [ "$rc" -eq 0 ]; then
		res=ok
		if [ "${FUZZ_MERGE:-0}" = 1 ]; then
			"$bin" -merge=1 "${opts[@]}" "$seeds" "$work" >>"$log" 2>&1 &&
				res="ok, merged: $(find "$seeds" -type f | wc -l) seeds"
		fi
	else
		res="FAIL: $(why "$log" "$rc") (log: $log)"
	fi
	printf '%-9s %12s %9s %7s %7s  %s\n' "$n" "${s[0]}" "${s[1]}" "${s[2]}" \
		"$files" "$res"
	[ "$rc" -eq 0 ]
}

# Runs "$1 NAME" for every harness, $jobs at a time; each one's output
# goes to results/NAME, printed in order at the end.
pool() {
	local f=$1 n running=0 fail=0
	for n in "${names[@]}"; do
		{
			"$f" "$n" >"$fuzz/results/$n" 2>&1
			echo $? >"$fuzz/results/$n.rc"
		} &
		running=$((running + 1))
		if [ "$running" -ge "$jobs" ]; then
			wait -n
			running=$((running - 1))
		fi
	done
	wait
	for n in "${names[@]}"; do
		cat "$fuzz/results/$n"
		[ "$(cat "$fuzz/results/$n.rc")" = 0 ] || fail=1
	done
	return $fail
}

if [ "$mode" = quick ]; then
	pool run_quick
	exit $?
fi
echo "fuzzing ${#names[@]} harnesses: $runs executions or $secs s each, $jobs at a time"
printf '%-9s %12s %9s %7s %7s  %s\n' harness executions exec/s corpus files result
pool run_long
