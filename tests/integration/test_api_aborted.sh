#!/usr/bin/env bash
# A download the client cuts off is logged and counted as such: the access
# log line has "aborted": true and the bytes the client acknowledged (not
# the blob's size), berth_http_requests_aborted_total counts it and
# berth_http_response_bytes_total grows by what was sent, not promised. A
# download that completes is logged with its full size and no "aborted".
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
start_berth || { fail "aborted: berth did not start"; exit 1; }

MIB=$((1024 * 1024))
head -c $((32 * MIB)) /dev/urandom >"$T/big"
D=sha256:$(sha256sum "$T/big" | cut -d' ' -f1)
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "@$T/big" \
	-H 'Content-Type: application/octet-stream' "$URL/v2/ab/blobs/uploads/?digest=$D")
expect_eq "aborted.push 32 MiB" 201 "$st"

# metric NAME: the blob route's value of a counter.
metric() {
	curl -s "$URL/metrics" | awk -v m="$1{route=\"blob\"}" '$1 == m {print $2}'
}
bytes0=$(metric berth_http_response_bytes_total)
ab0=$(metric berth_http_requests_aborted_total)

# Cut off: read at 2 MB/s for 1 s, then the client goes away.
curl -s --limit-rate 2M --max-time 1 -o "$T/part" "$URL/v2/ab/blobs/$D"
got=$(stat -c %s "$T/part")
check "aborted.client got part of it ($got bytes)" test "$got" -gt 0 -a "$got" -lt $((32 * MIB))
line=""
for _ in $(seq 1 50); do
	line=$(grep '"msg":"request"' "$T/berth.log" | grep '"route":"blob"' | grep '"method":"GET"' | tail -1)
	[ -n "$line" ] && break
	sleep 0.1
done
expect_eq "aborted.log marks it aborted" true "$(jq -r '.aborted // false' <<<"$line")"
logged=$(jq -r '.bytes' <<<"$line")
check "aborted.log bytes ($logged) are what was sent, not 32 MiB" test "$logged" -lt $((32 * MIB))
# The client read $got; the kernel buffers on both sides hold what it
# acknowledged but did not read: a few MiB at most.
check "aborted.log bytes ($logged) cover what the client read ($got)" test "$logged" -ge "$got"
check "aborted.log bytes within 8 MiB of what the client read" test $((logged - got)) -le $((8 * MIB))
expect_eq "aborted.metric counts one aborted request" $((ab0 + 1)) "$(metric berth_http_requests_aborted_total)"
bytes1=$(metric berth_http_response_bytes_total)
expect_eq "aborted.metric bytes grew by the logged bytes" $((bytes0 + logged)) "$bytes1"

# A whole download: its full size, not aborted.
curl -s -o "$T/whole" "$URL/v2/ab/blobs/$D"
expect_eq "aborted.whole download intact" "$D" "sha256:$(sha256sum "$T/whole" | cut -d' ' -f1)"
sleep 0.2
line=$(grep '"msg":"request"' "$T/berth.log" | grep '"route":"blob"' | grep '"method":"GET"' | tail -1)
expect_eq "aborted.whole logged with its size" $((32 * MIB)) "$(jq -r '.bytes' <<<"$line")"
expect_eq "aborted.whole not marked" false "$(jq -r '.aborted // false' <<<"$line")"
expect_eq "aborted.metric unchanged by a whole download" $((ab0 + 1)) "$(metric berth_http_requests_aborted_total)"
