# shellcheck shell=bash
# (ADDR, MAINPID and PIDS are run.sh's associative arrays.)
# shellcheck disable=SC2154,SC2034
# Retention benchmarks, sourced by run.sh (which provides log, die,
# free_port, wait_http, cpu_ticks, kv, fmt, ratio, check, the temp dir $W,
# $BUILD, $LOADGEN, $BERTH_BIN, $ACCEPT, $CONNS, $THREADS, $CLK_TCK and the
# cleanup trap). ret_main runs the phases and prints a "Retention" section.
#
#   expire  BENCH_RET_REPOS (10,000) repositories x BENCH_RET_TAGS (10) tags
#           filled by gcfill, of which per repository BENCH_RET_TTL_TAGS (1)
#           carry a TTL label of 1 s and BENCH_RET_POLICY_TAGS (1) match a
#           policy rule "expire_after": "1s" (20 % in all). berth serves it
#           with --policy and --gc-grace 1; manifest GETs by tag of tags that
#           stay run in 1 s slices; run 1 (POST /v2/_berth/gc) expires the
#           tags and collects what is due (an image nobody read for the
#           grace is due as soon as its tag goes), run 2 past the grace
#           collects whatever run 1 left waiting. Reported: each run's
#           duration and counts, GET p99 and req/s in the run against the
#           quiet slices just before it, bytes freed.
#   storm   the same data directory afterwards: manifest GETs by tag of
#           BENCH_RET_STORM_TAGS (10,000) distinct tags for
#           BENCH_RET_STORM_SECONDS (10) against berth --pull-tracking on,
#           then off (alternating, BENCH_RET_STORM_RUNS (3) runs each, a new
#           server per run): req/s and the index write transactions the
#           storm caused (berth_index_write_txns_total and
#           berth_index_flush_txns_total).
#
# Knobs: BENCH_RET_PHASES ("expire storm"), BENCH_RET_REPOS, BENCH_RET_TAGS,
# BENCH_RET_TTL_TAGS, BENCH_RET_POLICY_TAGS, BENCH_RET_LOAD_TAGS (64),
# BENCH_RET_QUIET_SLICES (5), BENCH_RET_STORM_TAGS, BENCH_RET_STORM_SECONDS,
# BENCH_RET_STORM_RUNS.

RET_PHASES=${BENCH_RET_PHASES:-expire storm}
RET_REPOS=${BENCH_RET_REPOS:-10000}
RET_TAGS=${BENCH_RET_TAGS:-10}
RET_TTL_TAGS=${BENCH_RET_TTL_TAGS:-1}
RET_POLICY_TAGS=${BENCH_RET_POLICY_TAGS:-1}
RET_LOAD_TAGS=${BENCH_RET_LOAD_TAGS:-64}
RET_QUIET=${BENCH_RET_QUIET_SLICES:-5}
RET_STORM_TAGS=${BENCH_RET_STORM_TAGS:-10000}
RET_STORM_SECONDS=${BENCH_RET_STORM_SECONDS:-10}
RET_STORM_RUNS=${BENCH_RET_STORM_RUNS:-3}
RET_GRACE=1
RET_FILL=$BUILD/tests/bench/gcfill
RET_DATA=$W/ret-data
RET_RES=$W/res/ret
RET_NOTES=$W/res/ret_notes
declare -A RV # figures for the report

ret_note() { echo "- $*" >>"$RET_NOTES"; log "retention: $*"; }
ret_raw() { echo "$*" >>"$RET_RES"; log "retention: $*"; }

# ret_start TRACKING [ARGS...]: berth on the retention data directory with
# --pull-tracking TRACKING, then 1.2 s: a start counts as a read of every
# item, so nothing is collectable before the grace has passed. Three tries
# (a port free_port found may be taken before the server binds it).
ret_start() {
	local port try tracking=$1
	shift
	for try in 1 2 3; do
		port=$(free_port) || return 1
		ADDR[ret_berth]=127.0.0.1:$port
		"$BERTH_BIN" serve --listen "${ADDR[ret_berth]}" --data "$RET_DATA" \
			--gc-grace "$RET_GRACE" --pull-tracking "$tracking" --access-log off "$@" \
			>>"$W/ret_berth.log" 2>&1 &
		MAINPID[ret_berth]=$!
		PIDS[ret_berth]=$!
		if wait_http ret_berth; then
			sleep 1.2
			return 0
		fi
		log "retention: berth did not start (try $try): $(tail -n 3 "$W/ret_berth.log" | tr '\n' ' ')"
		ret_stop
	done
	return 1
}

