# shellcheck shell=bash
# (ADDR, MAINPID and PIDS are run.sh's associative arrays.)
# shellcheck disable=SC2154,SC2034
# Backup and restore benchmarks, sourced by run.sh (which provides log,
# die, free_port, wait_http, check, fmt, ratio, the temp dir $W,
# $BERTH_BIN and the cleanup trap). bk_main fills a registry through its
# API with incompressible layers (as real, gzipped ones are), then
# measures, on the same warm data:
#
#   tar     `tar -I zstd -cf - DATA` (the data directory as files)
#   backup  `berth backup` of the running server (snapshot, tar, zstd,
#           HTTP), at levels 1, 3 (the default) and 9
#   restore `berth restore` of that backup (every digest verified, files
#           fsynced, index rebuilt and checked)
#
# Archives go to /dev/null (their size is taken from the server's
# "backup sent" log line), except the one the restore reads.
# tar and the default level run alternately, so that other load on the
# machine hits both alike.
# Knobs: BENCH_BK_MB (512) of layers, BENCH_BK_LAYER_MB (8),
# BENCH_BK_ROUNDS (5, the best counts).

BK_MB=${BENCH_BK_MB:-512}
BK_LAYER_MB=${BENCH_BK_LAYER_MB:-8}
BK_ROUNDS=${BENCH_BK_ROUNDS:-5}
BK_DIR=$W/bk
declare -A BK # figures

bk_start() { # DATA
	local port
	port=$(free_port) || return 1
	ADDR[bk_berth]=127.0.0.1:$port
	"$BERTH_BIN" serve --listen "${ADDR[bk_berth]}" --data "$1" \
		--access-log off >>"$W/bk_berth.log" 2>&1 &
	MAINPID[bk_berth]=$!
	PIDS[bk_berth]=$!
	wait_http bk_berth
}

bk_stop() {
	[ -n "${MAINPID[bk_berth]:-}" ] || return 0
	kill -TERM "${MAINPID[bk_berth]}" 2>/dev/null || true
	wait "${MAINPID[bk_berth]}" 2>/dev/null || true
	unset "MAINPID[bk_berth]" "PIDS[bk_berth]"
}

