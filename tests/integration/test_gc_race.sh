#!/usr/bin/env bash
# The online collector under load: berth with --gc-grace 4; writers push
# images that share layers into a few repositories (HEAD before upload, or a
# cross-repository mount), move tags, delete tags, delete manifests by
# digest and push deleted images again; readers pull (tag -> manifest ->
# every blob, digests checked); a collector POSTs /v2/_berth/gc every
# 200 ms. Every client step is logged with its start and end time; the
# merged logs are then checked against the safety rule:
#   - no MANIFEST_BLOB_UNKNOWN (a writer pushed or HEADed every blob of its
#     manifest just before), no timeout, no 5xx, no digest mismatch;
#   - no 404 on an item some client accessed less than the grace before
#     (unless a client deleted it explicitly in between), no 404 on a blob of
#     a manifest a reader got less than the grace before (unless that
#     manifest was deleted by digest in between), no 404 on a tag that
#     existed (pushed, or listed) and that nobody deleted since;
#   - no item the collector deleted had been accessed by a client less than
#     the grace before the deletion (the rule itself, from the reports).
# Then every listed tag resolves and its blobs are served; once writers
# stopped and one more grace passed, a last run leaves nothing waiting and
# DATA/blobs holds exactly the blobs of manifests reachable from tags; and
# `berth check` finds the stopped server's data clean.
#
# GC_RACE_SECONDS (30) is the load time; GC_RACE_WRITERS (4),
# GC_RACE_READERS (2); GC_RACE_KEEP=DIR keeps the step logs, the merged log,
# the findings and the server log there. Every loop stops at the deadline or
# after a bounded number of iterations, every request after 2 s (curl
# --max-time).
. "$(dirname "$0")/api_lib.sh"
export LC_ALL=C # EPOCHREALTIME with a '.', awk numbers

if ! is_berth; then
	echo "skip gc race (berth-specific, registry is $REGISTRY_UNDER_TEST)"
	exit 0
fi

GRACE=4
SECS=${GC_RACE_SECONDS:-30}
NWRITERS=${GC_RACE_WRITERS:-4}
NREADERS=${GC_RACE_READERS:-2}
STEP_MAX=2   # seconds, every client step: half the grace (with 1 s and a
             # 2 s grace, a CI machine's 1 s I/O stall failed the run)
MAX_ITER=100000
REPOS=(race/r0 race/r1 race/r2 race/r3)
NTAGS=6      # tags t0..t5 in every repository
NIMG=24      # distinct images (re-pushed over and over)
NBASE=8      # shared base layers
for n in "$SECS" "$NWRITERS" "$NREADERS"; do
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || { fail "gc race: bad knob '$n'"; exit 1; }
done
[ -n "${EPOCHREALTIME:-}" ] || { fail "gc race: bash without EPOCHREALTIME"; exit 1; }

keep_logs() {
	[ -n "${GC_RACE_KEEP:-}" ] || return 0
	mkdir -p "$GC_RACE_KEEP" && cp -r "$T/logs" "$T/berth.log" "$GC_RACE_KEEP/" &&
		cp "$T/all.log" "$T/findings" "$T/summary" "$GC_RACE_KEEP/" 2>/dev/null
	return 0
}
cleanup_fns+=(keep_logs)

start_registry --gc-grace "$GRACE" || { fail "gc race: registry did not start"; exit 1; }

# ---- content: base layers shared by images, a unique layer and a config
# per image; manifests prepared up front.
IMG=$T/img
mkdir -p "$IMG" "$T/logs"
declare -A BLOB_FILE BLOB_SIZE MAN_IMG
declare -a IMG_BLOBS IMG_MAN
salt=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
for b in $(seq 0 $((NBASE - 1))); do
	head -c $((12000 + b * 1500)) /dev/urandom >"$IMG/base$b"
