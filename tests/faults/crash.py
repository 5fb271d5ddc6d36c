#!/usr/bin/env python3
"""Crash consistency: berth under mixed write load, killed with SIGKILL at
random moments, restarted, and checked against what it acknowledged.

Each round (most short, some long enough for collections to take what
was deleted): the server runs;
W writer threads (one repository each, so the
expected state of a repository is exact) push blobs (monolithic, chunked
with Content-Range, streamed), PUT manifests under tags, move tags, delete
tags and manifests, and leave chunked uploads half done; a collector thread
POSTs /v2/_berth/gc. After a random moment the server gets SIGKILL.
Then, with the server down, `berth check` must report nothing but crash
leftovers (orphan files, upload leftovers); the server restarts and:
  - every acknowledged tag resolves to the acknowledged manifest, byte for
    byte, and every blob it references is served whole (size, digest);
  - every acknowledged delete (tag or manifest) stays deleted;
  - every blob file under blobs/ hashes to its name;
  - every half-done chunked upload resumes from the Range the server
    reports (which must cover every acknowledged chunk) and completes.
The one operation in flight at the kill is uncertain: either outcome is
accepted, and learnt from the server for the next rounds. Output: one "ok NAME" / "FAIL NAME: why" line per round and
check, then a summary with the counts.

usage: crash.py BERTH_BIN WORKDIR [--kills N] [--seed S] [--workers W]
                [--grace S] [--round-max S] [--long-rounds SHARE]
"""
import argparse, hashlib, http.client, json, os, random, re, signal, socket
import shutil, subprocess, sys, threading, time

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Down(Exception):
    """The server went away mid-operation (the kill)."""


# CRASH_KEEP=DIR: the first rounds that fail leave a copy of the data
# directory and the server log (with the access log on) in DIR/round_N,
# and their FAIL lines name the operations that were in flight at the kill.
KEEP = os.environ.get("CRASH_KEEP", "")


