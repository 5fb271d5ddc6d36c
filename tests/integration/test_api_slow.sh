#!/usr/bin/env bash
# Hostile slow clients (--header-timeout, --idle-timeout, --max-connections)
# and an upload whose PATCH stalls mid-body:
#   - 2,000 connections (SLOW_CONNS per kind, default 1000) that send
#     their request head a byte at a time or send nothing are closed
#     --header-timeout after their accept, however steadily they drip; a
#     normal pull is served meanwhile, within 1 s;
#   - a connection over --max-connections is closed at once (not left in
#     the listen backlog); under the limit again, new ones are served;
#   - a kept-alive connection idle between requests is left to the idle
#     timeout, but its next request's head is timed from its first byte;
#   - a PATCH whose body stalls is cut after --idle-timeout; meanwhile the
#     upload's status answers 204 with the Range stored so far and another
#     PATCH is refused as "in use"; afterwards the upload resumes from that
#     Range and completes.
# Every wait is bounded; the script takes about 15 s.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/api_lib.sh

HEADER_TO=2
IDLE_TO=4
# Descriptors: the probe holds 2 N sockets plus the over-limit ones; the
# server raises its own limit from --max-connections. A machine whose hard
# limit is lower gets fewer (said in a figure).
N=${SLOW_CONNS:-1000}
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
FDS=$(ulimit -Sn)
[ "$FDS" = unlimited ] || [ $((2 * N + 400)) -le "$FDS" ] || N=$(((FDS - 400) / 2))
echo "figure slow_connections $((2 * N)) (descriptor limit $FDS)"
MAXC=$((2 * N + 100))
start_registry --max-connections $MAXC --header-timeout $HEADER_TO \
	--idle-timeout $IDLE_TO --access-log off ||
	{ fail "api_slow: registry did not start"; exit 1; }
berth_only "slow clients" || { finish; exit 0; }

mk_image slow img || fail "api_slow: pushing the image"
push_manifest slow v1 "$T/img.json" "$OCI_MANIFEST" || fail "api_slow: pushing the manifest"