done
for i in $(seq 0 $((NIMG - 1))); do
	head -c $((1000 + i * 97)) /dev/urandom >"$IMG/uniq$i"
	printf '{"architecture":"amd64","os":"linux","config":{"Env":["IMAGE=%s","RUN=%s"]}}' "$i" "$salt" >"$IMG/cfg$i"
	bases=()
	for b in $((i % NBASE)) $(((i * 3 + 1) % NBASE)) $(((i * 5 + 2) % NBASE)); do
		[[ " ${bases[*]-} " == *" $b "* ]] || bases+=("$b")
	done
	files=("$IMG/cfg$i")
	for b in "${bases[@]}"; do files+=("$IMG/base$b"); done
	files+=("$IMG/uniq$i")
	list='' layers=''
	for f in "${files[@]}"; do
		d=$(dg "$f")
		BLOB_FILE[$d]=$f
		BLOB_SIZE[$d]=$(sz "$f")
		list+="$d "
		if [ "$f" != "$IMG/cfg$i" ]; then
			layers+="${layers:+,}{\"mediaType\":\"$OCI_LAYER\",\"digest\":\"$d\",\"size\":${BLOB_SIZE[$d]}}"
		fi
	done
	IMG_BLOBS[i]=${list% }
	d=$(dg "$IMG/cfg$i")
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[%s]}' \
		"$OCI_MANIFEST" "$OCI_CONFIG" "$d" "${BLOB_SIZE[$d]}" "$layers" >"$IMG/m$i.json"
	IMG_MAN[i]=$(dg "$IMG/m$i.json")
	MAN_IMG[${IMG_MAN[i]}]=$i
done

# ---- client steps. Each worker writes one line per request to its own log:
#  start end worker op repo ref code digest since check curl_rc
# start and end are $EPOCHREALTIME (the clock of date +%s.%N), on purpose
# the wall clock: berth's grace is counted in time(2) seconds.
# op: bhead bput bmount bputs bget (ref = blob digest), mput mget mhead
# (ref = tag or digest, digest = the manifest's), tdel mdel tlist, gc and
# gcdel (the collector; gcdel: repo, ref = digest, digest = kind).
START=$EPOCHREALTIME
DEADLINE=$(awk -v s="$START" -v n="$SECS" 'BEGIN { printf "%.6f", s + n }')

# before_deadline: true while the clock is before DEADLINE (pure bash).
before_deadline() {
	local n=${EPOCHREALTIME/./} d=${DEADLINE/./}
	[ "$n" -lt "$d" ]
}

