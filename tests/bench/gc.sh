# shellcheck shell=bash
# (ADDR, MAINPID and PIDS are run.sh's associative arrays.)
# shellcheck disable=SC2154,SC2034
# Garbage-collection benchmarks, sourced by run.sh (which provides log, die,
# free_port, wait_http, cpu_ticks, the temp dir $W, $LOADGEN, $BERTH_BIN,
# $DIST_BIN, $ACCEPT, $CONNS, $THREADS and the cleanup trap). gc_main runs
# the phases and appends a "Garbage collection" section to $OUT.
#
#   nogc   a run that finds no garbage, on 10k, 50k and 100k manifests
#   bulk   collecting 10,000 deleted images (10k manifests, 30k blobs) among
#          20,000 live ones, with manifest GETs by tag running meanwhile
#   dist   the same content as distribution 2.8's filesystem layout, 10,000
#          live and 100 untagged images: `docker-registry garbage-collect
#          --delete-untagged` (offline) against berth's online POST
#
# Knobs: BENCH_GC_SIZES ("10000 50000 100000"), BENCH_GC_RUNS (5),
# BENCH_GC_LIVE (20000), BENCH_GC_DELETE (10000), BENCH_GC_DIST_LIVE
# (10000), BENCH_GC_DIST_DELETE (100), BENCH_GC_PHASES ("nogc bulk dist").

GC_SIZES=${BENCH_GC_SIZES:-10000 50000 100000}
GC_RUNS=${BENCH_GC_RUNS:-5}
GC_LIVE=${BENCH_GC_LIVE:-20000}
GC_DELETE=${BENCH_GC_DELETE:-10000}
GC_DIST_LIVE=${BENCH_GC_DIST_LIVE:-10000}
GC_DIST_DELETE=${BENCH_GC_DIST_DELETE:-100}
GC_PHASES=${BENCH_GC_PHASES:-nogc bulk dist race}
GC_RACE_SECONDS=${BENCH_GC_RACE_SECONDS:-120}
GCFILL=$BUILD/tests/bench/gcfill
GC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GC_RES=$W/res/gc
GC_NOTES=$W/res/gc_notes
declare -A GV # figures for the report

gc_note() { echo "- $*" >>"$GC_NOTES"; log "gc: $*"; }
gc_raw() { echo "$*" >>"$GC_RES"; log "gc: $*"; }

# gc_start_berth DATA: berth on DATA with a 1 s grace, then 1.2 s so that
# every item's read-at-start time is past the grace.
# A port free_port found may be taken before the server binds it (other
# programs' outgoing connections use the same range): three tries.
gc_start_berth() {
	local port try
	for try in 1 2 3; do
		port=$(free_port) || return 1
		ADDR[gc_berth]=127.0.0.1:$port
		"$BERTH_BIN" serve --listen "${ADDR[gc_berth]}" --data "$1" \
			--gc-grace 1 --access-log off >>"$W/gc_berth.log" 2>&1 &
		MAINPID[gc_berth]=$!
		PIDS[gc_berth]=$!
		if wait_http gc_berth; then
			sleep 1.2
			return 0
		fi
		log "gc: berth did not start (try $try): $(tail -n 3 "$W/gc_berth.log" | tr '\n' ' ')"
		gc_stop gc_berth
	done
	return 1
}

gc_stop() { # TARGET
	local p=${MAINPID[$1]:-}
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "MAINPID[$1]" "PIDS[$1]"
}

# gc_post OUTFILE: one collection; prints curl's time_total in seconds.
gc_post() {
	curl -sS -m 600 -o "$1" -w '%{http_code} %{time_total}' -X POST \
		"http://${ADDR[gc_berth]}/v2/_berth/gc" | awk '$1 == 200 {print $2; ok = 1} END {exit !ok}'
}

gc_fill() { # ARGS...: gcfill with a timeout; its key=value line goes to the raw runs
	local line
	line=$(timeout 900 "$GCFILL" "$@" 2>>"$W/gcfill.log") || {
		log "gc: gcfill $* failed: $(tail -n 3 "$W/gcfill.log" | tr '\n' ' ')"
		return 1
	}
	gc_raw "phase=fill $line"
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }

