# Running `berth gc` in the CLI tests and checking what it printed (source
# after lib.sh). Every byte it printed is also appended to $T/all_out, so a
# test can search it for secrets.
: >"$T/all_out"

# gc_run ARGS...: runs berth gc; exit status in RC, stdout in OUT, stderr
# in ERR.
gc_run() {
	"$BERTH_BIN" gc "$@" >"$T/gc.out" 2>"$T/gc.err"
	RC=$?
	OUT=$(cat "$T/gc.out")
	ERR=$(cat "$T/gc.err")
	cat "$T/gc.out" "$T/gc.err" >>"$T/all_out"
}
nlines() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }
# expect_gc_fail NAME EXIT ERE: exit EXIT, nothing on stdout, one line
# "berth gc: …" on stderr matching ERE.
expect_gc_fail() {
	if [ "$RC" = "$2" ] && [ -z "$OUT" ] && [ "$(nlines "$ERR")" = 1 ] &&
		[[ $ERR == "berth gc: "* ]] && [[ $ERR =~ $3 ]]; then
		ok "$1"
	else
		fail "$1: want exit $2 and one line /$3/; got exit $RC, stdout '${OUT:0:200}', stderr '${ERR:0:400}'"
	fi
}
# expect_gc_line NAME ERE: exit 0, one line on stdout matching ERE, nothing
# on stderr.
expect_gc_line() {
	if [ "$RC" = 0 ] && [ -z "$ERR" ] && [ "$(nlines "$OUT")" = 1 ] && [[ $OUT =~ $2 ]]; then
		ok "$1"
	else
		fail "$1: want exit 0 and one line /$2/; got exit $RC, stdout '${OUT:0:300}', stderr '${ERR:0:400}'"
	fi
}
# expect_gc_json NAME JQ: exit 0, nothing on stderr, stdout is JSON for
# which the jq expression is true.
expect_gc_json() {
	if [ "$RC" = 0 ] && [ -z "$ERR" ] && printf '%s' "$OUT" | jq -e "$2" >/dev/null 2>&1; then
		ok "$1"
	else
		fail "$1: want exit 0 and JSON with $2; got exit $RC, stdout '${OUT:0:300}', stderr '${ERR:0:400}'"
	fi
}