# cstep CURL_ARGS...: one request; sets S E CODE CDIG CLOC CRC.
cstep() {
	local out
	S=$EPOCHREALTIME
	out=$(curl -sS -g --max-time "$STEP_MAX" \
		-w '%{http_code}|%header{docker-content-digest}|%header{location}' \
		"$@" 2>>"$WD/curl.err")
	CRC=$?
	E=$EPOCHREALTIME
	IFS='|' read -r CODE CDIG CLOC <<<"$out"
	CLOC=${CLOC%$'\r'}
	[ "$CRC" = 0 ] && [ -n "$CODE" ] || CODE=000
	[ -n "$CDIG" ] || CDIG=-
}
# logstep OP REPO REF [DIGEST [SINCE [CHECK]]]
logstep() {
	printf '%s %s %s %s %s %s %s %s %s %s %s\n' "$S" "$E" "$W" "$1" "$2" "$3" \
		"$CODE" "${4:--}" "${5:--}" "${6:--}" "$CRC" >>"$LOG"
}
# err_of FILE: "CODE:detail" of an OCI error body, or "-"
err_of() {
	local b
	b=$(<"$1")
	if [[ $b =~ \"code\":\"([A-Z_]+)\" ]]; then
		ERR=${BASH_REMATCH[1]}
		[[ $b =~ \"detail\":\"([^\"]*)\" ]] && ERR+=":${BASH_REMATCH[1]}"
		ERR=${ERR// /_}
	else
		ERR=-
	fi
}
sha_of() { local h; h=$(sha256sum "$1"); SHA=sha256:${h%% *}; }

# list_tags REPO: TAGS (array) from GET tags/list; LIST_S its start time.
list_tags() {
	local b
	TAGS=()
	cstep -o "$WD/list" "$URL/v2/$1/tags/list"
	logstep tlist "$1" -
	LIST_S=$S
	[ "$CODE" = 200 ] || return 1
	b=$(<"$WD/list")
	[[ $b == *'"tags":['* ]] || return 1
	b=${b#*\"tags\":[}
	b=${b%%]*}
	b=${b//\"/}
	IFS=, read -r -a TAGS <<<"$b"
	[ "${#TAGS[@]}" -gt 0 ]
}

# get_manifest REPO REF SINCE: GET, the body's digest checked against the
# header and the set of images; MIMG gets the image number on success.
get_manifest() {
	local chk=-
	MIMG=
	cstep -H "$ACCEPT_ALL" -o "$WD/man" "$URL/v2/$1/manifests/$2"
	if [ "$CODE" = 200 ]; then
		sha_of "$WD/man"
		if [ "$SHA" != "$CDIG" ]; then
			chk=mismatch
		elif [ -z "${MAN_IMG[$SHA]:-}" ]; then
			chk=unknown
		else
			chk=ok
			MIMG=${MAN_IMG[$SHA]}
		fi
	fi
	logstep mget "$1" "$2" "$CDIG" "$3" "$chk"
	[ "$chk" = ok ]
}

# push_image REPO IMAGE TAG: every blob HEADed (200: skip, 404: upload) or
# mounted from a repository this writer pushed it to, then the manifest.
push_image() {
	local r=$1 i=$2 tag=$3 d from
	for d in ${IMG_BLOBS[i]}; do
		from=${WHERE[$d]:-}
		if [ -n "$from" ] && [ "$from" != "$r" ] && ((RANDOM % 3 == 0)); then
			cstep -o /dev/null -X POST "$URL/v2/$r/blobs/uploads/?mount=$d&from=$from"
			logstep bmount "$r" "$d" - "$from"
			case $CODE in
			201) WHERE[$d]=$r; continue ;;
			202) # not mountable (collected there): upload into the session
				cstep -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
					--data-binary "@${BLOB_FILE[$d]}" "$URL$(with_query "$CLOC" "digest=$d")"
				logstep bputs "$r" "$d"
				[ "$CODE" = 201 ] || return 1
				WHERE[$d]=$r
				continue
				;;
			*) return 1 ;;
			esac
		fi
		cstep -o /dev/null -I "$URL/v2/$r/blobs/$d"
		logstep bhead "$r" "$d"
		case $CODE in
		200) ;;
		404)
			cstep -o /dev/null -X POST -H 'Content-Type: application/octet-stream' \
				--data-binary "@${BLOB_FILE[$d]}" "$URL/v2/$r/blobs/uploads/?digest=$d"
			logstep bput "$r" "$d"
			[ "$CODE" = 201 ] || return 1
			;;
		*) return 1 ;;
		esac
		WHERE[$d]=$r
	done
	cstep -o "$WD/resp" -X PUT -H "Content-Type: $OCI_MANIFEST" \
		--data-binary "@$IMG/m$i.json" "$URL/v2/$r/manifests/$tag"
	ERR=-
	[ "$CODE" = 201 ] || err_of "$WD/resp"
	logstep mput "$r" "$tag" "${IMG_MAN[i]}" - "$ERR"
	[ "$CODE" = 201 ]
}