# ---------------------------------------------------------------- nogc
# One data directory grown between measurements with the server stopped
# (gcfill --first), so 100k images are filled once, not 160k.
gc_phase_nogc() {
	local d=$W/gc-nogc have=0 n run wall rep ms walls durs
	for n in $GC_SIZES; do
		[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt "$have" ] || die "BENCH_GC_SIZES must grow: '$GC_SIZES'"
		gc_fill --data "$d" --images $((n - have)) --first "$have" || return 1
		have=$n
		gc_start_berth "$d" || return 1
		# One run first, not counted: the first request of a new
		# server pays for its connection and thread wake-ups.
		gc_post "$W/gc-nogc-warm.json" >/dev/null || { log "gc: POST failed"; gc_stop gc_berth; return 1; }
		walls='' durs=''
		for run in $(seq 1 "$GC_RUNS"); do
			rep=$W/gc-nogc-$n-$run.json
			wall=$(gc_post "$rep") || { log "gc: POST failed"; gc_stop gc_berth; return 1; }
			ms=$(jq -r .duration_ms "$rep")
			[ "$(jq -r '.manifests.deleted + .blobs.deleted' "$rep")" = 0 ] ||
				gc_note "nogc $n: a run deleted something ($(jq -c 'del(.deleted)' "$rep"))"
			gc_raw "phase=nogc manifests=$n run=$run wall_ms=$(awk -v s="$wall" 'BEGIN{printf "%.3f", s * 1000}') duration_ms=$ms"
			walls+="$wall"$'\n' durs+="$ms"$'\n'
		done
		gc_stop gc_berth
		GV[nogc.$n.wall_ms]=$(printf '%s' "$walls" | median | awk '{printf "%.3f", $1 * 1000}')
		GV[nogc.$n.dur_ms]=$(printf '%s' "$durs" | median)
	done
}

# ---------------------------------------------------------------- bulk
# gc_slices OUT STOP|-N PATH...: 1 s loadgen runs back to back, until the
# file STOP exists or, with -N, N of them; one line each with start and end.
gc_slices() {
	local out=$1 until=$2 i=0 t0 t1 line
	shift 2
	while :; do
		case $until in
		-*) [ "$i" -lt "${until#-}" ] || break ;;
		*) [ ! -e "$until" ] || break ;;
		esac
		t0=$(date +%s%N)
		line=$("$LOADGEN" load -a "${ADDR[gc_berth]}" -l gc_berth -c "$CONNS" -t "$THREADS" \
			-n 100000000 -d 1 -H "$ACCEPT" "$@") || line="failed=1 errors=1"
		t1=$(date +%s%N)
		echo "t0=$t0 t1=$t1 $line" >>"$out"
		i=$((i + 1))
	done
}