ret_stop() {
	local p=${MAINPID[ret_berth]:-}
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "MAINPID[ret_berth]" "PIDS[ret_berth]"
}

# ret_post OUTFILE: one run; prints curl's time_total in seconds.
ret_post() {
	curl -sS -m 900 -o "$1" -w '%{http_code} %{time_total}' -X POST \
		"http://${ADDR[ret_berth]}/v2/_berth/gc" | awk '$1 == 200 {print $2; ok = 1} END {exit !ok}'
}

# ret_txns: "write=N flush=M" from /metrics.
ret_txns() {
	curl -sS -m 30 "http://${ADDR[ret_berth]}/metrics" |
		awk '$1 == "berth_index_write_txns_total" {w = $2} $1 == "berth_index_flush_txns_total" {f = $2}
		     END {if (w == "" || f == "") exit 1; print "write=" w " flush=" f}'
}

ret_metric() { # NAME: one unlabelled metric's value
	curl -sS -m 30 "http://${ADDR[ret_berth]}/metrics" | awk -v n="$1" '$1 == n {print $2; exit}'
}

ret_median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }
ret_idle_ticks() { awk '$1 == "cpu" {print $5 + $6; exit}' /proc/stat; }
# Busy ticks of the whole machine (user, nice, system, irq, softirq) and
# ticks stolen by the hypervisor.
ret_busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
ret_steal_ticks() { awk '$1 == "cpu" {print $9; exit}' /proc/stat; }
# ret_other BUSY_CORES SERVER_CORES CLIENT_CPU_S ELAPSED_S: cores busy with
# neither the server nor loadgen (kernel threads: writeback, discard; or
# whatever else runs on the machine).
ret_other() { awk -v b="$1" -v s="$2" -v c="$3" -v e="$4" 'BEGIN{if (e > 0) printf "%.2f", b - s - c / e; else print ""}'; }
ret_cores() { awk -v a="$1" -v b="$2" -v h="$CLK_TCK" -v p="$3" -v q="$4" 'BEGIN{printf "%.2f", (b - a) / h / ((q - p) / 1e9)}'; }

# ret_slices OUT STOP PATHSFILE: 1 s loadgen runs back to back until the
# file STOP exists (at most 900), one line each with start and end (ns).
ret_slices() {
	local out=$1 stop=$2 paths=$3 i=0 t0 t1 line
	while [ ! -e "$stop" ] && [ "$i" -lt 900 ]; do
		t0=$(date +%s%N)
		line=$("$LOADGEN" load -a "${ADDR[ret_berth]}" -l ret_berth -c "$CONNS" -t "$THREADS" \
			-n 100000000 -d 1 -H "$ACCEPT" -f "$paths") || line="failed=1 errors=1"
		t1=$(date +%s%N)
		echo "t0=$t0 t1=$t1 $line" >>"$out"
		i=$((i + 1))
	done
}