class Server:
    def __init__(self, binary, data, log):
        self.binary, self.data, self.log = binary, data, log
        self.proc, self.port = None, None

    def start(self, grace):
        for _ in range(20):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            with open(self.log, "ab") as lf:
                self.proc = subprocess.Popen(
                    [self.binary, "serve", "--listen", "127.0.0.1:%d" % port,
                     "--data", self.data, "--gc-grace", str(grace),
                     "--access-log", "on" if KEEP else "off"],
                    stdout=lf, stderr=lf)
            for _ in range(300):
                if self.proc.poll() is not None:
                    break
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", "/healthz")
                    if c.getresponse().status == 200:
                        self.port = port
                        return
                except OSError:
                    time.sleep(0.02)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        raise RuntimeError("berth did not start; see " + self.log)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def request(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
    except (OSError, http.client.HTTPException) as e:
        raise Down(str(e))
    finally:
        c.close()


class Repo:
    """What the server acknowledged for one repository."""

    def __init__(self, name):
        self.name = name
        self.tags = {}          # tag -> manifest digest
        self.manifests = {}     # digest -> body (pushed, maybe untagged)
        self.deleted_tags = set()
        self.deleted_manifests = set()
        self.uncertain = set()  # ("tag", t) / ("manifest", d) in flight at a kill
        self.partial = None     # (location, content, acked_bytes)
        self.pending = {}       # tag -> (digest, body) of a manifest PUT sent


class Load:
    def __init__(self, srv, rng, nworkers, grace):
        self.srv, self.rng, self.grace = srv, rng, grace
        self.repos = [Repo("crash/w%d" % i) for i in range(nworkers)]
        self.blobs = {}         # digest -> size (every acknowledged blob)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors = []        # refusals of operations that should succeed
        self.counts = dict(blob_mono=0, blob_chunked=0, blob_stream=0,
                           manifest_put=0, tag_move=0, tag_delete=0,
                           manifest_delete=0, gc_run=0, gc_blobs=0, gc_manifests=0,
                           partial=0, inflight=0)

    def count(self, k):
        with self.lock:
            self.counts[k] += 1

    # ---- blob pushes: each returns the digest once acknowledged
    def push_mono(self, repo, data):
        d = sha(data)
        st, h, _ = request(self.srv.port, "POST",
                           "/v2/%s/blobs/uploads/?digest=%s" % (repo.name, d), data,
                           {"Content-Type": "application/octet-stream"})
        if st != 201:
            raise AssertionError("monolithic push %d" % st)
        self.count("blob_mono")
        return d

    def start_upload(self, repo):
        st, h, _ = request(self.srv.port, "POST", "/v2/%s/blobs/uploads/" % repo.name)
        if st != 202:
            raise AssertionError("POST upload %d" % st)
        return h["location"]

    def patch(self, loc, chunk, start):
        st, h, _ = request(self.srv.port, "PATCH", loc, chunk, {
            "Content-Type": "application/octet-stream",
            "Content-Range": "%d-%d" % (start, start + len(chunk) - 1)})
        if st != 202:
            raise AssertionError("PATCH %d" % st)
        return h.get("location", loc)

    def finish(self, loc, d, body=b""):
        sep = "&" if "?" in loc else "?"
        st, _, b = request(self.srv.port, "PUT", "%s%sdigest=%s" % (loc, sep, d), body,
                           {"Content-Type": "application/octet-stream"})
        if st != 201:
            raise AssertionError("PUT upload %d %s" % (st, b[:200]))

    def push_chunked(self, repo, data):
        loc, off = self.start_upload(repo), 0
        n = self.rng.randint(2, 4)
        step = max(1, len(data) // n)
        while off < len(data):
            chunk = data[off:off + step]
            loc = self.patch(loc, chunk, off)
            off += len(chunk)
        self.finish(loc, sha(data))
        self.count("blob_chunked")
        return sha(data)

    def push_stream(self, repo, data):
        loc = self.start_upload(repo)
        st, h, _ = request(self.srv.port, "PATCH", loc, data,
                           {"Content-Type": "application/octet-stream"})
        if st != 202:
            raise AssertionError("streamed PATCH %d" % st)
        self.finish(h.get("location", loc), sha(data))
        self.count("blob_stream")
        return sha(data)

    def push_blob(self, repo, data):
        how = self.rng.choice((self.push_mono, self.push_chunked, self.push_stream))
        d = how(repo, data)
        with self.lock:
            self.blobs[d] = len(data)
        return d

    # ---- one writer
    def rand_bytes(self, lo, hi):
        return os.urandom(self.rng.randint(lo, hi))

    def writer(self, repo, rng):
        op = None
        try:
            while not self.stop.is_set():
                x = rng.random()
                tags = sorted(repo.tags)
                if len(tags) > 24:
                    x = 0.5  # keep each repository small: delete a tag
                if x < 0.45 or not tags:
                    # an image: config + 1-2 layers, then the manifest under a tag
                    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                                      "rootfs": {"type": "layers", "diff_ids": []},
                                      "nonce": rng.random()}).encode()
                    layers = [self.push_blob(repo, self.rand_bytes(1, 256 << 10))
                              for _ in range(rng.randint(1, 2))]
                    cd = self.push_blob(repo, cfg)
                    m = json.dumps({
                        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": cd, "size": len(cfg)},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                    "digest": l, "size": self.blobs[l]} for l in layers]},
                        sort_keys=True).encode()
                    tag = rng.choice(tags) if tags and rng.random() < 0.3 else "t%d" % rng.randint(0, 999)
                    op = ("tag", tag)
                    repo.pending[tag] = (sha(m), m)
                    moved = tag in repo.tags
                    st, h, b = request(self.srv.port, "PUT", "/v2/%s/manifests/%s" % (repo.name, tag),
                                       m, {"Content-Type": OCI_MANIFEST})
                    if st != 201:
                        raise AssertionError("manifest PUT %d %s" % (st, b[:200]))
                    d = sha(m)
                    repo.pending.pop(tag, None)
                    repo.manifests[d] = m
                    repo.tags[tag] = d
                    repo.deleted_tags.discard(tag)
                    repo.deleted_manifests.discard(d)
                    self.count("tag_move" if moved else "manifest_put")
                elif x < 0.6:
                    tag = rng.choice(tags)
                    op = ("tag", tag)
                    repo.pending[tag] = (None, None)  # gone, if it happened
                    st, _, b = request(self.srv.port, "DELETE", "/v2/%s/manifests/%s" % (repo.name, tag))
                    if st != 202:
                        raise AssertionError("tag DELETE %d %s" % (st, b[:200]))
                    del repo.tags[tag]
                    repo.pending.pop(tag, None)
                    repo.deleted_tags.add(tag)
                    self.count("tag_delete")
                elif x < 0.7:
                    d = repo.tags[rng.choice(tags)]
                    gone = [t for t, v in repo.tags.items() if v == d]
                    op = ("manifest", d)
                    st, _, b = request(self.srv.port, "DELETE", "/v2/%s/manifests/%s" % (repo.name, d))
                    if st != 202:
                        raise AssertionError("manifest DELETE %d %s" % (st, b[:200]))
                    for t in gone:
                        del repo.tags[t]
                        repo.deleted_tags.add(t)
                    repo.deleted_manifests.add(d)
                    self.count("manifest_delete")
                elif repo.partial is None:
                    # a chunked upload left half done for the next round
                    data = self.rand_bytes(64 << 10, 512 << 10)
                    loc = self.start_upload(repo)
                    half = len(data) // 2
                    repo.partial = (loc, data, 0)
                    loc = self.patch(loc, data[:half], 0)
                    repo.partial = (loc, data, half)
                    self.count("partial")
                else:
                    d = self.push_blob(repo, self.rand_bytes(1, 64 << 10))
                op = None
        except Down:
            if op is not None:
                repo.uncertain.add(op)
                self.count("inflight")
        except AssertionError as e:
            with self.lock:
                self.errors.append("%s: %s" % (repo.name, e))

    def collector(self):
        while not self.stop.is_set():
            try:
                st, _, b = request(self.srv.port, "POST", "/v2/_berth/gc", b"{}",
                                   {"Content-Type": "application/json"})
                if st != 200:
                    raise AssertionError("gc %d %s" % (st, b[:200]))
                rep = json.loads(b)
                with self.lock:
                    self.counts["gc_run"] += 1
                    self.counts["gc_blobs"] += rep["blobs"]["deleted"]
                    self.counts["gc_manifests"] += rep["manifests"]["deleted"]
            except Down:
                return
            except AssertionError as e:
                with self.lock:
                    self.errors.append("collector: %s" % e)
                return
            time.sleep(0.1)


def get(port, path):
    st, h, b = request(port, "GET", path, headers={"Accept": OCI_MANIFEST})
    return st, b


def verify(load, port, fails):
    """Checks the restarted server against what was acknowledged."""
    n = 0
    for repo in load.repos:
        for tag, d in list(repo.tags.items()):
            # A tag whose manifest delete was in flight may be gone with it:
            # settle() learns which.
            if ("tag", tag) in repo.uncertain or ("manifest", d) in repo.uncertain:
                continue
            st, b = get(port, "/v2/%s/manifests/%s" % (repo.name, tag))
            n += 1
            if st != 200 or sha(b) != d:
                fails.append("tag %s:%s: status %d, digest %s, want %s" % (
                    repo.name, tag, st, sha(b) if st == 200 else "-", d))
                continue
            for desc in [json.loads(b)["config"]] + json.loads(b)["layers"]:
                st, blob = get(port, "/v2/%s/blobs/%s" % (repo.name, desc["digest"]))
                n += 1
                if st != 200 or len(blob) != desc["size"] or sha(blob) != desc["digest"]:
                    fails.append("blob %s of %s:%s: status %d, %d bytes" % (
                        desc["digest"], repo.name, tag, st, len(blob)))
        for tag in repo.deleted_tags:
            if tag in repo.tags or ("tag", tag) in repo.uncertain:
                continue
            st, _ = get(port, "/v2/%s/manifests/%s" % (repo.name, tag))
            n += 1
            if st != 404:
                fails.append("deleted tag %s:%s is back (%d)" % (repo.name, tag, st))
        live = set(repo.tags.values())
        for d in repo.deleted_manifests:
            if d in live or ("manifest", d) in repo.uncertain:
                continue
            st, _ = get(port, "/v2/%s/manifests/%s" % (repo.name, d))
            n += 1
            if st != 404:
                fails.append("deleted manifest %s@%s is back (%d)" % (repo.name, d, st))
    return n


def settle(load, port, fails):
    """Learns the outcome of each operation that was in flight at the kill
    from the restarted server, after checking it is one of the two."""
    for repo in load.repos:
        for kind, key in sorted(repo.uncertain):
            st, b = get(port, "/v2/%s/manifests/%s" % (repo.name, key))
            if kind == "tag":
                old, new = repo.tags.get(key), repo.pending.get(key, (None, None))
                got = sha(b) if st == 200 else None
                if got not in (old, new[0]):
                    fails.append("tag %s:%s after a kill: %s, neither %s nor %s" % (
                        repo.name, key, got, old, new[0]))
                elif got is None:
                    repo.tags.pop(key, None)
                    repo.deleted_tags.add(key)
                else:
                    repo.tags[key] = got
                    repo.deleted_tags.discard(key)
                    if got == new[0]:
                        repo.manifests[got] = new[1]
            else:
                # The manifest delete happened (404) with all its tags, or
                # not at all (200) and its tags still resolve to it.
                for t in [t for t, v in repo.tags.items() if v == key]:
                    tst, tb = get(port, "/v2/%s/manifests/%s" % (repo.name, t))
                    want = 404 if st == 404 else 200
                    if tst != want or (want == 200 and sha(tb) != key):
                        fails.append("tag %s:%s of manifest %s after a kill: %d, manifest %d" % (
                            repo.name, t, key, tst, st))
                    if st == 404:
                        del repo.tags[t]
                        repo.deleted_tags.add(t)
                if st == 404:
                    repo.deleted_manifests.add(key)
        repo.uncertain = set()
        repo.pending = {}


def resume(load, port, fails):
    """Completes every half-done upload from the Range the server reports."""
    done = 0
    for repo in load.repos:
        if repo.partial is None:
            continue
        loc, data, acked = repo.partial
        repo.partial = None
        st, h, _ = request(port, "GET", loc)
        if st == 404 and acked == 0:
            continue  # the POST itself was in flight: no session to resume
        m = re.fullmatch(r"0-(\d+)", h.get("range", "")) if st == 204 else None
        have = int(m.group(1)) + 1 if m else 0
        if have == 1 and acked == 0:
            have = 0  # "0-0" is also what an empty session reports
        if st != 204 or (acked and have < acked):
            fails.append("upload %s: status %d, range %r, %d bytes acknowledged" % (
                loc, st, h.get("range"), acked))
            continue
        if m is None:
            have = 0
        try:
            if have < len(data):
                loc = load.patch(loc, data[have:], have)
            load.finish(loc, sha(data))
            st, b = get(port, "/v2/%s/blobs/%s" % (repo.name, sha(data)))
            if st != 200 or b != data:
                fails.append("resumed upload %s: blob status %d" % (loc, st))
            else:
                done += 1
        except AssertionError as e:
            fails.append("resume %s from %d: %s" % (loc, have, e))
    return done


HASHED = {}  # blob file -> (size, mtime) when it last hashed to its name


def blob_files(data):
    """Every blob file must hash to its name (files are written once, so a
    file already seen with the same size and mtime is not read again);
    returns the count and the bad ones."""
    n, bad = 0, []
    root = os.path.join(data, "blobs", "sha256")
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.startswith("."):
                continue
            path = os.path.join(dirpath, f)
            st = os.stat(path)
            n += 1
            if HASHED.get(path) == (st.st_size, st.st_mtime_ns):
                continue
            with open(path, "rb") as fh:
                if hashlib.sha256(fh.read()).hexdigest() != f:
                    bad.append(f)
                    continue
            HASHED[path] = (st.st_size, st.st_mtime_ns)
    return n, bad


LEFTOVER = re.compile(r"orphan file|upload|pending unlink")


def check(binary, data, grace):
    """`berth check` on the stopped server: (ok, leftover lines, other lines)."""
    p = subprocess.run([binary, "check", "--data", data, "--grace", str(grace)],
                       capture_output=True, text=True, timeout=120)
    lines = [l for l in p.stdout.splitlines() + p.stderr.splitlines()
             if l and not l.startswith(("check:", "note:"))]
    other = [l for l in lines if not LEFTOVER.search(l)]
    return p.returncode in (0, 1) and not other, len(lines) - len(other), other, p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("berth")
    ap.add_argument("workdir")
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--grace", type=int, default=1)
    ap.add_argument("--round-max", type=float, default=1.5,
                    help="longest short round, seconds")
    ap.add_argument("--long-rounds", type=float, default=0.3,
                    help="share of long rounds (grace + 1.5 to grace + 3 s)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    data = os.path.join(a.workdir, "data")
    os.makedirs(data, exist_ok=True)
    srv = Server(a.berth, data, os.path.join(a.workdir, "berth.log"))
    load = Load(srv, rng, a.workers, a.grace)
    print("crash: seed %d, %d kills, %d writers, grace %d s" % (a.seed, a.kills, a.workers, a.grace))
    total_fails, checks, leftovers, resumed = 0, 0, 0, 0
    srv.start(a.grace)
    for rnd in range(1, a.kills + 1):
        load.stop.clear()
        threads = [threading.Thread(target=load.writer, args=(r, random.Random(rng.random())))
                   for r in load.repos] + [threading.Thread(target=load.collector)]
        for t in threads:
            t.start()
        # Some rounds outlive the grace, so that collections take things.
        time.sleep(rng.uniform(a.grace + 1.5, a.grace + 3) if rng.random() < a.long_rounds
                   else rng.uniform(0.1, a.round_max))
        srv.kill()
        load.stop.set()
        for t in threads:
            t.join(60)
        fails, load.errors = load.errors, []
        inflight = ["%s %s:%s" % (r.name, k, v) for r in load.repos
                    for k, v in sorted(r.uncertain)]
        good, left, other, rc = check(a.berth, data, a.grace)
        leftovers += left
        if not good:
            fails.append("berth check (exit %d): %s" % (rc, "; ".join(other[:5])))
        srv.start(a.grace)
        try:
            checks += verify(load, srv.port, fails)
            settle(load, srv.port, fails)
            resumed += resume(load, srv.port, fails)
        except Down as e:
            fails.append("server went away while verifying: %s" % e)
        nfiles, bad = blob_files(data)
        if bad:
            fails.append("%d blob files do not hash to their name: %s" % (len(bad), bad[:3]))
        if fails:
            total_fails += 1
            shown = fails[:6]
            if KEEP and total_fails <= 3:
                kept = os.path.join(KEEP, "round_%d" % rnd)
                shutil.copytree(data, os.path.join(kept, "data"))
                shutil.copy(srv.log, kept)
                shown.append("in flight at the kill: %s; kept in %s" % (
                    ", ".join(inflight) or "none", kept))
            print("FAIL crash.round_%d: %s" % (rnd, " | ".join(shown)))
        else:
            print("ok crash.round_%d (%d blob files, %d leftovers)" % (rnd, nfiles, left))
        sys.stdout.flush()
    # A clean stop, then check must find no problem but young leftovers.
    srv.stop()
    good, left, other, rc = check(a.berth, data, a.grace)
    if good:
        print("ok crash.final_check (%d crash leftovers)" % left)
    else:
        total_fails += 1
        print("FAIL crash.final_check (exit %d): %s" % (rc, "; ".join(other[:5])))
    with open(srv.log, "rb") as lf:
        san = [l for l in lf.read().decode("utf-8", "replace").splitlines()
               if "Sanitizer" in l or "runtime error:" in l]
    if san:
        total_fails += 1
        print("FAIL crash.sanitizer: %s" % " | ".join(san[:3]))
    else:
        print("ok crash.no_sanitizer_report")
    c = load.counts
    print("crash: %d kills; acknowledged: %d monolithic, %d chunked, %d streamed blob pushes, "
          "%d manifest PUTs, %d tag moves, %d tag deletes, %d manifest deletes, %d gc runs "
          "(%d manifests, %d blobs collected), "
          "%d uploads left half done (%d resumed); %d operations in flight at a kill; "
          "%d reads checked; %d check leftovers; %d rounds lost data" % (
              a.kills, c["blob_mono"], c["blob_chunked"], c["blob_stream"], c["manifest_put"],
              c["tag_move"], c["tag_delete"], c["manifest_delete"], c["gc_run"],
              c["gc_manifests"], c["gc_blobs"], c["partial"],
              resumed, c["inflight"], checks, leftovers, total_fails))
    return 1 if total_fails else 0


if __name__ == "__main__":
    sys.exit(main())