# gc_agg FILE [FROM TO]: requests/elapsed, mean p99 and error sum of the
# slices of FILE (only those within [FROM, TO] ns when given).
gc_agg() {
	awk -v from="${2:-0}" -v to="${3:-0}" '
	{ delete kv; for (i = 1; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
	  if (to > 0 && (kv["t0"] < from || kv["t1"] > to)) next
	  n++; req += kv["requests"]; el += kv["elapsed_s"]; p99 += kv["p99_us"]
	  err += kv["errors"]; cl += kv["client_cpu_s"] }
	END { if (n && el > 0) printf "slices=%d rps=%.0f p99_ms=%.2f errors=%d elapsed_s=%.2f client_cpu_s=%.2f\n", n, req / el, p99 / n / 1000, err, el, cl
	      else print "slices=0" }' "$1"
}

# Idle (and iowait) ticks of the whole machine, from /proc/stat.
gc_idle_ticks() { awk '$1 == "cpu" {print $5 + $6; exit}' /proc/stat; }

# cores PREV_TICKS NOW_TICKS T0_NS T1_NS: ticks per second of wall time.
gc_cores() { awk -v a="$1" -v b="$2" -v h="$CLK_TCK" -v p="$3" -v q="$4" 'BEGIN{printf "%.2f", (b - a) / h / ((q - p) / 1e9)}'; }

gc_phase_bulk() {
	local d=$W/gc-bulk total=$((GC_LIVE + GC_DELETE)) paths=() i stop=$W/gc-bulk.stop
	local during=$W/gc-bulk-during quiet=$W/gc-bulk-quiet lp p0 p1 c0 c1 wall rep=$W/gc-bulk.json
	local agg n i0 i1
	[ "$GC_LIVE" -ge 1 ] || die "BENCH_GC_LIVE must be >= 1"
	[ -e "$d.filled" ] || gc_fill --data "$d" --images "$total" --delete "$GC_DELETE" || return 1
	for i in $(seq 0 $((GC_LIVE < 64 ? GC_LIVE - 1 : 63))); do
		paths+=("GET:/v2/bench/r$((i % 100))/manifests/t$i")
	done
	gc_start_berth "$d" || return 1
	: >"$during"
	: >"$quiet"
	gc_slices "$W/gc-bulk-warm" -1 "${paths[@]}"
	rm -f "$stop"
	gc_slices "$during" "$stop" "${paths[@]}" &
	lp=$!
	sleep 0.05
	c0=$(cpu_ticks gc_berth)
	i0=$(gc_idle_ticks)
	p0=$(date +%s%N)
	wall=$(gc_post "$rep") || wall=
	p1=$(date +%s%N)
	c1=$(cpu_ticks gc_berth)
	i1=$(gc_idle_ticks)
	touch "$stop"
	wait "$lp" || true
	[ -n "$wall" ] || { log "gc: bulk POST failed"; gc_stop gc_berth; return 1; }
	# Slices wholly inside the run; a run too short for two of them is
	# measured by every slice that overlaps it, and the notes say so.
	agg=$(gc_agg "$during" $((p0 - 100000000)) $((p1 + 50000000)))
	n=$(kv "$agg" slices)
	if [ "$n" -lt 2 ]; then
		agg=$(gc_agg "$during")
		n=$(kv "$agg" slices)
		gc_note "bulk: the run lasted $(jq -r '.duration_ms / 1000' "$rep") s, shorter than two 1 s load slices: the GET figures cover all $n slices overlapping it (load from before and after the run included)"
	fi
	GV[bulk.during]=$agg
	GV[bulk.cpu_during]=$(gc_cores "$c0" "$c1" "$p0" "$p1")
	GV[bulk.idle_during]=$(gc_cores "$i0" "$i1" "$p0" "$p1")
	sleep 1
	c0=$(cpu_ticks gc_berth)
	i0=$(gc_idle_ticks)
	p0=$(date +%s%N)
	gc_slices "$quiet" "-$n" "${paths[@]}"
	p1=$(date +%s%N)
	c1=$(cpu_ticks gc_berth)
	i1=$(gc_idle_ticks)
	GV[bulk.quiet]=$(gc_agg "$quiet")
	GV[bulk.cpu_quiet]=$(gc_cores "$c0" "$c1" "$p0" "$p1")
	GV[bulk.idle_quiet]=$(gc_cores "$i0" "$i1" "$p0" "$p1")
	# Live images must still be there.
	if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "http://${ADDR[gc_berth]}/v2/bench/r0/manifests/t0")" != 200 ]; then
		gc_note "bulk: a live tag no longer answers 200 after the run"
	fi
	gc_stop gc_berth
	GV[bulk.wall_s]=$wall
	GV[bulk.dur_s]=$(jq -r '.duration_ms / 1000' "$rep")
	GV[bulk.manifests]=$(jq -r .manifests.deleted "$rep")
	GV[bulk.blobs]=$(jq -r .blobs.deleted "$rep")
	GV[bulk.items_s]=$(jq -r '(.manifests.deleted + .blobs.deleted) / (.duration_ms / 1000) | floor' "$rep")
	[ "${GV[bulk.manifests]}" = "$GC_DELETE" ] && [ "${GV[bulk.blobs]}" = $((3 * GC_DELETE)) ] ||
		gc_note "bulk: expected $GC_DELETE manifests and $((3 * GC_DELETE)) blobs deleted, the report says ${GV[bulk.manifests]} and ${GV[bulk.blobs]}"
	gc_raw "phase=bulk live=$GC_LIVE deleted=$GC_DELETE wall_s=$wall $(jq -r '"duration_ms=\(.duration_ms) manifests=\(.manifests.deleted) blobs=\(.blobs.deleted) queue=\(.queue) waiting=\(.waiting.count)"' "$rep") items_per_s=${GV[bulk.items_s]}"
	gc_raw "phase=bulk_get window=during server_cpu=${GV[bulk.cpu_during]} machine_idle=${GV[bulk.idle_during]} $agg"
	gc_raw "phase=bulk_get window=quiet server_cpu=${GV[bulk.cpu_quiet]} machine_idle=${GV[bulk.idle_quiet]} ${GV[bulk.quiet]}"
	sed 's/^/phase=bulk_slice window=during /' "$during" >>"$GC_RES"
	sed 's/^/phase=bulk_slice window=quiet /' "$quiet" >>"$GC_RES"
}