# ret_agg FILE FROM TO: requests/elapsed, mean p99 and error sum of the
# slices of FILE that lie within [FROM, TO] ns.
ret_agg() {
	awk -v from="$2" -v to="$3" '
	{ delete kv; for (i = 1; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
	  if (kv["t0"] < from || kv["t1"] > to) next
	  n++; req += kv["requests"]; el += kv["elapsed_s"]; p99 += kv["p99_us"]
	  err += kv["errors"]; cl += kv["client_cpu_s"] }
	END { if (n && el > 0) printf "slices=%d rps=%.0f p99_ms=%.2f errors=%d elapsed_s=%.2f client_cpu_s=%.2f\n", n, req / el, p99 / n / 1000, err, el, cl
	      else print "slices=0" }' "$1"
}

# ret_measured_run N: slices start; after RET_QUIET of them, POST (run N)
# with the slices still going; they stop when the run has answered. The
# quiet window is the RET_QUIET slices before the POST, the run's window
# the slices wholly inside it (all slices overlapping it if fewer than two
# fit, and the notes say so).
ret_measured_run() {
	local n=$1
	local slices=$W/ret-run$n.slices stop=$W/ret-run$n.stop rep=$W/ret-run$n.json
	local lp p0 p1 c0 c1 i0 i1 b0 b1 s0 s1 q0 q1 qc0 qc1 qi0 qi1 qb0 qb1 qs0 qs1 wall tx0 tx1 agg k
	: >"$slices"
	rm -f "$stop"
	tx0=$(ret_txns) || tx0=
	ret_slices "$slices" "$stop" "$W/ret-load.paths" &
	lp=$!
	# The first slice warms up (connections, page cache) and is not
	# counted: the quiet window starts where it ended.
	for _ in $(seq 1 200); do [ "$(wc -l <"$slices")" -ge 1 ] && break; sleep 0.05; done
	q0=$(awk 'NR == 1 {sub(/^t0=[0-9]+ t1=/, ""); print $1}' "$slices")
	[ -n "$q0" ] || q0=$(date +%s%N)
	qc0=$(cpu_ticks ret_berth)
	qi0=$(ret_idle_ticks)
	qb0=$(ret_busy_ticks)
	qs0=$(ret_steal_ticks)
	for _ in $(seq 1 $((RET_QUIET * 40 + 100))); do
		[ "$(wc -l <"$slices")" -ge $((RET_QUIET + 1)) ] && break
		sleep 0.05
	done
	q1=$(date +%s%N)
	qc1=$(cpu_ticks ret_berth)
	qi1=$(ret_idle_ticks)
	qb1=$(ret_busy_ticks)
	qs1=$(ret_steal_ticks)
	c0=$(cpu_ticks ret_berth)
	i0=$(ret_idle_ticks)
	b0=$(ret_busy_ticks)
	s0=$(ret_steal_ticks)
	p0=$(date +%s%N)
	wall=$(ret_post "$rep") || wall=
	p1=$(date +%s%N)
	c1=$(cpu_ticks ret_berth)
	i1=$(ret_idle_ticks)
	b1=$(ret_busy_ticks)
	s1=$(ret_steal_ticks)
	touch "$stop"
	wait "$lp" || true
	tx1=$(ret_txns) || tx1=
	[ -n "$wall" ] || { log "retention: POST of run $n failed"; return 1; }
	RV[run$n.quiet]=$(ret_agg "$slices" "$q0" "$q1")
	RV[run$n.cpu_quiet]=$(ret_cores "$qc0" "$qc1" "$q0" "$q1")
	RV[run$n.idle_quiet]=$(ret_cores "$qi0" "$qi1" "$q0" "$q1")
	RV[run$n.steal_quiet]=$(ret_cores "$qs0" "$qs1" "$q0" "$q1")
	RV[run$n.other_quiet]=$(ret_other "$(ret_cores "$qb0" "$qb1" "$q0" "$q1")" "${RV[run$n.cpu_quiet]}" \
		"$(kv "${RV[run$n.quiet]}" client_cpu_s)" "$(kv "${RV[run$n.quiet]}" elapsed_s)")
	agg=$(ret_agg "$slices" $((p0 - 100000000)) $((p1 + 50000000)))
	k=$(kv "$agg" slices)
	if [ "$k" -lt 2 ]; then
		agg=$(ret_agg "$slices" $((p0 - 1100000000)) $((p1 + 1100000000)))
		ret_note "run $n lasted $(fmt "$(jq -r '.duration_ms / 1000' "$rep")" 3) s, shorter than two 1 s load slices: its GET figures cover the $(kv "$agg" slices) slices overlapping it (load from before and after the run included)"
	fi
	RV[run$n.during]=$agg
	# CPU over the run's own window (clock ticks: meaningless for a run
	# much shorter than a slice).
	if [ "$k" -ge 2 ]; then
		RV[run$n.cpu_during]=$(ret_cores "$c0" "$c1" "$p0" "$p1")
		RV[run$n.idle_during]=$(ret_cores "$i0" "$i1" "$p0" "$p1")
		RV[run$n.steal_during]=$(ret_cores "$s0" "$s1" "$p0" "$p1")
		RV[run$n.other_during]=$(ret_other "$(ret_cores "$b0" "$b1" "$p0" "$p1")" "${RV[run$n.cpu_during]}" \
			"$(kv "$agg" client_cpu_s)" "$(kv "$agg" elapsed_s)")
	else
		RV[run$n.cpu_during]='' RV[run$n.idle_during]='' RV[run$n.steal_during]='' RV[run$n.other_during]=''
	fi
	RV[run$n.wall_s]=$wall
	RV[run$n.dur_s]=$(jq -r '.duration_ms / 1000' "$rep")
	RV[run$n.expired]=$(jq -r '.tags_expired | length' "$rep")
	RV[run$n.expired_ttl]=$(jq -r '[.tags_expired[] | select(.reason | startswith("ttl label"))] | length' "$rep")
	RV[run$n.expired_policy]=$(jq -r '[.tags_expired[] | select(.reason | startswith("policy rule"))] | length' "$rep")
	RV[run$n.expired_bytes]=$(jq -r '[.tags_expired[].bytes] | add // 0' "$rep")
	RV[run$n.manifests]=$(jq -r .manifests.deleted "$rep")
	RV[run$n.blobs]=$(jq -r .blobs.deleted "$rep")
	RV[run$n.bytes_freed]=$(jq -r .bytes_freed "$rep")
	RV[run$n.waiting]=$(jq -r .waiting.count "$rep")
	RV[run$n.wtx]=$(($(kv "$tx1" write) - $(kv "$tx0" write)))
	ret_raw "phase=expire run=$n wall_s=$wall $(jq -r '"duration_ms=\(.duration_ms) tags_expired=\(.tags_expired | length) manifests=\(.manifests.deleted) blobs=\(.blobs.deleted) blob_bytes=\(.blobs.bytes) bytes_freed=\(.bytes_freed) waiting=\(.waiting.count) queue=\(.queue)"' "$rep") expired_ttl=${RV[run$n.expired_ttl]} expired_policy=${RV[run$n.expired_policy]} expired_tag_bytes=${RV[run$n.expired_bytes]} index_write_txns=${RV[run$n.wtx]}"
	ret_raw "phase=expire_get run=$n window=quiet server_cpu=${RV[run$n.cpu_quiet]} machine_idle=${RV[run$n.idle_quiet]} steal=${RV[run$n.steal_quiet]} other_cpu=${RV[run$n.other_quiet]} ${RV[run$n.quiet]}"
	ret_raw "phase=expire_get run=$n window=during server_cpu=${RV[run$n.cpu_during]} machine_idle=${RV[run$n.idle_during]} steal=${RV[run$n.steal_during]} other_cpu=${RV[run$n.other_during]} $agg"
	sed "s/^/phase=expire_slice run=$n /" "$slices" >>"$RET_RES"
}

ret_fill() {
	local line total=$((RET_REPOS * RET_TAGS)) t0
	t0=$(date +%s%N)
	line=$(timeout 1800 "$RET_FILL" --data "$RET_DATA" --images "$total" --repos "$RET_REPOS" \
		--ttl $((RET_REPOS * RET_TTL_TAGS)) --ttl-seconds 1 \
		--policy-tags $((RET_REPOS * RET_POLICY_TAGS)) --list "$W/ret.list" 2>>"$W/gcfill.log") || {
		log "retention: gcfill failed: $(tail -n 3 "$W/gcfill.log" | tr '\n' ' ')"
		return 1
	}
	RV[fill_s]=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN{printf "%.1f", (b - a) / 1e9}')
	ret_raw "phase=fill repos=$RET_REPOS tags=$RET_TAGS $line"
	# Every TTL (1 s from its push) and policy expiry (1 s) must be past.
	sleep 2
}

ret_phase_expire() {
	local i staying=$(((RET_TAGS - RET_TTL_TAGS - RET_POLICY_TAGS) * RET_REPOS)) n got want
	local b0 b1
	cat >"$W/ret-policy.json" <<-EOF
	{"rules": [
	  {"repositories": ["bench/**"], "tags": ["p*"], "expire_after": "1s"},
	  {"repositories": ["bench/**"], "tags": ["t*"], "expire_after": "30d", "idle_after": "30d"}
	]}
	EOF
	n=$((RET_LOAD_TAGS < staying ? RET_LOAD_TAGS : staying))
	# Tags that stay: t<i> for i below the TTL and policy images, spread
	# over the repositories (image i is in bench/r<i % repos>).
	for i in $(seq 0 $((n - 1))); do
		echo "GET:/v2/bench/r$((i % RET_REPOS))/manifests/t$i"
	done >"$W/ret-load.paths"
	ret_start on --policy "$W/ret-policy.json" || return 1
	b0=$(ret_metric berth_storage_blob_bytes)
	ret_measured_run 1 || { ret_stop; return 1; }
	# The quiet slices before run 2 are longer than the grace: whatever
	# run 1 left waiting is due.
	ret_measured_run 2 || { ret_stop; return 1; }
	b1=$(ret_metric berth_storage_blob_bytes)
	RV[blob_bytes_before]=$b0
	RV[blob_bytes_after]=$b1
	# What went must be exactly the TTL and policy images.
	got=$(jq -r '.deleted[] | "\(.kind) \(.repository) \(.digest)"' "$W/ret-run1.json" "$W/ret-run2.json" | sort)
	want=$(awk '{print ($1 == "blob" ? "blob  " $3 : $0)}' "$W/ret.list" | sort)
	if [ "$got" = "$want" ]; then
		RV[exact]=yes
	else
		RV[exact]=no
		ret_note "the two runs did not delete exactly the expired images' manifests and blobs ($(comm -3 <(echo "$want") <(echo "$got") | wc -l) lines differ)"
	fi
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "http://${ADDR[ret_berth]}/v2/bench/r0/manifests/t0")" = 200 ] ||
		ret_note "a tag that stays no longer answers 200 after the runs"
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "http://${ADDR[ret_berth]}/v2/bench/r0/manifests/t$(((RET_TAGS - 1) * RET_REPOS))")" = 404 ] ||
		ret_note "a tag with an expired TTL label still answers after the runs"
	ret_stop
	ret_raw "phase=expire storage_blob_bytes_before=$b0 after=$b1 exact=${RV[exact]}"
}