# ---- slow heads, idle connections, the connection limit ----
timeout 60 python3 - "$PORT" "$HEADER_TO" "$IDLE_TO" "$MAXC" "$N" <<-'EOF' 2>&1 | report slow-clients
	import resource, socket, sys, time, errno
	port, header_to, idle_to, maxc, n = (int(a) for a in sys.argv[1:6])
	hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
	resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
	ADDR = ("127.0.0.1", port)
	ACCEPT = ("application/vnd.oci.image.manifest.v1+json, "
	          "application/vnd.oci.image.index.v1+json")

	def say(*a):
	    print(*a, flush=True)

	def check(name, cond, why=""):
	    say(("ok " + name) if cond else ("FAIL %s: %s" % (name, why)))

	def closed(s):
	    """1 when the server closed s (EOF or reset), 0 when still open."""
	    to = s.gettimeout()
	    s.setblocking(False)
	    try:
	        d = s.recv(65536)
	        return 1 if d == b"" else 0
	    except BlockingIOError:
	        return 0
	    except OSError:
	        return 1
	    finally:
	        s.settimeout(to)

	def get(path, s=None, limit=3.0, close=True):
	    """One GET; returns (status or None, seconds, socket)."""
	    t0 = time.monotonic()
	    if s is None:
	        s = socket.create_connection(ADDR, timeout=limit)
	    s.settimeout(limit)
	    hdr = "Connection: close\r\n" if close else ""
	    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept: %s\r\n%s\r\n"
	               % (path, ACCEPT, hdr)).encode())
	    data = b""
	    try:
	        while b"\r\n\r\n" not in data:
	            d = s.recv(65536)
	            if not d:
	                break
	            data += d
	        if not close and b"\r\n\r\n" in data:
	            head, _, rest = data.partition(b"\r\n\r\n")
	            n = 0
	            for line in head.split(b"\r\n"):
	                if line.lower().startswith(b"content-length:"):
	                    n = int(line.split(b":")[1])
	            while len(rest) < n:
	                d = s.recv(65536)
	                if not d:
	                    break
	                rest += d
	    except OSError:
	        pass
	    st = None
	    if data.startswith(b"HTTP/1.1 "):
	        st = int(data[9:12])
	    if close:
	        s.close()
	    return st, time.monotonic() - t0, s

	# n connections dripping a request head, n sending nothing
	slow, idle = [], []
	for i in range(n):
	    s = socket.create_connection(ADDR)
	    s.setblocking(False)
	    slow.append([s, time.monotonic(), None])
	    s = socket.create_connection(ADDR)
	    s.setblocking(False)
	    idle.append([s, time.monotonic(), None])
	head = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
	pos = 0

	def drip():
	    global pos
	    b = head[pos:pos + 1] if pos < len(head) else b"a"
	    pos += 1
	    for c in slow:
	        if c[2] is None:
	            try:
	                c[0].send(b)
	            except OSError:
	                c[2] = time.monotonic()

	def sweep():
	    for c in slow + idle:
	        if c[2] is None and closed(c[0]):
	            c[2] = time.monotonic()

	drip()
	time.sleep(0.3)
	drip()
	# a kept-alive connection: one request now, the next after an idle
	# time longer than the header timeout (shorter than the idle timeout)
	ka_st, _, ka = get("/v2/", close=False)
	check("kept-alive connection: first GET 200", ka_st == 200, ka_st)
	ka_t = time.monotonic()
	# another one that drips its second request's head
	sk_st, _, sk = get("/v2/", close=False)
	sk.setblocking(False)
	sk_t0, sk_closed, sk_pos = time.monotonic(), None, 0

	st, dt, _ = get("/v2/slow/manifests/v1")
	say("fig manifest_get_with_%d_slow_idle_open_ms %.0f" % (2 * n, dt * 1000))
	check("manifest GET served while %d slow/idle connections are open "
	      "(<1 s)" % (2 * n), st == 200 and dt < 1.0,
	      "status %s in %.2f s" % (st, dt))

	# fill up to and over the limit: each sends a whole request
	extra = []
	t0 = time.monotonic()
	for i in range(maxc - 2 * n + 60):
	    try:
	        s = socket.create_connection(ADDR, timeout=2)
	        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
	        s.setblocking(False)
	        extra.append([s, time.monotonic(), None, None])
	    except OSError:
	        pass
	# outcome of each within 3 s: an answer or a close
	while time.monotonic() - t0 < 3 and any(e[2] is None for e in extra):
	    for e in extra:
	        if e[2] is not None:
	            continue
	        try:
	            d = e[0].recv(65536, socket.MSG_DONTWAIT)
	            e[2] = time.monotonic() - e[1]
	            e[3] = "served" if d.startswith(b"HTTP/1.1 200") else "closed"
	        except BlockingIOError:
	            pass
	        except OSError:
	            e[2] = time.monotonic() - e[1]
	            e[3] = "closed"
	    drip()
	    time.sleep(0.05)
	served = [e for e in extra if e[3] == "served"]
	refused = [e for e in extra if e[3] == "closed"]
	waiting = [e for e in extra if e[3] is None]
	say("fig over_limit: %d served, %d closed, %d no answer in 3 s"
	    % (len(served), len(refused), len(waiting)))
	if refused:
	    say("fig over_limit_close_max_ms %.0f"
	        % (max(e[2] for e in refused) * 1000))
	check("connections over --max-connections are closed, none left "
	      "waiting", len(refused) >= 20 and not waiting,
	      "%d closed, %d waiting" % (len(refused), len(waiting)))
	check("an over-limit connection is closed within 1 s",
	      refused and max(e[2] for e in refused) < 1.0,
	      refused and "%.2f s" % max(e[2] for e in refused))
	check("under the limit, new connections are served (%d)" % len(served),
	      len(served) >= 50, len(served))
	for e in extra:
	    e[0].close()

	# wait (bounded) for the slow and idle ones to be closed
	t_end = time.monotonic() + header_to + 4
	nxt = time.monotonic()
	while time.monotonic() < t_end:
	    if time.monotonic() >= nxt:
	        drip()
	        nxt += 0.25
	        if sk_closed is None:
	            try:
	                sk.send(head[sk_pos:sk_pos + 1])
	                if sk_pos == 0:
	                    sk_t0 = time.monotonic()
	                sk_pos += 1
	            except OSError:
	                sk_closed = time.monotonic()
	            if sk_closed is None and closed(sk):
	                sk_closed = time.monotonic()
	    sweep()
	    if all(c[2] is not None for c in slow + idle) and sk_closed:
	        break
	    time.sleep(0.02)
	for name, group in (("slow-head", slow), ("idle", idle)):
	    done = [c[2] - c[1] for c in group if c[2] is not None]
	    if done:
	        say("fig %s_closed_after_s min %.2f max %.2f (%d of %d)"
	            % (name, min(done), max(done), len(done), len(group)))
	    check("all %d %s connections closed by the header timeout"
	          % (len(group), name), len(done) == len(group),
	          "%d of %d" % (len(done), len(group)))
	    check("%s connections closed %d-%d s after their accept"
	          % (name, header_to, header_to + 2),
	          done and min(done) >= header_to - 0.3 and
	          max(done) <= header_to + 2,
	          done and "%.2f-%.2f s" % (min(done), max(done)))
	    for c in group:
	        c[0].close()
	if sk_closed:
	    say("fig slow_second_head_closed_after_s %.2f" % (sk_closed - sk_t0))
	check("kept-alive connection dripping its next head is closed "
	      "%d-%d s after its first byte" % (header_to, header_to + 2),
	      sk_closed and header_to - 0.3 <= sk_closed - sk_t0 <= header_to + 2,
	      sk_closed and "%.2f s" % (sk_closed - sk_t0))

	# the kept-alive one was idle longer than the header timeout
	time.sleep(max(0, header_to + 1 - (time.monotonic() - ka_t)))
	idle_s = time.monotonic() - ka_t
	check("kept-alive connection idle %.1f s (> header timeout) still open"
	      % idle_s, idle_s < idle_to - 0.5 and not closed(ka), idle_s)
	ka.setblocking(True)
	st, _, _ = get("/v2/", s=ka)
	check("kept-alive connection serves its next request", st == 200, st)

	st, dt, _ = get("/v2/slow/manifests/v1")
	say("fig manifest_get_after_ms %.0f" % (dt * 1000))
	check("manifest GET served afterwards", st == 200 and dt < 1.0,
	      "status %s in %.2f s" % (st, dt))
	say("end")
