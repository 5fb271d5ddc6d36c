#!/usr/bin/env bash
# Runs berth's test suite against one build directory and ends with the line
# "N passed, M failed".
# Usage: tests/run.sh [--unit-only|--no-clients] [--no-fuzz] BUILD
#   unit tests:        BUILD/tests/unit/*/test_*   (cmocka, one per file)
#   fuzz harnesses:    tests/fuzz/fuzz_*.c, built with clang into build/fuzz
#                      (tests/fuzz/run.sh --quick: seeds replayed, 3 s of
#                      fuzzing each; one test per harness; not with
#                      --unit-only or --no-fuzz)
#   integration tests: tests/integration/test_*.sh (real berth binary; the
#                      client_* ones drive docker, skopeo, podman, buildah, ctr;
#                      the image_* ones run the image of `make image`)
#   fault tests:       tests/faults/test_*.sh (kill -9 under load)
set -u
mode=all fuzz=1
while :; do
	case "${1:-}" in
	--unit-only) mode=unit; shift ;;
	--no-clients) mode=noclients; shift ;;
	--no-fuzz) fuzz=0; shift ;;
	*) break ;;
	esac
done
build=${1:?usage: tests/run.sh [--unit-only|--no-clients] [--no-fuzz] BUILD}
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0
failures=()

for t in $(find "$build/tests/unit" -type f -name 'test_*' -perm -u+x 2>/dev/null | sort); do
	name=${t#$build/}
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	p=${p:-0} f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed or sanitizer abort
	passed=$((passed + p)) failed=$((failed + f))
	[ "$f" -gt 0 ] && failures+=("$name")
done

# The fuzz harnesses (ASan + UBSan builds of their own): one test each.
if [ "$mode" != unit ] && [ "$fuzz" = 1 ]; then
	echo "=== fuzz"
	res=$(mktemp)
	"$root/tests/fuzz/run.sh" --quick "$root/build/fuzz" | tee "$res"
	p=$(grep -c '^ok ' "$res") f=$(grep -c '^FAIL ' "$res")
	passed=$((passed + p)) failed=$((failed + f))
	[ "$f" -gt 0 ] && failures+=("fuzz: $(grep '^FAIL ' "$res" | cut -c1-200 | head -5 | tr '\n' ';')")
	rm -f "$res"
fi

times=()
if [ "$mode" != unit ]; then
	for s in "$root"/tests/integration/test_*.sh "$root"/tests/faults/test_*.sh; do
		base=$(basename "$s" .sh)
		case "$base" in
		test_client_*) [ "$mode" = noclients ] && continue ;;
		# The image holds the release binary, whatever build is under
		# test: once per run is enough (make check sets it to 0).
		test_image_*) [ "$mode" = noclients ] || [ "${BERTH_IMAGE_TESTS:-1}" = 0 ] && continue ;;
		# deploy/ is checked by kustomize and node tools, not by the
		# berth binary: once per run is enough (make check sets it to 0).
		test_deploy_*) [ "${BERTH_DEPLOY_TESTS:-1}" = 0 ] && continue ;;
		esac
		res=$(mktemp)
		echo "=== $base"
		t0=$SECONDS
		BERTH_BIN="$build/berth" RESULTS="$res" timeout 900 bash "$s"
		rc=$?
		times+=("$((SECONDS - t0)) $base")
		p=$(grep -c '^ok ' "$res") f=$(grep -c '^FAIL ' "$res")
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "FAIL $base exited with $rc" ; f=1
		fi
		passed=$((passed + p)) failed=$((failed + f))
		[ "$f" -gt 0 ] && failures+=("$base: $(grep '^FAIL ' "$res" | head -5 | tr '\n' ';')")
		rm -f "$res"
	done
fi

# the slowest scripts, to keep the CI run short
if [ ${#times[@]} -gt 0 ]; then
	echo "slowest (s): $(printf '%s\n' "${times[@]}" | sort -rn | head -8 | tr '\n' ' ')"
fi
for x in "${failures[@]}"; do echo "failed: $x"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
