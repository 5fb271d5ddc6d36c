#!/usr/bin/env bash
# /metrics after real traffic (a push, a pull, 404s, a collection run):
# Prometheus' own checker (promtool) finds nothing to say; every sample has
# a HELP and a TYPE; the latency histogram of manifest GETs grew by exactly
# the GETs made, its buckets are cumulative and end in +Inf = _count; the
# byte counters grew by at least what was pushed and pulled; the process
# figures agree with /proc; the reload families are there.
. "$(dirname "$0")/api_lib.sh"
REGISTRY_UNDER_TEST=berth
t_start=$(date +%s)
start_registry || { fail "metrics: registry did not start"; exit 1; }
PROMTOOL=$(command -v promtool || true)
[ -n "$PROMTOOL" ] || fail "metrics: promtool is installed (Debian package prometheus, scripts/deps.sh test)"

# scrape FILE: GET /metrics into FILE.
scrape() {
	req GET /metrics
	[ "$ST" = 200 ] || fail "metrics: GET /metrics is 200 $(ctx)"
	cp "$T/b" "$1"
}
# val FILE SERIES: the value of one series (name with its labels as
# rendered), empty when absent.
val() { awk -v k="$2" '$1 == k {print $2}' "$1"; }
# intval FILE SERIES: the same, 0 when absent.
intval() { local v; v=$(val "$1" "$2"); echo "${v:-0}"; }
MH='{route="manifest",method="GET"}'
HCOUNT="berth_http_request_duration_seconds_count$MH"
# wait_for SERIES WANT FILE: scrapes into FILE until SERIES reaches WANT
# (a request is counted once its answer is sent, which the client may see
# a moment before); 5 s at most.
wait_for() {
	for _ in $(seq 1 50); do
		scrape "$3"
		[ "$(intval "$3" "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

scrape "$T/m0"
check "metrics: served as Prometheus text 0.0.4" grep -q 'version=0.0.4' <<<"$(hdr Content-Type)"

# --- traffic: push an image with a 1 MiB layer
R=metrics/app
head -c $((1024 * 1024)) /dev/urandom >"$T/layer"
mkblob cfg '{"architecture":"amd64","os":"linux"}'
check "metrics: push the layer" push_blob "$R" "$T/layer"
check "metrics: push the config" push_blob "$R" "$T/cfg"
LAYER=$(dg "$T/layer")
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$OCI_MANIFEST" "$OCI_CONFIG" "$(dg "$T/cfg")" "$(sz "$T/cfg")" \
	"$OCI_LAYER" "$LAYER" "$(sz "$T/layer")" >"$T/m.json"
check "metrics: push the manifest" push_manifest "$R" v1 "$T/m.json" "$OCI_MANIFEST"
pushed=$(($(sz "$T/layer") + $(sz "$T/cfg") + $(sz "$T/m.json")))

# --- pull it: 3 manifest GETs that find it, 1 that does not, the layer
wait_for 'berth_http_requests_total{route="manifest",method="PUT",code="2xx"}' 1 "$T/m1" ||
	fail "metrics: the manifest PUT is counted"
gets=0
for ref in v1 "$(dg "$T/m.json")" v1; do
	req GET "/v2/$R/manifests/$ref"
	expect_status "metrics: GET manifest $ref" 200
	gets=$((gets + 1))
done
req GET "/v2/$R/manifests/nosuchtag"
expect_error "metrics: GET of an unknown tag is a 404" 404 MANIFEST_UNKNOWN
gets=$((gets + 1))
req GET "/v2/$R/blobs/$LAYER"
expect_body_file "metrics: the layer pulls" "$T/layer"
req GET "/v2/$R/blobs/sha256:$(printf '%064d' 0)"
expect_status "metrics: GET of an unknown blob is a 404" 404

# --- a collection run
req POST /v2/_berth/gc
expect_status "metrics: POST /v2/_berth/gc is 200" 200

# --- the scrape
base=$(intval "$T/m1" "$HCOUNT")
wait_for "$HCOUNT" $((base + gets)) "$T/m2" || true
wait_for 'berth_http_request_duration_seconds_count{route="gc",method="POST"}' 1 "$T/m2" ||
	fail "metrics: the gc request is counted"
M=$T/m2

if [ -n "$PROMTOOL" ]; then
	out=$("$PROMTOOL" check metrics <"$M" 2>&1)
	rc=$?
	expect_eq "metrics: promtool check metrics exits 0" 0 "$rc"
	expect_eq "metrics: promtool check metrics says nothing" "" "$out"
fi

# Every sample's family has HELP and TYPE, once; a histogram's samples are
# its _bucket, _sum and _count.
bad=$(awk '
	/^# HELP / { if (help[$3]++) print "second HELP " $3; next }
	/^# TYPE / { if (type[$3]) print "second TYPE " $3; type[$3] = $4; next }
	/^#/ || /^$/ { next }
	{
		n = $1; sub(/\{.*/, "", n); f = n
		if (!(f in type)) { f = n; sub(/_(bucket|sum|count)$/, "", f)
			if (type[f] != "histogram") f = "" }
		if (f == "" || !(f in help)) print "no HELP/TYPE for " n
	}' "$M" | sort -u | head -5)
expect_eq "metrics: every family has one HELP and one TYPE" "" "$bad"
bad=$(awk '$1 == "#" && $2 == "TYPE" && $4 == "counter" && $3 !~ /_total$/ {print $3}' "$M")
expect_eq "metrics: every counter ends in _total" "" "$bad"
bad=$(grep -v '^#' "$M" | grep -oE '^[a-z_]*_(ms|us|msec|usec|millis|milliseconds|microseconds|nanoseconds|kb|mb|kib|mib)(_[a-z]+)?\b' | sort -u)
expect_eq "metrics: no name in a non-base unit" "" "$bad"

# --- the latency histogram
expect_eq "metrics: manifest GET histogram grew by the $gets GETs" $((base + gets)) "$(intval "$M" "$HCOUNT")"
expect_eq "metrics: manifest GET 4xx counted once" \
	$(($(intval "$T/m1" 'berth_http_requests_total{route="manifest",method="GET",code="4xx"}') + 1)) \
	"$(intval "$M" 'berth_http_requests_total{route="manifest",method="GET",code="4xx"}')"
expect_eq "metrics: the gc POST is in the histogram" 1 \
	"$(intval "$M" 'berth_http_request_duration_seconds_count{route="gc",method="POST"}')"
# For every route and method: le ascending, counts never fall, the last
# bucket is +Inf and equals _count, and there are 12 finite buckets from
# 0.0005 to 60.
bad=$(awk '
	/^berth_http_request_duration_seconds_bucket\{/ {
		s = $1; le = s; sub(/.*le="/, "", le); sub(/".*/, "", le)
		k = s; sub(/,le="[^"]*"/, "", k); sub(/^[a-z_]*/, "", k)
		if (k in last && $2 + 0 < last[k]) print "falls " s
		if (k in lastle && lastle[k] == "+Inf") print "after +Inf " s
		if (k in lastle && le != "+Inf" && le + 0 <= lastle[k] + 0) print "le order " s
		if (!(k in first)) first[k] = le
		last[k] = $2 + 0; lastle[k] = le; nb[k] += (le != "+Inf"); next
	}
	/^berth_http_request_duration_seconds_count\{/ {
		k = $1; sub(/^[a-z_]*/, "", k); cnt[k] = $2 + 0; next
	}
	END {
		for (k in cnt) {
			if (lastle[k] != "+Inf") print "no +Inf " k
			else if (last[k] != cnt[k]) print "+Inf " last[k] " != count " cnt[k] " " k
			if (nb[k] != 12 || first[k] != "0.0005") print "buckets " nb[k] " from " first[k] " " k
		}
		for (k in last) if (!(k in cnt)) print "no _count " k
	}' "$M" | head -5)
expect_eq "metrics: buckets cumulative, ending in +Inf = _count" "" "$bad"
check "metrics: histogram series for the manifest GETs" grep -q "^berth_http_request_duration_seconds_bucket{route=\"manifest\",method=\"GET\",le=\"+Inf\"}" "$M"
sum=$(val "$M" "berth_http_request_duration_seconds_sum$MH")
check "metrics: manifest GET _sum is positive and under 30 s ($sum)" awk -v s="$sum" 'BEGIN {exit !(s > 0 && s < 30)}'

# --- bytes
sent0=$(intval "$T/m1" 'berth_http_response_bytes_total{route="blob"}')
sent1=$(intval "$M" 'berth_http_response_bytes_total{route="blob"}')
check "metrics: blob bytes sent grew by at least the layer ($((sent1 - sent0)) >= $(sz "$T/layer"))" \
	test $((sent1 - sent0)) -ge "$(sz "$T/layer")"
rx() { awk '/^berth_http_request_bytes_total\{/ {s += $2} END {print s + 0}' "$1"; }
check "metrics: bytes received grew by at least what was pushed ($(($(rx "$M") - $(rx "$T/m0"))) >= $pushed)" \
	test $(($(rx "$M") - $(rx "$T/m0"))) -ge "$pushed"
check "metrics: manifest bytes received counted" test "$(intval "$M" 'berth_http_request_bytes_total{route="manifest"}')" -ge "$(sz "$T/m.json")"

# --- storage and the collector
expect_eq "metrics: storage blobs" 2 "$(val "$M" berth_storage_blobs)"
expect_eq "metrics: storage blob bytes" $(($(sz "$T/layer") + $(sz "$T/cfg"))) "$(val "$M" berth_storage_blob_bytes)"
expect_eq "metrics: one gc run counted" 1 "$(val "$M" 'berth_gc_runs_total{result="ok"}')"
for n in 'berth_gc_runs_total{result="error"}' 'berth_gc_deleted_total{kind="blob"}' \
	'berth_gc_deleted_bytes_total{kind="blob"}' berth_gc_unlink_failures_total; do
	expect_eq "metrics: $n present and 0" 0 "$(val "$M" "$n")"
done
check "metrics: in-flight gauge counts the scrape" test "$(val "$M" berth_http_requests_in_flight)" -ge 1

# --- reloads
for f in users policy tls; do
	for r in ok failed; do
		expect_eq "metrics: berth_reload_total{file=$f,result=$r} starts at 0" 0 \
			"$(val "$M" "berth_reload_total{file=\"$f\",result=\"$r\"}")"
	done
	check "metrics: last reload time of $f present" grep -q "^berth_reload_last_success_timestamp_seconds{file=\"$f\"} " "$M"
done
check "metrics: berth_reload_total is a counter" grep -qx '# TYPE berth_reload_total counter' "$M"
check "metrics: berth_reload_last_success_timestamp_seconds is a gauge" \
	grep -qx '# TYPE berth_reload_last_success_timestamp_seconds gauge' "$M"

# --- the process
fds=$(val "$M" process_open_fds)
check "metrics: process_open_fds > 0 ($fds)" test "${fds:-0}" -gt 0
nfd=$(ls "/proc/$BERTH_PID/fd" | wc -l)
check "metrics: process_open_fds ($fds) near /proc ($nfd)" test "${fds:-0}" -ge $((nfd - 8)) -a "${fds:-0}" -le $((nfd + 8))
expect_eq "metrics: process_max_fds is the soft limit" \
	"$(awk '/^Max open files/ {print $4}' "/proc/$BERTH_PID/limits")" "$(val "$M" process_max_fds)"
rss=$(val "$M" process_resident_memory_bytes)
check "metrics: process_resident_memory_bytes > 1 MB ($rss)" test "${rss:-0}" -gt $((1024 * 1024))
check "metrics: process_virtual_memory_bytes >= resident" test "$(val "$M" process_virtual_memory_bytes)" -ge "${rss:-0}"
st=$(val "$M" process_start_time_seconds)
check "metrics: process_start_time_seconds ($st) is when the test started it ($t_start)" \
	awk -v s="$st" -v t="$t_start" 'BEGIN {exit !(s >= t - 2 && s <= t + 30)}'
cpu0=$(val "$M" process_cpu_seconds_total)
scrape "$T/m3"
check "metrics: process_cpu_seconds_total is a number that does not fall" \
	awk -v a="$cpu0" -v b="$(val "$T/m3" process_cpu_seconds_total)" 'BEGIN {exit !(a ~ /^[0-9.]+$/ && b + 0 >= a + 0)}'

finish