bk_push() { # REPO FILE
	local d
	d=sha256:$(sha256sum "$2" | cut -c1-64)
	[ "$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary "@$2" \
		"http://${ADDR[bk_berth]}/v2/$1/blobs/uploads/?digest=$d")" = 201 ] || return 1
	echo "$d"
}

# Images of two layers each under bench/backup-N:v1.
bk_fill() {
	local n=$((BK_MB / BK_LAYER_MB / 2)) i l d1 d2 c cfg
	[ "$n" -ge 1 ] || n=1
	mkdir -p "$BK_DIR/src"
	for i in $(seq 1 "$n"); do
		head -c $((BK_LAYER_MB << 20)) /dev/urandom >"$BK_DIR/src/l1"
		head -c $((BK_LAYER_MB << 20)) /dev/urandom >"$BK_DIR/src/l2"
		printf '{"architecture":"amd64","os":"linux","n":%d}' "$i" >"$BK_DIR/src/cfg"
		d1=$(bk_push "bench/backup-$i" "$BK_DIR/src/l1") &&
			d2=$(bk_push "bench/backup-$i" "$BK_DIR/src/l2") &&
			c=$(bk_push "bench/backup-$i" "$BK_DIR/src/cfg") || return 1
		cfg=$(stat -c %s "$BK_DIR/src/cfg")
		l=$((BK_LAYER_MB << 20))
		printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
			"$c" "$cfg" "$d1" "$l" "$d2" "$l" >"$BK_DIR/src/m.json"
		[ "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT \
			-H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
			--data-binary "@$BK_DIR/src/m.json" \
			"http://${ADDR[bk_berth]}/v2/bench/backup-$i/manifests/v1")" = 201 ] || return 1
	done
	rm -rf "$BK_DIR/src"
}

bk_once() { # CMD... : wall seconds of one run
	local s e
	s=$(date +%s.%N)
	"$@" || return 1
	e=$(date +%s.%N)
	awk -v a="$s" -v b="$e" 'BEGIN{printf "%.3f", b - a}'
}
# bk_cpu CMD...: CPU seconds (user + system) of CMD and its children, plus
# the server's when SERVER_PID is set; prints "WALL CPU".
bk_cpu() {
	local s e t0 t1 c
	t0=$([ -n "${SERVER_PID:-}" ] && awk '{print $14 + $15}' "/proc/$SERVER_PID/stat" || echo 0)
	s=$(date +%s.%N)
	/usr/bin/time -o "$W/bk_time" -f '%U %S' "$@" >/dev/null 2>&1 || return 1
	c=$(tail -1 "$W/bk_time")
	e=$(date +%s.%N)
	t1=$([ -n "${SERVER_PID:-}" ] && awk '{print $14 + $15}' "/proc/$SERVER_PID/stat" || echo 0)
	awk -v a="$s" -v b="$e" -v c="$c" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
		'BEGIN{split(c, u, " "); printf "%.3f %.3f\n", b - a, u[1] + u[2] + (t1 - t0) / hz}'
}
bk_min() { # A B: the smaller ("" counts as none)
	if [ -z "$1" ] || awk -v a="$2" -v b="$1" 'BEGIN{exit !(a < b)}'; then echo "$2"; else echo "$1"; fi
}
bk_secs() { # CMD... : wall seconds of the best of BK_ROUNDS runs
	local best="" t
	for _ in $(seq 1 "$BK_ROUNDS"); do
		t=$(bk_once "$@") || return 1
		best=$(bk_min "$best" "$t")
	done
	echo "$best"
}

bk_tar() { tar -I zstd -cf - -C "$BK_DIR" data >/dev/null; }
bk_backup() { # LEVEL [OUT]: to /dev/null unless OUT
	"$BERTH_BIN" backup --server "http://${ADDR[bk_berth]}" --level "$1" >"${2:-/dev/null}" 2>/dev/null
}
# The archive bytes of the last backup, from the server's "backup sent".
bk_sent_bytes() {
	grep '"backup sent"' "$W/bk_berth.log" | tail -1 | jq -r '.zst_bytes'
}
bk_restore() {
	rm -rf "$BK_DIR/restored"
	"$BERTH_BIN" restore --data "$BK_DIR/restored" --input "$BK_DIR/b3.tar.zst" 2>/dev/null
}

bk_main() {
	local bytes mb lv t
	mkdir -p "$BK_DIR/data"
	bk_start "$BK_DIR/data" || die "backup: berth did not start"
	log "backup: filling $BK_MB MB of layers"
	bk_fill || die "backup: filling the registry failed"
	bytes=$(find "$BK_DIR/data/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
	mb=$(awk -v b="$bytes" 'BEGIN{printf "%.1f", b / 1048576}')
	cat "$BK_DIR"/data/blobs/sha256/*/* >/dev/null # warm for both
	# tar and the default level alternate (other load hits both alike);
	# CPU: tar and zstd, or the berth client and the server
	BK[tar.s]="" BK[b3.s]="" BK[tar.cpu]="" BK[b3.cpu]=""
	for _ in $(seq 1 "$BK_ROUNDS"); do
		read -r t c < <(SERVER_PID="" bk_cpu sh -c "tar -I zstd -cf - -C '$BK_DIR' data") || die "backup: tar failed"
		BK[tar.s]=$(bk_min "${BK[tar.s]}" "$t")
		BK[tar.cpu]=$(bk_min "${BK[tar.cpu]}" "$c")
		read -r t c < <(SERVER_PID=${MAINPID[bk_berth]} bk_cpu "$BERTH_BIN" backup --server "http://${ADDR[bk_berth]}" --level 3) ||
			die "backup: berth backup failed"
		BK[b3.s]=$(bk_min "${BK[b3.s]}" "$t")
		BK[b3.cpu]=$(bk_min "${BK[b3.cpu]}" "$c")
	done
	BK[b3.size]=$(bk_sent_bytes)
	for lv in 1 9; do
		t=$(bk_secs bk_backup "$lv") || die "backup: berth backup failed"
		BK[b$lv.s]=$t
		BK[b$lv.size]=$(bk_sent_bytes)
	done
	# the archive the restore reads (not timed)
	bk_backup 3 "$BK_DIR/b3.tar.zst" || die "backup: berth backup failed"
	sync
	bk_stop
	t=$(bk_secs bk_restore) || die "backup: berth restore failed"
	BK[restore.s]=$t
	echo
	echo "## Backup and restore"
	echo
	echo "$mb MiB of incompressible layers ($((BK_MB / BK_LAYER_MB / 2)) images of two $BK_LAYER_MB MiB layers), page cache warm, best of $BK_ROUNDS (tar and level 3 alternating); archives written to /dev/null (sizes from the server's log); the restore reads a level-3 archive from a file."
	echo
	echo "| what | seconds | MB/s of blobs | CPU s/GB | archive bytes |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	echo "| \`tar -I zstd -cf - DATA\` | ${BK[tar.s]} | $(awk -v b="$bytes" -v s="${BK[tar.s]}" 'BEGIN{printf "%.0f", b / 1e6 / s}') | $(awk -v b="$bytes" -v c="${BK[tar.cpu]}" 'BEGIN{printf "%.2f", c / (b / 1e9)}') | — |"
	for lv in 1 3 9; do
		cpu="—"
		[ "$lv" = 3 ] && cpu=$(awk -v b="$bytes" -v c="${BK[b3.cpu]}" 'BEGIN{printf "%.2f", c / (b / 1e9)}')
		echo "| \`berth backup --level $lv\` | ${BK[b$lv.s]} | $(awk -v b="$bytes" -v s="${BK[b$lv.s]}" 'BEGIN{printf "%.0f", b / 1e6 / s}') | $cpu | ${BK[b$lv.size]} |"
	done
	echo "| \`berth restore\` (digests verified) | ${BK[restore.s]} | $(awk -v b="$bytes" -v s="${BK[restore.s]}" 'BEGIN{printf "%.0f", b / 1e6 / s}') | — | — |"
	echo
	echo "(CPU: tar and zstd; or the berth client and the server, from /proc/PID/stat; the lowest of the rounds.)"
	echo
	check "backup MB/s / tar -I zstd MB/s (level 3)" "$(ratio "${BK[tar.s]}" "${BK[b3.s]}")" ">=" 0.9
	check "backup CPU / tar -I zstd CPU (level 3)" "$(ratio "${BK[b3.cpu]}" "${BK[tar.cpu]}")" "<=" 1.1
}