# One storm: berth --pull-tracking MODE, 1 s warm-up, 6 s (a flush of the
# warm-up's reads), then STORM_SECONDS of GETs; the index's write txns
# from just before to just after the storm, and to 6 s after it (the
# storm's last reads are flushed at the next 5 s tick).
ret_storm_one() { # MODE RUN
	local mode=$1 run=$2 line tx0 tx1 tx2 c0 c1 b0 b1 s0 s1 t0 t1 rps
	ret_start "$mode" || return 1
	"$LOADGEN" load -a "${ADDR[ret_berth]}" -c "$CONNS" -t "$THREADS" -d 1 -H "$ACCEPT" \
		-f "$W/ret-storm.paths" >/dev/null || true
	sleep 6
	tx0=$(ret_txns) || { ret_stop; return 1; }
	c0=$(cpu_ticks ret_berth)
	b0=$(ret_busy_ticks)
	s0=$(ret_steal_ticks)
	t0=$(date +%s%N)
	line=$("$LOADGEN" load -a "${ADDR[ret_berth]}" -l "tracking_$mode" -c "$CONNS" -t "$THREADS" \
		-n 100000000 -d "$RET_STORM_SECONDS" -H "$ACCEPT" -f "$W/ret-storm.paths") || line="failed=1 errors=1"
	t1=$(date +%s%N)
	c1=$(cpu_ticks ret_berth)
	b1=$(ret_busy_ticks)
	s1=$(ret_steal_ticks)
	tx1=$(ret_txns) || tx1=
	sleep 6
	tx2=$(ret_txns) || tx2=
	ret_stop
	[ "$(kv "$line" errors)" = 0 ] || ret_note "storm tracking $mode run $run: $(kv "$line" errors) errors"
	rps=$(kv "$line" rps)
	ret_raw "phase=storm tracking=$mode run=$run write_txns_storm=$(($(kv "$tx1" write) - $(kv "$tx0" write))) flush_txns_storm=$(($(kv "$tx1" flush) - $(kv "$tx0" flush))) write_txns_6s_after=$(($(kv "$tx2" write) - $(kv "$tx0" write))) flush_txns_6s_after=$(($(kv "$tx2" flush) - $(kv "$tx0" flush))) server_cpu_us_per_req=$(awk -v c=$((c1 - c0)) -v h="$CLK_TCK" -v r="$(kv "$line" requests)" 'BEGIN{if (r > 0) printf "%.1f", c / h * 1e6 / r}') server_cpu=$(ret_cores "$c0" "$c1" "$t0" "$t1") other_cpu=$(ret_other "$(ret_cores "$b0" "$b1" "$t0" "$t1")" "$(ret_cores "$c0" "$c1" "$t0" "$t1")" "$(kv "$line" client_cpu_s)" "$(kv "$line" elapsed_s)") steal=$(ret_cores "$s0" "$s1" "$t0" "$t1") $line"
}