EOF

req GET /metrics
n_cut=$(sed -n 's/^berth_http_connections_closed_total{reason="header_timeout"} //p' "$T/b")
n_lim=$(sed -n 's/^berth_http_connections_closed_total{reason="limit"} //p' "$T/b")
echo "figure metrics: closed for the header timeout $n_cut, over the limit $n_lim"
check "metrics count the connections closed for the header timeout (>= $((2 * N + 1)))" [ "${n_cut:-0}" -ge $((2 * N + 1)) ]
check "metrics count the connections closed over the limit (>= 20)" [ "${n_lim:-0}" -ge 20 ]

# ---- a PATCH that stalls mid-body ----
head -c $((1024 * 1024)) /dev/urandom >"$T/big"
req POST /v2/slow/blobs/uploads/
expect_status "upload started" 202
LOC=$(loc_path)
timeout 30 python3 - "$PORT" "$LOC" "$T/big" "$IDLE_TO" <<-'EOF' 2>&1 | report stalled-upload
	import socket, sys, time
	port, loc, path, idle_to = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
	ADDR = ("127.0.0.1", int(port))
	data = open(path, "rb").read()
	half = 600 * 1024

	def say(*a):
	    print(*a, flush=True)

	def check(name, cond, why=""):
	    say(("ok " + name) if cond else ("FAIL %s: %s" % (name, why)))

	def request(method, target, body=b"", headers=()):
	    s = socket.create_connection(ADDR, timeout=5)
	    h = "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method, target)
	    h += "Content-Length: %d\r\n" % len(body)
	    for x in headers:
	        h += x + "\r\n"
	    s.sendall(h.encode() + b"\r\n" + body)
	    resp = b""
	    try:
	        while True:
	            d = s.recv(65536)
	            if not d:
	                break
	            resp += d
	    except OSError:
	        pass
	    s.close()
	    head = resp.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
	    st = int(head[0][9:12]) if head[0].startswith("HTTP/1.1 ") else None
	    hd = {}
	    for line in head[1:]:
	        k, _, v = line.partition(":")
	        hd[k.strip().lower()] = v.strip()
	    return st, hd, resp.partition(b"\r\n\r\n")[2]

	def stored(hd):
	    r = hd.get("range", "")
	    return int(r.split("-")[1]) + 1 if "-" in r else None

	# the stalled PATCH: headers for 1 MiB, 600 KiB of body, then nothing
	st_sock = socket.create_connection(ADDR)
	st_sock.sendall(("PATCH %s HTTP/1.1\r\nHost: x\r\n"
	                 "Content-Type: application/octet-stream\r\n"
	                 "Content-Range: 0-%d\r\nContent-Length: %d\r\n\r\n"
	                 % (loc, len(data) - 1, len(data))).encode())
	st_sock.sendall(data[:half])
	t_stall = time.monotonic()

	# status while it is attached: 204 with what is in the file. "0-0"
	# means nothing stored yet (or one byte): a slow machine may not have
	# read the body when the first status comes, so wait (up to 2 s) for a
	# Range that says more and has stopped growing.
	got, prev = None, -1
	for _ in range(20):
	    st, hd, _ = request("GET", loc)
	    got = (st, hd.get("range"))
	    n = stored(hd) if st == 204 else None
	    if st != 204 or (n is not None and n > 1 and n == prev):
	        break
	    prev = n
	    time.sleep(0.1)
	n_stored = stored(hd) if st == 204 else None
	say("fig stalled_patch_status %s Range %s (%.2f s after the stall)"
	    % (st, hd.get("range"), time.monotonic() - t_stall))
	check("upload status during a stalled PATCH: 204 with a Range",
	      st == 204 and n_stored is not None, got)
	check("the Range is within what was sent (%s of %d)" % (n_stored, half),
	      n_stored is not None and 1 < n_stored <= half, n_stored)

	# another PATCH meanwhile: refused as in use, told the Range
	st, hd, body = request("PATCH", loc, data[n_stored or 0:],
	                       ["Content-Range: %d-%d" % (n_stored or 0, len(data) - 1),
	                        "Content-Type: application/octet-stream"])
	check("a PATCH while the stalled one holds the session is refused "
	      "(in use)", st == 400 and b"BLOB_UPLOAD_INVALID" in body,
	      (st, body[:120]))
	check("the refusal carries the stored Range",
	      n_stored is not None and stored(hd) == n_stored, hd.get("range"))

	# the stalled PATCH is cut after the idle timeout
	st_sock.settimeout(idle_to + 4)
	cut = None
	try:
	    while True:
	        d = st_sock.recv(65536)
	        if not d:
	            break
	except OSError:
	    pass
	cut = time.monotonic() - t_stall
	say("fig stalled_patch_cut_after_s %.2f" % cut)
	check("a stalled PATCH body is cut after --idle-timeout (%d s)" % idle_to,
	      idle_to - 0.5 <= cut <= idle_to + 2.5, "%.2f s" % cut)
	st_sock.close()
	n_stored = n_stored or 0

	st, hd, _ = request("GET", loc)
	check("status after the cut: 204, same Range",
	      st == 204 and stored(hd) == n_stored, (st, hd.get("range")))
	st, hd, body = request("PATCH", loc, data[n_stored:],
	                       ["Content-Range: %d-%d" % (n_stored, len(data) - 1),
	                        "Content-Type: application/octet-stream"])
	check("the retry PATCH from the Range completes",
	      st == 202 and stored(hd) == len(data), (st, hd.get("range"), body[:120]))
	say("end")
EOF

D=$(dg "$T/big")
req PUT "$(with_query "$LOC" "digest=$D")"
expect_status "PUT with the digest after the resumed upload" 201
req GET "/v2/slow/blobs/$D"
expect_status "resumed blob readable" 200
expect_eq "resumed blob is the original" "$D" "$(dg "$T/b")"

finish