# ---------------------------------------------------------------- dist
gc_dist_config() { # ROOT ADDR FILE
	cat >"$3" <<-EOF
	version: 0.1
	log:
	  level: error
	  accesslog:
	    disabled: true
	storage:
	  filesystem:
	    rootdirectory: $1
	  delete:
	    enabled: true
	http:
	  addr: $2
	  secret: bench-not-a-secret
	EOF
}

gc_start_dist() { # ROOT
	local port try
	for try in 1 2 3; do
		port=$(free_port) || return 1
		ADDR[gc_dist]=127.0.0.1:$port
		gc_dist_config "$1" "${ADDR[gc_dist]}" "$W/gc-dist-serve.yml"
		"$DIST_BIN" serve "$W/gc-dist-serve.yml" >>"$W/gc_dist.log" 2>&1 &
		MAINPID[gc_dist]=$!
		PIDS[gc_dist]=$!
		wait_http gc_dist && return 0
		log "gc: distribution did not start (try $try): $(tail -n 3 "$W/gc_dist.log" | tr '\n' ' ')"
		gc_stop gc_dist
	done
	return 1
}

# Paths of ROOT's files with digests, two-hex directories and tag names
# replaced, counted: the shape of a layout.
gc_shape() {
	(cd "$1" && find . -type f) | sed -E 's/[0-9a-f]{64}/H/g; s#/sha256/[0-9a-f]{2}/#/sha256/XX/#; s#/tags/[^/]+/#/tags/T/#' |
		sort | uniq -c
}

gc_dist_push_blob() { # REPO FILE
	local d loc code
	d=$(digest_of "$2")
	loc=$(curl -sS -m 30 -X POST -D - -o /dev/null -H 'Content-Length: 0' \
		"http://${ADDR[gc_dist]}/v2/$1/blobs/uploads/" |
		awk 'tolower($1) == "location:" {print $2}' | tr -d '\r')
	[ -n "$loc" ] || return 1
	loc=$(upload_url gc_dist "$loc")
	code=$(curl -sS -m 30 -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
		--data-binary "@$2" "$loc$(qsep "$loc")digest=$d")
	[ "$code" = 201 ] && echo "$d"
}

