#!/usr/bin/env bash
# The OCI distribution-spec conformance suite (prebuilt, third-party, kept
# outside the repository in ../shared/conformance/) against berth: all four
# workflows, one ok/FAIL line per spec plus one for the suite's summary.
# Without ../shared/conformance the script records a single skip line.
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
. tests/integration/lib.sh

suite=$root/../shared/conformance/run
if [ ! -e "$suite" ]; then
	ok "conformance skipped (../shared/conformance absent)"
	exit 0
fi

# A TERM from tests/run.sh's timeout must still run the EXIT trap.
trap 'exit 143' TERM INT

if ! start_registry; then
	fail "conformance: $REGISTRY_UNDER_TEST did not start"
	exit 1
fi

# Only the settings chosen here: none of the caller's OCI_* variables (a
# tag or digest "from the environment", credentials, debug output).
for v in $(compgen -e | grep '^OCI_'); do unset "$v"; done
out=$T/conformance
# The suite takes under a second against berth; the bounds only keep a hung
# server from holding up the test run.
OCI_AUTOMATIC_CROSSMOUNT=1 CONFORMANCE_TIMEOUT=40 \
	timeout -k 5 50 bash "$suite" "$URL" "$out" >"$T/run.out" 2>&1
rc=$?
summary=$(grep '^conformance: [0-9]* passed' "$T/run.out" | tail -1)

if [ ! -s "$out/junit.xml" ]; then
	fail "conformance: no results (run exited $rc): $(tail -5 "$T/run.out" | tr '\n' ';')"
else
	# One line per spec: "ok NAME", "FAIL NAME: message" or "skip NAME".
	# Specs of the same name (the suite repeats some setup steps) are
	# numbered so every line names one spec.
	if ! python3 - "$out/junit.xml" >"$T/specs" 2>&1 <<-'PY'
		import sys
		import xml.etree.ElementTree as ET

		PREFIX = "OCI Distribution Conformance Tests "
		PSEUDO = {"html custom reporter", "junit custom reporter"}
		seen = {}
		for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
		    name = tc.get("name", "")
		    status = tc.get("status")
		    if status is None:
		        tags = {c.tag for c in tc}
		        status = ("failed" if tags & {"failure", "error"}
		                  else "skipped" if "skipped" in tags else "passed")
		    if name in PSEUDO and status == "passed":
		        continue
		    if name.startswith(PREFIX):
		        name = name[len(PREFIX):]
		    seen[name] = seen.get(name, 0) + 1
		    if seen[name] > 1:
		        name += " #%d" % seen[name]
		    name = " ".join(name.split())
		    if status == "passed":
		        print("ok conformance: " + name)
		    elif status in ("skipped", "pending", "disabled"):
		        print("skip conformance: " + name)
		    else:
		        why = status
		        for c in tc:
		            if c.tag in ("failure", "error"):
		                why = " ".join((c.get("message") or c.text or status).split())
		                break
		        print("FAIL conformance: %s: %s" % (name, why[:300]))
	PY
	then
		fail "conformance: junit.xml unreadable: $(tail -3 "$T/specs" | tr '\n' ';')"
	fi
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok }" ;;
		"FAIL "*) fail "${line#FAIL }" ;;
		"skip "*) echo "$line" ;;
		esac
	done <"$T/specs"
	# The summary: run's own count, nothing failed, and something passed
	# (a suite that ran no spec proves nothing).
	sum=${summary#conformance: }
	if [ -z "$sum" ]; then
		fail "conformance summary: none (run exited $rc): $(tail -3 "$T/run.out" | tr '\n' ';')"
	elif [[ $sum != *" 0 failed"* ]]; then
		fail "conformance summary: $sum"
	elif [[ $sum == "0 passed"* ]]; then
		fail "conformance summary: no spec passed: $sum"
	elif [ "$rc" -ne 0 ]; then
		fail "conformance summary: run exited $rc: $sum"
	else
		ok "conformance summary: $sum"
	fi
	# the log goes away with $T: show the failed specs' blocks now
	sed -n '/^• \[FAILED\]/,/^---/p' "$out/conformance.log" 2>/dev/null | head -80 >&2
fi

if kill -0 "$BERTH_PID" 2>/dev/null; then ok "conformance: registry still running at the end"; else fail "conformance: registry died"; fi
stop_berth
if grep -q 'Sanitizer\|runtime error:' "$T/berth.log" 2>/dev/null; then
	fail "conformance: sanitizer report in the server log: $(grep -m3 'Sanitizer\|runtime error:\|#[0-3] ' "$T/berth.log" | tr '\n' ';')"
	grep -A30 -m1 'Sanitizer\|runtime error:' "$T/berth.log" >&2
else
	ok "conformance: no sanitizer report in the server log"
fi