ret_phase_storm() {
	local staying=$(((RET_TAGS - RET_TTL_TAGS - RET_POLICY_TAGS) * RET_REPOS)) n i run mode
	n=$((RET_STORM_TAGS < staying ? RET_STORM_TAGS : staying))
	[ "$n" -le 65536 ] || n=65536
	RV[storm_tags]=$n
	for i in $(seq 0 $((n - 1))); do
		echo "GET:/v2/bench/r$((i % RET_REPOS))/manifests/t$i"
	done >"$W/ret-storm.paths"
	# on off, off on, on off, ...: neither mode always goes first.
	for run in $(seq 1 "$RET_STORM_RUNS"); do
		if [ $((run % 2)) = 1 ]; then set -- on off; else set -- off on; fi
		for mode in "$@"; do
			ret_storm_one "$mode" "$run" || { ret_note "storm tracking $mode run $run failed"; return 1; }
		done
	done
}

# Median (and best) of key K over the storm runs of MODE.
ret_storm_stat() { # MODE KEY median|max
	grep "^phase=storm tracking=$1 " "$RET_RES" | while read -r l; do kv "$l" "$2"; done |
		if [ "$3" = max ]; then sort -g | tail -n 1; else ret_median; fi
}

ret_report() {
	local q1=${RV[run1.quiet]:-} d1=${RV[run1.during]:-} q2=${RV[run2.quiet]:-} d2=${RV[run2.during]:-}
	local on off onb offb total_s
	echo
	echo "## Retention"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs. berth: \`serve --gc-grace $RET_GRACE --policy FILE --access-log off\`."
	echo "Data filled offline by gcfill in ${RV[fill_s]:-—} s: $RET_REPOS repositories x $RET_TAGS tags (one image each: config + 2 layers"
	echo "of 64..512 bytes); per repository $RET_TTL_TAGS tag(s) with the TTL label \`berth.expires-after: 1s\` and $RET_POLICY_TAGS"
	echo "tag(s) \`p<i>\` that the policy rule \`{\"repositories\": [\"bench/**\"], \"tags\": [\"p*\"], \"expire_after\": \"1s\"}\`"
	echo "expires (a second rule gives every other tag \`expire_after\`/\`idle_after\` 30d, so every tag is judged)."
	echo "A run is POST /v2/_berth/gc: it expires the tags, then collects what is due. An image nobody read"
	echo "within the grace is due as soon as its tag goes, so run 1 expires and collects; run 2, past the grace,"
	echo "collects whatever run 1 left waiting."
	[ -s "$RET_NOTES" ] && { echo; cat "$RET_NOTES"; }
	echo
	echo "### Expiry and collection"
	echo
	echo "| | run 1 | run 2 (past the grace) |"
	echo "| --- | ---: | ---: |"
	echo "| run duration (duration_ms), s | $(fmt "${RV[run1.dur_s]:-}" 2) | $(fmt "${RV[run2.dur_s]:-}" 2) |"
	echo "| POST wall time, s | $(fmt "${RV[run1.wall_s]:-}" 2) | $(fmt "${RV[run2.wall_s]:-}" 2) |"
	echo "| tags expired (TTL label / policy) | ${RV[run1.expired]:-—} (${RV[run1.expired_ttl]:-—} / ${RV[run1.expired_policy]:-—}) | ${RV[run2.expired]:-—} |"
	echo "| manifests deleted | ${RV[run1.manifests]:-—} | ${RV[run2.manifests]:-—} |"
	echo "| blobs deleted | ${RV[run1.blobs]:-—} | ${RV[run2.blobs]:-—} |"
	echo "| blob bytes freed | ${RV[run1.bytes_freed]:-—} | ${RV[run2.bytes_freed]:-—} |"
	echo "| items queued, not yet due, after the run | ${RV[run1.waiting]:-—} | ${RV[run2.waiting]:-—} |"
	echo "| index write txns during the run | ${RV[run1.wtx]:-—} | ${RV[run2.wtx]:-—} |"
	echo
	total_s=$(awk -v a="${RV[run1.dur_s]:-}" -v b="${RV[run2.dur_s]:-}" 'BEGIN{if (a != "" && b != "") printf "%.2f", a + b}')
	echo "Expiry + collection: ${total_s:-—} s of run time (both runs). Blob bytes the expired tags held alone"
	echo "(run 1's tags_expired[].bytes): ${RV[run1.expired_bytes]:-—}; freed by run 1 + run 2:"
	echo "$(( ${RV[run1.bytes_freed]:-0} + ${RV[run2.bytes_freed]:-0} )); berth_storage_blob_bytes ${RV[blob_bytes_before]:-—} before, ${RV[blob_bytes_after]:-—} after."
	echo "The two runs deleted exactly the expired images' manifests and blobs: ${RV[exact]:-—}."
	echo
	echo "Manifest GET by tag ($RET_LOAD_TAGS tags that stay, $CONNS keep-alive connections) in 1 s loadgen slices:"
	echo "the $RET_QUIET slices before each POST (quiet) against the slices wholly inside the run. p99 is the mean of"
	echo "the slices' p99; server CPU is cores busy."
	echo
	echo "| | run 1 quiet | run 1 during | during/quiet | run 2 quiet | run 2 during | during/quiet |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	echo "| slices | $(kv "$q1" slices) | $(kv "$d1" slices) | | $(kv "$q2" slices) | $(kv "$d2" slices) | |"
	echo "| req/s | $(fmt "$(kv "$q1" rps)" 0) | $(fmt "$(kv "$d1" rps)" 0) | $(ratio "$(kv "$d1" rps)" "$(kv "$q1" rps)") | $(fmt "$(kv "$q2" rps)" 0) | $(fmt "$(kv "$d2" rps)" 0) | $(ratio "$(kv "$d2" rps)" "$(kv "$q2" rps)") |"
	echo "| p99 ms | $(fmt "$(kv "$q1" p99_ms)" 2) | $(fmt "$(kv "$d1" p99_ms)" 2) | $(ratio "$(kv "$d1" p99_ms)" "$(kv "$q1" p99_ms)") | $(fmt "$(kv "$q2" p99_ms)" 2) | $(fmt "$(kv "$d2" p99_ms)" 2) | $(ratio "$(kv "$d2" p99_ms)" "$(kv "$q2" p99_ms)") |"
	echo "| server CPU, cores | $(fmt "${RV[run1.cpu_quiet]:-}" 2) | $(fmt "${RV[run1.cpu_during]:-}" 2) | | $(fmt "${RV[run2.cpu_quiet]:-}" 2) | $(fmt "${RV[run2.cpu_during]:-}" 2) | |"
	echo "| idle CPU of the machine, cores (of $(nproc)) | $(fmt "${RV[run1.idle_quiet]:-}" 2) | $(fmt "${RV[run1.idle_during]:-}" 2) | | $(fmt "${RV[run2.idle_quiet]:-}" 2) | $(fmt "${RV[run2.idle_during]:-}" 2) | |"
	echo "| other CPU (neither berth nor loadgen: kernel threads, other programs), cores | $(fmt "${RV[run1.other_quiet]:-}" 2) | $(fmt "${RV[run1.other_during]:-}" 2) | | $(fmt "${RV[run2.other_quiet]:-}" 2) | $(fmt "${RV[run2.other_during]:-}" 2) | |"
	echo "| stolen by the hypervisor, cores | $(fmt "${RV[run1.steal_quiet]:-}" 2) | $(fmt "${RV[run1.steal_during]:-}" 2) | | $(fmt "${RV[run2.steal_quiet]:-}" 2) | $(fmt "${RV[run2.steal_during]:-}" 2) | |"
	echo "| GET errors | $(kv "$q1" errors) | $(kv "$d1" errors) | | $(kv "$q2" errors) | $(kv "$d2" errors) | |"
	echo
	on=$(ret_storm_stat on rps median) off=$(ret_storm_stat off rps median)
	onb=$(ret_storm_stat on rps max) offb=$(ret_storm_stat off rps max)
	echo "### Pull storm: last-pull tracking on and off"
	echo
	echo "The same data directory afterwards. Manifest GET by tag of ${RV[storm_tags]:-—} distinct tags (one per repository"
	echo "first), $CONNS keep-alive connections, $RET_STORM_SECONDS s, against \`berth serve --pull-tracking on|off\`, a new"
	echo "server per run, alternating (on off, off on, ...), $RET_STORM_RUNS runs each. Index write txns: the delta"
	echo "of the counters over the storm, and to 6 s after it (the storm's last reads are flushed at the next"
	echo "5 s tick)."
	echo
	echo "| | tracking on | tracking off | on/off |"
	echo "| --- | ---: | ---: | ---: |"
	echo "| req/s, median of $RET_STORM_RUNS | $(fmt "$on" 0) | $(fmt "$off" 0) | $(ratio "$on" "$off") |"
	echo "| req/s, best | $(fmt "$onb" 0) | $(fmt "$offb" 0) | $(ratio "$onb" "$offb") |"
	echo "| p99 ms, median | $(fmt "$(ret_storm_stat on p99_us median | awk '{print $1 / 1000}')" 2) | $(fmt "$(ret_storm_stat off p99_us median | awk '{print $1 / 1000}')" 2) | |"
	echo "| GETs per storm, median | $(ret_storm_stat on requests median) | $(ret_storm_stat off requests median) | |"
	echo "| server CPU us per GET, median | $(ret_storm_stat on server_cpu_us_per_req median) | $(ret_storm_stat off server_cpu_us_per_req median) | |"
	echo "| other CPU (neither berth nor loadgen), cores, median | $(ret_storm_stat on other_cpu median) | $(ret_storm_stat off other_cpu median) | |"
	echo "| index write txns during the storm (max of runs) | $(ret_storm_stat on write_txns_storm max) | $(ret_storm_stat off write_txns_storm max) | |"
	echo "| of them flush txns (max) | $(ret_storm_stat on flush_txns_storm max) | $(ret_storm_stat off flush_txns_storm max) | |"
	echo "| index write txns to 6 s after (max) | $(ret_storm_stat on write_txns_6s_after max) | $(ret_storm_stat off write_txns_6s_after max) | |"
	echo "| of them flush txns (max) | $(ret_storm_stat on flush_txns_6s_after max) | $(ret_storm_stat off flush_txns_6s_after max) | |"
	echo
	echo "### Targets"
	echo
	check "manifest GET p99 during run 1 (expiry + collection) / quiet" "$(ratio "$(kv "$d1" p99_ms)" "$(kv "$q1" p99_ms)")" "<=" 1.1
	check "manifest GET req/s during run 1 / quiet" "$(ratio "$(kv "$d1" rps)" "$(kv "$q1" rps)")" ">=" 0.9
	if [ "$(( ${RV[run2.manifests]:-0} + ${RV[run2.blobs]:-0} + ${RV[run2.expired]:-0} ))" -gt 0 ]; then
		check "manifest GET p99 during run 2 / quiet" "$(ratio "$(kv "$d2" p99_ms)" "$(kv "$q2" p99_ms)")" "<=" 1.1
	elif [ -n "${RV[run2.dur_s]:-}" ]; then
		echo "  (run 2 found nothing left to do in $(fmt "${RV[run2.dur_s]}" 3) s: its GET window is not judged)"
	fi
	check "pull storm req/s, tracking on / off (medians)" "$(ratio "$on" "$off")" ">=" 0.97
	echo
	echo "### Raw retention runs"
	echo
	echo '```'
	grep -v '^phase=expire_slice' "$RET_RES"
	echo '```'
}