# The layout gcfill writes must be the one distribution writes itself:
# one image pushed with a tag and one by digest only through its API, the
# same shape from gcfill (1 tagged, 1 untagged), and garbage-collect must
# remove exactly the untagged image (manifest, config, 2 layers).
gc_dist_layout_check() {
	local r=$W/gc-dist-api g=$W/gc-dist-fill n f c l1 l2 m md='' before after root bad=0
	mkdir -p "$r" "$W/gc-dist-api-files"
	gc_start_dist "$r" || { gc_note "dist: distribution did not start"; return 1; }
	for n in 1 2; do
		f=$W/gc-dist-api-files/$n
		printf '{"architecture":"amd64","os":"linux","n":%d,"rootfs":{"type":"layers","diff_ids":[]}}' "$n" >"$f.c"
		head -c 100 /dev/urandom >"$f.l1"
		head -c 200 /dev/urandom >"$f.l2"
		c=$(gc_dist_push_blob bench/r0 "$f.c") && l1=$(gc_dist_push_blob bench/r0 "$f.l1") &&
			l2=$(gc_dist_push_blob bench/r0 "$f.l2") || { bad=1; break; }
		printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":100},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":200}]}' \
			"$c" "$(stat -c %s "$f.c")" "$l1" "$l2" >"$f.m"
		md=$(digest_of "$f.m")
		if [ "$n" = 1 ]; then m=t1; else m=$md; fi
		[ "$(curl -sS -m 30 -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
			--data-binary "@$f.m" "http://${ADDR[gc_dist]}/v2/bench/r0/manifests/$m")" = 201 ] || bad=1
	done
	gc_stop gc_dist
	[ "$bad" = 0 ] || { gc_note "dist: layout check: pushing through distribution's API failed"; return 1; }
	gc_fill --dist "$g" --images 2 --delete 1 --repos 1 --first 1 || return 1
	if ! diff <(gc_shape "$r") <(gc_shape "$g") >"$W/gc-dist-shape.diff"; then
		gc_note "dist: layout check FAILED: gcfill's files differ from distribution's: $(tr '\n' ' ' <"$W/gc-dist-shape.diff")"
		return 1
	fi
	if [ "$(find "$g" -name link | wc -l)" != "$(find "$g" -name link -size 71c | wc -l)" ]; then
		gc_note "dist: layout check FAILED: a gcfill link file is not 'sha256:<hex>' without newline"
		return 1
	fi
	for root in "$r" "$g"; do
		gc_dist_config "$root" 127.0.0.1:0 "$W/gc-dist-check.yml"
		before=$(find "$root" -name data | wc -l)
		timeout 120 "$DIST_BIN" garbage-collect --delete-untagged "$W/gc-dist-check.yml" >/dev/null 2>&1 || bad=1
		after=$(find "$root" -name data | wc -l)
		[ $((before - after)) = 4 ] || bad=1
	done
	if [ -e "$r/docker/registry/v2/blobs/sha256/${md:7:2}/${md:7}" ]; then bad=1; fi
	[ "$bad" = 0 ] || { gc_note "dist: layout check FAILED: garbage-collect did not delete exactly the untagged image"; return 1; }
	gc_raw "phase=dist_layout_check result=PASS files=$(gc_shape "$g" | awk '{s += $1} END {print s}')"
	GV[dist.layout]=PASS
}