writer() {
	W=w$1 WD=$T/$W LOG=$T/logs/$W.log
	mkdir -p "$WD"
	: >"$LOG"
	RANDOM=$((BASHPID * 31 + $1))
	declare -A WHERE=()
	local n=0 r i t op del_r='' del_i='' del_t='' d
	while before_deadline && [ "$n" -lt "$MAX_ITER" ]; do
		n=$((n + 1))
		r=${REPOS[RANDOM % ${#REPOS[@]}]}
		i=$((RANDOM % NIMG))
		t=t$((RANDOM % NTAGS))
		op=$((RANDOM % 100))
		if [ "$op" -lt 40 ]; then # push (moves the tag if it existed)
			push_image "$r" "$i" "$t"
		elif [ "$op" -lt 55 ]; then # move a listed tag to another image
			if list_tags "$r"; then
				t=${TAGS[RANDOM % ${#TAGS[@]}]}
				if get_manifest "$r" "$t" "$LIST_S"; then
					[ "$i" = "$MIMG" ] && i=$(((i + 1) % NIMG))
				fi
			fi
			push_image "$r" "$i" "$t"
		elif [ "$op" -lt 70 ]; then # delete a listed tag
			list_tags "$r" || continue
			t=${TAGS[RANDOM % ${#TAGS[@]}]}
			cstep -o /dev/null -X DELETE "$URL/v2/$r/manifests/$t"
			logstep tdel "$r" "$t"
		elif [ "$op" -lt 85 ]; then # delete a manifest by digest
			d=${IMG_MAN[i]}
			if ((RANDOM % 2)) && list_tags "$r"; then
				t=${TAGS[RANDOM % ${#TAGS[@]}]}
				get_manifest "$r" "$t" "$LIST_S" && { d=$CDIG i=$MIMG; }
			fi
			cstep -o /dev/null -X DELETE "$URL/v2/$r/manifests/$d"
			logstep mdel "$r" "$d" "$d"
			[ "$CODE" = 202 ] && { del_r=$r del_i=$i del_t=$t; } # pushed again later
		else # push a deleted image again, same content
			if [ -n "$del_r" ]; then
				push_image "$del_r" "$del_i" "$del_t"
				del_r=
			else
				push_image "$r" "$i" "$t"
			fi
		fi
	done
}

reader() {
	W=r$1 WD=$T/$W LOG=$T/logs/$W.log
	mkdir -p "$WD"
	: >"$LOG"
	RANDOM=$((BASHPID * 17 + $1))
	local n=0 r t d ms md chk
	while before_deadline && [ "$n" -lt "$MAX_ITER" ]; do
		n=$((n + 1))
		r=${REPOS[RANDOM % ${#REPOS[@]}]}
		if ! list_tags "$r"; then
			sleep 0.02
			continue
		fi
		t=${TAGS[RANDOM % ${#TAGS[@]}]}
		get_manifest "$r" "$t" "$LIST_S" || continue
		ms=$S md=$CDIG
		if ((RANDOM % 4 == 0)); then
			cstep -o /dev/null -I -H "$ACCEPT_ALL" "$URL/v2/$r/manifests/$md"
			logstep mhead "$r" "$md" "$CDIG"
		fi
		for d in ${IMG_BLOBS[MIMG]}; do
			cstep -o "$WD/blob" "$URL/v2/$r/blobs/$d"
			chk=-
			if [ "$CODE" = 200 ]; then
				sha_of "$WD/blob"
				if [ "$SHA" = "$d" ]; then chk=ok; else chk=mismatch; fi
			fi
			logstep bget "$r" "$d" "$md" "$ms" "$chk"
		done
	done
}

collector() {
	W=gc WD=$T/gc LOG=$T/logs/gc.log
	mkdir -p "$WD"
	: >"$LOG"
	local n=0 line kind repo dg_
	while before_deadline && [ "$n" -lt "$MAX_ITER" ]; do
		n=$((n + 1))
		cstep -o "$WD/rep.json" -X POST "$URL/v2/_berth/gc"
		if [ "$CODE" = 200 ]; then
			line=$(jq -r '"\(.manifests.deleted)/\(.blobs.deleted)/\(.bytes_freed)/\(.waiting.count)"' "$WD/rep.json" 2>/dev/null)
			logstep gc - - "${line:-unparsed}"
			while read -r kind repo dg_; do
				[ -n "$kind" ] || continue
				printf '%s %s %s gcdel %s %s 200 %s - - 0\n' "$S" "$E" "$W" "$repo" "$dg_" "$kind" >>"$LOG"
			done < <(jq -r '.deleted[] | "\(.kind) \(if .repository == "" then "-" else .repository end) \(.digest)"' "$WD/rep.json" 2>/dev/null)
		else
			logstep gc - -
		fi
		sleep 0.2
	done
}

# ---- the load
PIDS=()
for k in $(seq 1 "$NWRITERS"); do writer "$k" & PIDS+=($!); done
for k in $(seq 1 "$NREADERS"); do reader "$k" & PIDS+=($!); done
collector & PIDS+=($!)

# Bounded wait: a worker still running 30 s after the deadline is stuck.
stuck=
for _ in $(seq 1 $(((SECS + 30) * 10))); do
	alive=0
	for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
	[ "$alive" -eq 0 ] && break
	sleep 0.1
done
for p in "${PIDS[@]}"; do
	if kill -0 "$p" 2>/dev/null; then stuck+=" $p"; kill "$p" 2>/dev/null; fi
done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
if [ -n "$stuck" ]; then fail "every worker stopped within 30 s of the deadline (stuck:$stuck)"; else ok "every worker stopped at the deadline"; fi

# ---- analysis of the merged logs
sort -n -k1,1 "$T"/logs/*.log >"$T/all.log"
# Accesses (successful steps) are kept per key: "B digest" (a blob, in any
# repository), "L repo digest" (a blob in that repository), "M repo@digest"
# (a manifest), "T repo:tag" (a tag, by its pushes); explicit deletes (202)
# per "T repo:tag" and "M repo@digest". Lines are sorted by start time, so
# the k-th access of a key starts no earlier than the (k-1)-th.
awk -v G="$GRACE" -v out="$T/findings" -v sum="$T/summary" '
# The latest access (by start) of key that ended by t; sets AS, AE.
function last_before(key, t,    k) {
	for (k = NACC[key]; k >= 1; k--)
		if (ACE[key, k] <= t) { AS = ACS[key, k]; AE = ACE[key, k]; return 1 }
	return 0
}
function acc(key, s, e,    k) { k = ++NACC[key]; ACS[key, k] = s; ACE[key, k] = e }
# 1 when an explicit delete of key may have committed in [from, to].
function deleted_in(key, from, to,    k) {
	for (k = 1; k <= ND[key]; k++)
		if (DE[key, k] >= from && DS[key, k] <= to) return 1
	return 0
}
function del(key, s, e,    k) { k = ++ND[key]; DS[key, k] = s; DE[key, k] = e }
function finding(class, msg) { print class " " msg >out; N[class]++ }
function ts(x) { return sprintf("%.3f", x - T0) }
NR == FNR {
	if (T0 == "") T0 = $1
	op = $4; r = $5; ref = $6; code = $7; d = $8
	if ((op == "bhead" && code == 200) || (op ~ /^(bput|bputs|bmount)$/ && code == 201) ||
	    (op == "bget" && code == 200 && $10 == "ok")) {
		acc("B " ref, $1, $2); acc("L " r " " ref, $1, $2)
	}
	if (op == "mput" && code == 201) {
		acc("M " r "@" d, $1, $2); acc("T " r ":" ref, $1, $2); PUSHED[r ":" ref, d] = 1
	}
	if ((op == "mget" || op == "mhead") && code == 200 && d != "-") acc("M " r "@" d, $1, $2)
	if (op == "tdel" && code == 202) del("T " r ":" ref, $1, $2)
	if (op == "mdel" && code == 202) del("M " r "@" ref, $1, $2)
	next
}
{
	op = $4; r = $5; ref = $6; code = $7; d = $8; s = $1; e = $2
	COUNT[op " " code]++
	if (op == "gcdel") {
		key = ($8 == "blob") ? "B " ref : "M " r "@" ref
		if (last_before(key, s) && e - AS < G)
			finding("deleted_live", "t=" ts(e) " collector deleted " $8 " " (r == "-" ? "" : r "@") ref " at most " sprintf("%.3f", e - AS) " s after a client accessed it (access " ts(AS) "-" ts(AE) ", gc run " ts(s) "-" ts(e) ")")
		next
	}
	if (code == "000") { finding("timeout", "t=" ts(s) " " $3 " " op " " r " " ref " curl rc " $11 " after " sprintf("%.3f", e - s) " s"); next }
	if (code ~ /^5/) { finding("server_error", "t=" ts(s) " " $3 " " op " " r " " ref " -> " code); next }
	if ((op == "bget" || op == "mget") && code == 200 && ($10 == "mismatch" || $10 == "unknown")) {
		finding("mismatch", "t=" ts(s) " " $3 " " op " " r " " ref " -> " $10 " (header " d ")"); next
	}
	if (op == "mput" && code != 201) {
		if ($10 ~ /^MANIFEST_BLOB_UNKNOWN/) {
			b = $10; sub(/^MANIFEST_BLOB_UNKNOWN:?/, "", b)
			if (b != "" && last_before("L " r " " b, s))
				why = "its blob " b " was accessed in " r " by a client " sprintf("%.3f", e - AS) " s before (" ts(AS) ")"
			else
				why = "missing " b
			finding("manifest_blob_unknown", "t=" ts(s) " " $3 " PUT " r ":" ref " (" d ") -> MANIFEST_BLOB_UNKNOWN: " why)
		} else {
			finding("unexpected", "t=" ts(s) " " $3 " PUT " r ":" ref " -> " code " " $10)
		}
		next
	}
	if ((op ~ /^(bput|bputs)$/ && code != 201) || (op == "bmount" && code != 201 && code != 202) ||
	    (op ~ /^(tdel|mdel)$/ && code != 202 && code != 404) ||
	    (op ~ /^(tlist|mget|mhead|bget|bhead)$/ && code != 200 && code != 404) ||
	    (op == "gc" && code != 200)) {
		finding("unexpected", "t=" ts(s) " " $3 " " op " " r " " ref " -> " code); next
	}
	if (code != 404 || op == "tdel" || op == "mdel" || op == "tlist") next
	# A 404 on a blob: accessed in this repository less than the grace
	# before (nobody deletes blobs by hand here)?
	if (op == "bhead" || op == "bget") {
		if (last_before("L " r " " ref, s) && e - AS < G)
			finding("lost_404", "t=" ts(s) " " $3 " " op " " r " " ref " -> 404, " sprintf("%.3f", e - AS) " s after a client accessed it there (" ts(AS) "-" ts(AE) ")")
		else if (op == "bget" && e - $9 < G && !deleted_in("M " r "@" d, $9, e))
			finding("lost_404", "t=" ts(s) " " $3 " GET blob " r " " ref " -> 404, listed by manifest " d " read " sprintf("%.3f", e - $9) " s before and not deleted by digest since")
		next
	}
	# A 404 on a manifest by digest: accessed less than the grace before
	# and not deleted by digest since?
	if (ref ~ /:/) {
		if (last_before("M " r "@" ref, s) && e - AS < G && !deleted_in("M " r "@" ref, AS, e))
			finding("lost_404", "t=" ts(s) " " $3 " " op " " r "@" ref " -> 404, " sprintf("%.3f", e - AS) " s after a client accessed it (" ts(AS) ") and not deleted since")
		next
	}
	# A 404 on a tag: it existed (listed at $9, or pushed) and no delete of
	# the tag or of a manifest it was pushed with may have committed since.
	p = ($9 != "-") ? $9 : ""
	if (last_before("T " r ":" ref, s) && (p == "" || AS > p)) p = AS
	if (p == "") next
	if (deleted_in("T " r ":" ref, p, e)) next
	exc = 0
	for (k in PUSHED) { split(k, kk, SUBSEP); if (kk[1] == r ":" ref && deleted_in("M " r "@" kk[2], p, e)) { exc = 1; break } }
	if (!exc)
		finding("lost_404", "t=" ts(s) " " $3 " " op " " r ":" ref " -> 404, the tag existed at " ts(p) " and nobody deleted it since")
}
END {
	for (c in COUNT) print c, COUNT[c] >sum
	for (c in N) print "count " c " " N[c] >out
}' "$T/all.log" "$T/all.log"
: >>"$T/findings"
sort -o "$T/summary" "$T/summary"
echo "steps (op status count): $(tr '\n' ';' <"$T/summary")"
steps=$(awk '{ n += $3 } END { print n + 0 }' "$T/summary")
runs=$(awk '$1 == "gc" && $2 == 200 { print $3 }' "$T/summary")
pushes=$(awk '$1 == "mput" && $2 == 201 { print $3 }' "$T/summary")
pulls=$(awk '$1 == "bget" && $2 == 200 { print $3 }' "$T/summary")
deleted=$(awk '$1 == "gcdel" { print $3 }' "$T/summary")
if [ "${runs:-0}" -ge 10 ] && [ "${pushes:-0}" -ge 20 ] && [ "${pulls:-0}" -ge 20 ] && [ "${deleted:-0}" -ge 1 ]; then
	ok "gc race load: $steps steps, ${pushes:-0} manifest pushes, ${pulls:-0} blob pulls, ${runs:-0} collections deleting ${deleted:-0} items"
else
	fail "gc race load too small to mean anything: $steps steps, ${pushes:-0} manifest pushes, ${pulls:-0} blob pulls, ${runs:-0} runs, ${deleted:-0} deleted"
fi

# verdict NAME CLASS: ok when the analysis found nothing of CLASS.
verdict() {
	local n
	n=$(awk -v c="$2" '$1 == "count" && $2 == c { print $3 }' "$T/findings")
	if [ -z "$n" ]; then
		ok "$1"
	else
		fail "$1: $n, e.g. $(awk -v c="$2" '$1 == c { $1 = ""; print }' "$T/findings" | head -3 | tr '\n' ';')"
		awk -v c="$2" '$1 == c' "$T/findings" | head -20 >&2
	fi
}
verdict "every client step answered within ${STEP_MAX} s" timeout
verdict "no 5xx under gc load" server_error
verdict "zero MANIFEST_BLOB_UNKNOWN on pushes whose blobs were just pushed or HEADed" manifest_blob_unknown
verdict "no unexpected status under gc load" unexpected
verdict "zero digest mismatches on pulled manifests and blobs" mismatch
verdict "no 404 on an item accessed within the grace, a blob of a manifest just read, or a tag nobody deleted" lost_404
verdict "the collector deleted nothing a client accessed within the grace" deleted_live

# ---- after the load: every listed tag resolves and its blobs are served
bad=
ntags=0
for r in "${REPOS[@]}"; do
	req GET "/v2/$r/tags/list"
	[ "$ST" = 200 ] || [ "$ST" = 404 ] || { bad+="tags/list $r $(ctx); "; continue; }
	[ "$ST" = 200 ] || continue
	for t in $(jq -r '.tags // [] | .[]' "$T/b"); do
		ntags=$((ntags + 1))
		req GET "/v2/$r/manifests/$t" -H "$ACCEPT_ALL"
		if [ "$ST" != 200 ] || [ "$(dg "$T/b")" != "$(hdr Docker-Content-Digest)" ]; then
			bad+="$r:$t $(ctx); "
			continue
		fi
		for d in $(jq -r '[.config.digest] + [.layers[].digest] | .[]' "$T/b"); do
			req GET "/v2/$r/blobs/$d"
			[ "$ST" = 200 ] && [ "$(dg "$T/b")" = "$d" ] || bad+="$r:$t blob $d -> $ST; "
		done
	done
done
if [ -z "$bad" ]; then ok "all $ntags listed tags resolve and every blob they reference is served intact"; else fail "listed tags resolve with their blobs: $bad"; fi

# ---- one more grace without clients, one more run: nothing left waiting
sleep $((GRACE + 2)).5
req POST /v2/_berth/gc
if [ "$ST" = 200 ]; then
	cp "$T/b" "$T/last.json"
	expect_jq "last run: nothing left waiting" '[.waiting.count, .queue]' '[0,0]'
else
	fail "last collection run: $(ctx)"
	echo '{}' >"$T/last.json"
fi

# ---- DATA/blobs holds exactly the blobs of manifests reachable from tags
: >"$T/ref.txt"
for r in "${REPOS[@]}"; do
	req GET "/v2/$r/tags/list"
	[ "$ST" = 200 ] || continue
	for t in $(jq -r '.tags // [] | .[]' "$T/b"); do
		req GET "/v2/$r/manifests/$t" -H "$ACCEPT_ALL"
		jq -r '[.config] + .layers | .[] | "\(.digest) \(.size)"' "$T/b" >>"$T/ref.txt"
	done
done
sort -u -o "$T/ref.txt" "$T/ref.txt"
find "$T/data/blobs" -type f -printf '%f %s\n' | awk 'length($1) == 64 && $1 ~ /^[0-9a-f]+$/ { print "sha256:" $0; next } { print "stray " $0 }' | sort -u >"$T/files.txt"
ref_n=$(wc -l <"$T/ref.txt") ref_b=$(awk '{ n += $2 } END { print n + 0 }' "$T/ref.txt")
file_n=$(wc -l <"$T/files.txt") file_b=$(awk '{ n += $2 } END { print n + 0 }' "$T/files.txt")
if cmp -s "$T/ref.txt" "$T/files.txt"; then
	ok "blobs/ holds exactly the $ref_n referenced blobs ($ref_b bytes)"
else
	fail "blobs/ holds exactly the referenced blobs: referenced $ref_n ($ref_b bytes), files $file_n ($file_b bytes); only referenced: $(comm -23 "$T/ref.txt" "$T/files.txt" | head -3 | tr '\n' ';') only on disk: $(comm -13 "$T/ref.txt" "$T/files.txt" | head -3 | tr '\n' ';')"
fi
badfiles=$(find "$T/data/blobs" -type f -name '[0-9a-f]*' -exec sha256sum {} + | awk '{ n = split($2, p, "/"); if ($1 != p[n]) print p[n] }' | head -3)
if [ -z "$badfiles" ]; then ok "every blob file's bytes match its name"; else fail "blob files whose bytes do not match their name: $badfiles"; fi

# ---- stop the server (sanitizer reports, 5xx of the checks above), then
# the offline check of the index against the files
finish
out=$("$BERTH_BIN" check --deep --data "$T/data" 2>&1)
rc=$?
if [ "$rc" = 2 ] && [[ $out == *"unknown command"* ]]; then
	echo "skip berth check after the race (no 'berth check' in this build)"
elif [ "$rc" = 0 ]; then
	ok "berth check --deep --data finds the data clean after the race"
else
	fail "berth check --deep --data after the race exits $rc: $(printf '%s' "$out" | head -5 | tr '\n' ';')"
fi
if grep -q 'Sanitizer\|runtime error:' <<<"$out"; then
	fail "no sanitizer report from berth check: $(grep -m3 'Sanitizer\|runtime error:' <<<"$out" | tr '\n' ';')"
fi