ret_main() {
	local p n
	[ -x "$RET_FILL" ] || die "$RET_FILL missing (make MODE=release all)"
	[ -x "$BERTH_BIN" ] || die "$BERTH_BIN missing"
	command -v jq >/dev/null || die "jq missing"
	for n in "$RET_REPOS" "$RET_TAGS" "$RET_LOAD_TAGS" "$RET_QUIET" "$RET_STORM_TAGS" "$RET_STORM_SECONDS" "$RET_STORM_RUNS"; do
		[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "retention knob out of range: '$n'"
	done
	[[ "$RET_TTL_TAGS$RET_POLICY_TAGS" =~ ^[0-9]+$ ]] && [ $((RET_TTL_TAGS + RET_POLICY_TAGS)) -lt "$RET_TAGS" ] ||
		die "BENCH_RET_TTL_TAGS + BENCH_RET_POLICY_TAGS must be below BENCH_RET_TAGS"
	for p in $RET_PHASES; do
		case $p in expire | storm) ;; *) die "unknown retention phase '$p'" ;; esac
	done
	: >"$RET_RES"
	: >"$RET_NOTES"
	rm -rf "$RET_DATA"
	ret_fill || { ret_note "fill failed"; ret_report; return 0; }
	for p in $RET_PHASES; do
		case $p in
		expire) ret_phase_expire || { ret_stop; ret_note "expire: phase failed"; } ;;
		storm) ret_phase_storm || { ret_stop; ret_note "storm: phase failed"; } ;;
		esac
	done
	ret_report
}