gc_phase_dist() {
	local d=$W/gc-dist-berth root=$W/gc-dist-root list=$W/gc-dist.list total
	local rep=$W/gc-dist.json wall got want before after t missing=0 line
	total=$((GC_DIST_LIVE + GC_DIST_DELETE))
	[ -x "$DIST_BIN" ] || { gc_note "dist: not run: $DIST_BIN missing"; return 0; }
	gc_dist_layout_check || GV[dist.layout]=FAIL
	[ -e "$d.filled" ] || gc_fill --data "$d" --dist "$root" --images "$total" \
		--delete "$GC_DIST_DELETE" --seed 7 --list "$list" || return 1
	# distribution serves the filled root: same manifest bytes as berth,
	# and the untagged images are there before the collection.
	gc_start_dist "$root" || { gc_note "dist: distribution did not start on the filled root"; return 1; }
	gc_start_berth "$d" || { gc_stop gc_dist; return 1; }
	for t in "bench/r1/manifests/t1" "bench/r$(((GC_DIST_LIVE - 1) % 100))/manifests/t$((GC_DIST_LIVE - 1))"; do
		got=$(curl -sS -m 30 -H "$ACCEPT" "http://${ADDR[gc_dist]}/v2/$t" | sha256sum | cut -d' ' -f1)
		want=$(curl -sS -m 30 -H "$ACCEPT" "http://${ADDR[gc_berth]}/v2/$t" | sha256sum | cut -d' ' -f1)
		[ "$got" = "$want" ] || gc_note "dist: $t differs between distribution and berth"
	done
	line=$(awk '$1 == "blob" {print $2, $3; exit}' "$list")
	[ "$(curl -sS -m 30 -o /dev/null -w '%{http_code}' "http://${ADDR[gc_dist]}/v2/${line% *}/blobs/${line#* }")" = 200 ] ||
		gc_note "dist: a blob of a deleted image is not served by distribution before the collection"
	gc_stop gc_dist
	# distribution's collector needs the registry stopped; berth collects
	# while it serves.
	gc_dist_config "$root" 127.0.0.1:0 "$W/gc-dist-gc.yml"
	before=$(find "$root/docker/registry/v2/blobs" -name data | wc -l)
	local TIMEFORMAT='%R %U %S'
	t=$({ time timeout 900 "$DIST_BIN" garbage-collect --delete-untagged "$W/gc-dist-gc.yml" \
		>"$W/gc-dist-gc.out" 2>"$W/gc-dist-gc.err"; } 2>&1) || gc_note "dist: garbage-collect failed: $(tail -n 2 "$W/gc-dist-gc.err" | tr '\n' ' ')"
	t=$(tail -n 1 <<<"$t")
	after=$(find "$root/docker/registry/v2/blobs" -name data | wc -l)
	while read -r _ _ dg; do
		[ -e "$root/docker/registry/v2/blobs/sha256/${dg:7:2}/${dg:7}/data" ] && missing=$((missing + 1))
	done <"$list"
	[ "$missing" = 0 ] && [ $((before - after)) = $((4 * GC_DIST_DELETE)) ] ||
		gc_note "dist: garbage-collect left $missing of the deleted images' $((4 * GC_DIST_DELETE)) blobs and deleted $((before - after)) files"
	wall=$(gc_post "$rep") || { log "gc: POST failed"; gc_stop gc_berth; return 1; }
	got=$(jq -r '.deleted[] | "\(.kind) \(.repository) \(.digest)"' "$rep" | sort)
	want=$(awk '{print ($1 == "blob" ? "blob  " $3 : $0)}' "$list" | sort)
	[ "$got" = "$want" ] || gc_note "dist: berth's run did not delete exactly the deleted images ($(jq -c 'del(.deleted)' "$rep"))"
	gc_stop gc_berth
	GV[dist.berth_s]=$wall
	GV[dist.berth_dur_s]=$(jq -r '.duration_ms / 1000' "$rep")
	GV[dist.berth_items]=$(jq -r '.manifests.deleted + .blobs.deleted' "$rep")
	GV[dist.dist_s]=${t%% *}
	GV[dist.dist_cpu_s]=$(awk '{printf "%.2f", $2 + $3}' <<<"$t")
	GV[dist.dist_items]=$((before - after))
	gc_raw "phase=dist target=berth live=$GC_DIST_LIVE deleted=$GC_DIST_DELETE wall_s=$wall $(jq -r '"duration_ms=\(.duration_ms) manifests=\(.manifests.deleted) blobs=\(.blobs.deleted)"' "$rep")"
	gc_raw "phase=dist target=distribution live=$GC_DIST_LIVE deleted=$GC_DIST_DELETE wall_s=${GV[dist.dist_s]} cpu_s=${GV[dist.dist_cpu_s]} files_deleted=$((before - after)) left_of_deleted=$missing"
}

# ---------------------------------------------------------------- report

gc_us_req() { awk -v c="$1" -v r="$2" 'BEGIN{if (c != "" && r > 0) printf "%.1f", c * 1e6 / r; else print "—"}'; }

gc_report() {
	local n first='' last='' q d
	echo
	echo "## Garbage collection"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs. berth: \`serve --gc-grace 1 --access-log off\`, each run"
	echo "is POST /v2/_berth/gc while the server runs (wall time = curl's time_total; duration = the"
	echo "report's duration_ms). Data filled offline by gcfill: image i = config + 2 layers of"
	echo "64..512 bytes, tag t<i> in bench/r<i % 100>; deleted images have their tag deleted."
	[ -s "$GC_NOTES" ] && { echo; cat "$GC_NOTES"; }
	echo
	echo "### A run with no garbage"
	echo
	echo "| manifests | wall ms (median of $GC_RUNS) | duration ms (median) |"
	echo "| ---: | ---: | ---: |"
	for n in $GC_SIZES; do
		echo "| $n | $(fmt "${GV[nogc.$n.wall_ms]:-}" 2) | $(fmt "${GV[nogc.$n.dur_ms]:-}" 3) |"
		[ -n "$first" ] || first=$n
		last=$n
	done
	echo
	echo "### Collecting $GC_DELETE deleted images among $GC_LIVE live ones"
	echo
	echo "| | value |"
	echo "| --- | ---: |"
	echo "| manifests deleted | ${GV[bulk.manifests]:-—} |"
	echo "| blobs deleted | ${GV[bulk.blobs]:-—} |"
	echo "| run duration, s | $(fmt "${GV[bulk.dur_s]:-}" 2) |"
	echo "| POST wall time, s | $(fmt "${GV[bulk.wall_s]:-}" 2) |"
	echo "| items (manifests + blobs) per s | ${GV[bulk.items_s]:-—} |"
	echo
	q=${GV[bulk.quiet]:-} d=${GV[bulk.during]:-}
	echo "Manifest GET by tag (64 live tags, $CONNS keep-alive connections) in 1 s loadgen slices: the slices"
	echo "wholly inside the run against as many slices right after it (quiet). p99 is the mean of the"
	echo "slices' p99; server CPU is cores busy (utime + stime / wall)."
	echo
	echo "| | quiet | during the run | during/quiet |"
	echo "| --- | ---: | ---: | ---: |"
	echo "| slices | $(kv "$q" slices) | $(kv "$d" slices) | |"
	echo "| req/s | $(fmt "$(kv "$q" rps)" 0) | $(fmt "$(kv "$d" rps)" 0) | $(ratio "$(kv "$d" rps)" "$(kv "$q" rps)") |"
	echo "| p99 ms | $(fmt "$(kv "$q" p99_ms)" 2) | $(fmt "$(kv "$d" p99_ms)" 2) | $(ratio "$(kv "$d" p99_ms)" "$(kv "$q" p99_ms)") |"
	echo "| server CPU, cores | $(fmt "${GV[bulk.cpu_quiet]:-}" 2) | $(fmt "${GV[bulk.cpu_during]:-}" 2) | |"
	echo "| server CPU us per GET (the run's own work included) | $(gc_us_req "${GV[bulk.cpu_quiet]:-}" "$(kv "$q" rps)") | $(gc_us_req "${GV[bulk.cpu_during]:-}" "$(kv "$d" rps)") | |"
	echo "| idle CPU of the machine, cores (of $(nproc)) | $(fmt "${GV[bulk.idle_quiet]:-}" 2) | $(fmt "${GV[bulk.idle_during]:-}" 2) | |"
	echo "| loadgen CPU s per slice s | $(awk -v a="$(kv "$q" client_cpu_s)" -v b="$(kv "$q" elapsed_s)" 'BEGIN{if (b > 0) printf "%.2f", a / b; else print "—"}') | $(awk -v a="$(kv "$d" client_cpu_s)" -v b="$(kv "$d" elapsed_s)" 'BEGIN{if (b > 0) printf "%.2f", a / b; else print "—"}') | |"
	echo
	echo "### Against distribution 2.8 ($GC_DIST_LIVE live images, $GC_DIST_DELETE deleted)"
	echo
	echo "The same images in distribution's filesystem layout (written by gcfill --dist; layout check"
	echo "against a registry filled through distribution's API: ${GV[dist.layout]:-not run}); its deleted images are"
	echo "untagged. distribution: \`docker-registry garbage-collect --delete-untagged\`, which needs the"
	echo "registry stopped; berth: one online POST. Warm page cache for both."
	echo
	echo "| | berth (online) | distribution (offline) | distribution/berth |"
	echo "| --- | ---: | ---: | ---: |"
	echo "| wall time, s | $(fmt "${GV[dist.berth_s]:-}" 3) | $(fmt "${GV[dist.dist_s]:-}" 2) | $(ratio "${GV[dist.dist_s]:-}" "${GV[dist.berth_s]:-}") |"
	echo "| items deleted (manifests + blobs) | ${GV[dist.berth_items]:-—} | ${GV[dist.dist_items]:-—} | |"
	echo "| CPU s | — | $(fmt "${GV[dist.dist_cpu_s]:-}" 2) | |"
	echo
	echo "### Targets"
	echo
	check "no-garbage run at $last manifests, wall ms" "${GV[nogc.$last.wall_ms]:-}" "<=" 50
	check "no-garbage run duration $last / $first manifests (flat)" \
		"$(ratio "${GV[nogc.$last.dur_ms]:-}" "${GV[nogc.$first.dur_ms]:-}")" "<=" 2
	echo "  (wall time $last / $first manifests = $(ratio "${GV[nogc.$last.wall_ms]:-}" "${GV[nogc.$first.wall_ms]:-}"): under a millisecond, the HTTP round trip and scheduling)"
	check "manifest GET req/s during the bulk run / quiet" "$(ratio "$(kv "$d" rps)" "$(kv "$q" rps)")" ">=" 0.9
	check "manifest GET p99 during the bulk run / quiet" "$(ratio "$(kv "$d" p99_ms)" "$(kv "$q" p99_ms)")" "<=" 1.1
	check "distribution garbage-collect time / berth online run" \
		"$(ratio "${GV[dist.dist_s]:-}" "${GV[dist.berth_s]:-}")" ">=" 100
	echo
	echo "### Raw gc runs"
	echo
	echo '```'
	grep -v '^phase=bulk_slice' "$GC_RES"
	echo '```'
}

gc_main() {
	local p
	[ -x "$GCFILL" ] || die "$GCFILL missing (make MODE=release all)"
	[ -x "$BERTH_BIN" ] || die "$BERTH_BIN missing"
	command -v jq >/dev/null || die "jq missing"
	: >"$GC_RES"
	: >"$GC_NOTES"
	for p in $GC_PHASES; do
		case $p in nogc | bulk | dist | race) ;; *) die "unknown gc phase '$p'" ;; esac
	done
	# nogc fills and measures in turn (nothing is deleted meanwhile). The
	# other phases' fills come before any collection deletes files: some
	# filesystems (ext4 without a journal) create files slowly next to many
	# just-deleted inodes.
	for p in $GC_PHASES; do
		if [ "$p" = nogc ]; then gc_phase_nogc || gc_note "nogc: phase failed"; fi
	done
	# Those two fills run side by side; a marker file says each is done.
	for p in $GC_PHASES; do
		case $p in
		bulk)
			{ gc_fill --data "$W/gc-bulk" --images $((GC_LIVE + GC_DELETE)) \
				--delete "$GC_DELETE" && : >"$W/gc-bulk.filled"; } &
			;;
		dist)
			if [ -x "$DIST_BIN" ]; then
				{ gc_fill --data "$W/gc-dist-berth" --dist "$W/gc-dist-root" \
					--images $((GC_DIST_LIVE + GC_DIST_DELETE)) --delete "$GC_DIST_DELETE" \
					--seed 7 --list "$W/gc-dist.list" && : >"$W/gc-dist-berth.filled"; } &
			fi
			;;
		esac
	done
	wait
	for p in $GC_PHASES; do
		case $p in
		bulk)
			if [ -e "$W/gc-bulk.filled" ]; then
				gc_phase_bulk || gc_note "bulk: phase failed"
			else
				gc_note "bulk: fill failed"
			fi
			;;
		dist) gc_phase_dist || gc_note "dist: phase failed" ;;
		race) gc_phase_race ;;
		esac
	done
	gc_report
}

# ---------------------------------------------------------------- race
# The race test of make test (writers, readers, a collection every 200 ms,
# 2 s grace; nothing live may go), longer and against the release build.
gc_phase_race() {
	local res ok bad
	res=$(mktemp)
	BERTH_BIN=$BERTH_BIN RESULTS=$res GC_RACE_SECONDS=$GC_RACE_SECONDS \
		timeout $((GC_RACE_SECONDS + 300)) bash "$GC_ROOT/tests/integration/test_gc_race.sh" \
		>"$W/gc-race.log" 2>&1
	ok=$(grep -c '^ok ' "$res" || true)
	bad=$(grep -c '^FAIL ' "$res" || true)
	gc_raw "phase=race seconds=$GC_RACE_SECONDS ok=$ok failed=$bad"
	gc_note "race test, $GC_RACE_SECONDS s of load against the release build: $ok checks passed, $bad failed$([ "$bad" -gt 0 ] && echo ": $(grep '^FAIL ' "$res" | head -3 | tr '\n' ';')")"
	grep '^ok gc race load' "$res" | while read -r l; do gc_note "race: ${l#ok gc race load: }"; done || true
	rm -f "$res"
}
