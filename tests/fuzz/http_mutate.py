#!/usr/bin/env python3
"""Network-level mutation fuzzer for berth's HTTP API (python3 stdlib only).

Usage:
  http_mutate.py PORT SEED SECONDS MAX_REQUESTS
                 [REPO TAG DIGEST UPLOAD_PATH [CANARY_REPO CANARY_TAG CANARY_DIGEST]]

Drives a running berth on 127.0.0.1:PORT with mutated requests, one raw
socket per request (sometimes two requests on one kept-alive connection),
so that what the libFuzzer harnesses cannot reach gets random input: the
request line as libmicrohttpd splits and decodes it (route_check_line(),
NUL bytes and encoded slashes), the query parameters of every route (n and
last of tags/list, _catalog and /v2/_berth/tags, artifactType, digest,
mount, from, prefix...), headers (Range, Content-Range, Content-Length,
Transfer-Encoding, Content-Type, Accept) and small bodies.

Requests start from a seed list covering every route and method, built on
the names the calling script pushed (REPO:TAG with manifest DIGEST, and the
upload session at UPLOAD_PATH), then get structured mutations (path
segments, percent escapes, query parameters, header values, CRLF injection,
methods, HTTP versions, Content-Length, chunked bodies, manifest bodies) and
sometimes raw byte flips, inserts, deletes or a truncation of the head.
Every choice comes from one random.Random(SEED): a seed replays the same
sequence of mutations (only what the server hands out, like upload ids,
differs from run to run). The run ends after SECONDS or MAX_REQUESTS,
whichever comes first. Bodies stay under 64 KiB.

A request this script can tell is incomplete (no end of head, a
Content-Length it does not match, an unknown Transfer-Encoding...) is
followed by a shutdown of the sending side, so berth never waits for
bytes that will not come; it may then answer or close. Every other
request must get an answer within 5 s.

Checks on every answer:
  - the status line parses, or berth closed the connection: counted as a
    figure when the request line is malformed (libmicrohttpd drops some
    such heads without a word), a failure when it is well formed (a token
    method, a target, HTTP/1.0 or HTTP/1.1);
  - no 500, 502, 503 (berth answers 500 only for internal faults) and no
    507 (the test runs on a normal disk);
  - a 4xx/5xx with Content-Type application/json, or answered by berth
    itself (Docker-Distribution-API-Version), to anything but HEAD has an
    OCI error body: JSON with errors[0].code a string;
  - the body is as long as Content-Length says (nothing cut short);
  - a HEAD answer from berth carries no body (libmicrohttpd's own error
    pages do: counted as a figure);
  - no header injected through a query value shows up in the answer;
  - a complete request gets its answer within 5 s.
Alongside the random requests, fixed probes send a 5-byte body to routes
that take none (GET, HEAD, DELETE, a plain POST .../blobs/uploads/, a
chunked GET), a GET with Expect: 100-continue and a pipelined request
after it, and a request with Transfer-Encoding: gzip: each must be
answered (or, the last one, refused and closed) within 5 s. At the end no
request may be left in flight (berth_http_requests_in_flight).

Every few hundred requests the script puts back what mutated DELETEs and
PUTs may have changed in REPO (the manifest under TAG, its blobs, an open
upload session). At the end: GET /v2/ is 200 and the canary repository
(which no request names) still serves its manifest with the same digest.

Output, one line each: "ok NAME", "FAIL NAME: why" (at most 20, then a
count), "fig NAME VALUE", and "end" last.
"""

import hashlib
import json
import random
import re
import resource
import select
import socket
import sys
import time

# ---------------------------------------------------------------- output

MAX_FAIL_LINES = 20


def say(*a):
    print(*a, flush=True)


class Report:
    def __init__(self):
        self.failures = 0
        self.kinds = {}
        self.keys = set()
        self.shown = 0

    def ok(self, name):
        say("ok " + name)

    def fail(self, name, why, key=None):
        """A failure; with a key, only the first of that key is shown (the
        same fault through the same route and method)."""
        self.failures += 1
        self.kinds[name] = self.kinds.get(name, 0) + 1
        if key is not None:
            if key in self.keys:
                return
            self.keys.add(key)
        if self.shown < MAX_FAIL_LINES:
            self.shown += 1
            say("FAIL %s: %s" % (name, why.replace("\n", "\\n")))

    def fig(self, name, value):
        say("fig %s %s" % (name, value))

    def close(self):
        if self.failures > self.shown:
            say("FAIL mutate: %d failures in all, %d not shown (by check: %s)"
                % (self.failures, self.failures - self.shown,
                   "; ".join("%s %d" % kv for kv in sorted(self.kinds.items()))))


REP = Report()

# ---------------------------------------------------------------- constants

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
D2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D2_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT_ALL = "%s, %s, %s, %s, */*" % (OCI_MANIFEST, OCI_INDEX, D2_MANIFEST, D2_LIST)
ARTIFACT_TYPE = "application/vnd.berth.mutate.test+json"
HEX = "0123456789abcdef"

NUMS = [b"0", b"1", b"2", b"-1", b"-0", b"+1", b"00", b"01", b" 1", b"1 ", b"1.5",
        b"1e3", b"0x10", b"4294967295", b"4294967296", b"9223372036854775807",
        b"9223372036854775808", b"-9223372036854775808", b"18446744073709551615",
        b"18446744073709551616", b"99999999999999999999999999999999", b"1%00",
        b"%31", b"1%20", b"NaN", b"inf", b"\xef\xbc\x91", b"10000", b"10001", b"1000",
        b"1001", b"", b"1,2", b"1;2"]
ESCAPES = [b"%00", b"%2f", b"%2F", b"%ff", b"%FF", b"%", b"%g1", b"%1", b"%%", b"%25",
           b"%c0%af", b"%c0%80", b"%e0%80%af", b"%f0%80%80%af", b"%fc%80%80%80%80%af",
           b"%2e%2e", b"%2e", b"%5c", b"%20", b"%0d%0a", b"%0a", b"%0d", b"%09", b"%7f",
           b"%C3%A9", b"%u002f", b"%%32%66", b"%252f", b"%3f", b"%23", b"%26", b"%3d",
           b"%3a", b"%40", b"+", b"#", b"?", b"&", b"=", b";", b"%2b", b"%0", b"%%00"]
RAW_BYTES = [b"\x00", b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x7f", b"\xff", b"\xfe",
             b"\x01", b"\x1b", b"\"", b"'", b"<", b">", b"\\", b"{", b"}", b"|", b"^",
             b"`", b"/", b"//", b"?", b"#", b"%", b"&", b"=", b":", b"@", b"..", b"\xc0\xaf"]
STRINGS = [b"", b"a", b".", b"..", b"/", b"//", b"*", b"**", b"mutate/fuzz",
           b"mutate/**", b"mutate/*", b"**/fuzz", b"mutate/fuzz:v1", b"mutate/fuzz:",
           b":", b"@", b"sha256:", b"true", b"false", b"TRUE", b"yes", b"1d", b"3d",
           b"0s", b"-1d", b"90m", b"12h", b"2w", b"1x", b"999999999999999999w",
           b"application/vnd.oci.image.manifest.v1+json", ARTIFACT_TYPE.encode(),
           b"a+b", b"a b", b"%2B", b"_catalog", b"_berth", b"v2", b"tags", b"list",
           b"manifests", b"blobs", b"uploads", b"referrers", b"repository:mutate/fuzz:pull",
           b"registry:catalog:*", b"\xc3\xa9", b"\xe2\x80\xae", b"A", b"-", b"_"]
LENGTHS = [1, 2, 63, 64, 65, 127, 128, 129, 254, 255, 256, 257, 1000, 2048, 4096]
LONG_LENGTHS = [8191, 8192, 16384, 30000, 40000]
METHODS = [b"GET", b"HEAD", b"PUT", b"POST", b"PATCH", b"DELETE", b"OPTIONS", b"TRACE",
           b"CONNECT", b"PROPFIND", b"get", b"Get", b"GETT", b"G", b"", b"X" * 300,
           b"DELETE ", b"PO ST", b"\x00GET", b"GET\x00", b"M-SEARCH", b"BREW", b"*"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/2", b"HTTP/1.2",
            b"HTTP/1.9", b"http/1.1", b"HTTP/1", b"HTTP/1.1x", b"HTTP/11.1", b"HTTP/1.01",
            b"", b"HTTP/", b"HTTPS/1.1", b"HTTP/1.1 ", b" HTTP/1.1", b"HTTP/\x001.1",
            b"HTTP/1.1\x00", b"HTTP/3.0"]
QKEYS = [b"n", b"last", b"digest", b"mount", b"from", b"artifactType", b"repository",
         b"expired", b"idle_for", b"prefix", b"service", b"scope", b"account", b"N",
         b"Digest", b"", b"n[]", b"last%00", b"dig%00est"]
RANGES = [b"bytes=0-3", b"bytes=2-", b"bytes=-3", b"bytes=0-0", b"bytes=-0", b"bytes=0-",
          b"bytes=5-2", b"bytes=0-1,2-3", b"bytes=18446744073709551615-",
          b"bytes=0-18446744073709551616", b"bytes=-18446744073709551615",
          b"bytes=99999999999999999999-", b"bytes=", b"bytes=-", b"bytes=--1",
          b"bytes 0-3", b"BYTES=0-3", b"bytes=0-3/10", b"bytes=1-1", b"bytes= 0-3",
          b"bytes=0 -3", b"items=0-3", b"bytes=4096-", b"bytes=0-9223372036854775807"]
CONTENT_RANGES = [b"0-4", b"bytes=0-4", b"5-9", b"0-0", b"0-", b"-4", b"4-0", b"0-4/5",
                  b"bytes 0-4/5", b"bytes */5", b"0-18446744073709551615",
                  b"0-9223372036854775807", b"0-9223372036854775808", b"+0-4", b"0x0-4",
                  b"0--4", b"0-4,5-9", b"", b" 0-4", b"0-4 ", b"99999999999999999999-1",
                  b"1-5", b"0-65535"]
CONTENT_TYPES = [OCI_MANIFEST.encode(), OCI_INDEX.encode(), D2_MANIFEST.encode(),
                 D2_LIST.encode(), b"application/vnd.docker.distribution.manifest.v1+json",
                 b"application/vnd.docker.distribution.manifest.v1+prettyjws",
                 b"application/octet-stream", b"application/json", b"text/plain", b"",
                 b" " + OCI_MANIFEST.encode(), OCI_MANIFEST.encode() + b"; charset=utf-8",
                 OCI_MANIFEST.encode().upper(), b"application/x-www-form-urlencoded",
                 b"multipart/form-data; boundary=x", b"*/*", b"a" * 300]
TTLS = ["3d", "0s", "1s", "-1d", "99999999999999999999d", "", "1x", "3d3d", "1.5h", "P3D",
        "1w2d", "0", "1", "18446744073709551615s", "\u0000", "\u00e9", "a" * 500]
INJECT = "X-Mutate-Injected"
CRLFS = [b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\r\n ", b"\r\n\t", b"\n\n",
         b"\r\n" + INJECT.encode() + b": 1", b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"]


def rand_hex(rng, n):
    return "".join(rng.choice(HEX) for _ in range(n))


def digest_variants(rng, real):
    """A digest-like string, mostly almost right."""
    real = real or "sha256:" + "0" * 64
    h = real.split(":", 1)[-1] if ":" in real else rand_hex(rng, 64)
    c = rng.randrange(22)
    return [
        lambda: "sha256:" + rand_hex(rng, 64),
        lambda: "sha256:" + h[:63],
        lambda: "sha256:" + h + "0",
        lambda: "sha256:" + h.upper(),
        lambda: "sha256:" + "g" * 64,
        lambda: "sha512:" + rand_hex(rng, 128),
        lambda: "sha512:" + h,
        lambda: "sha384:" + rand_hex(rng, 96),
        lambda: "blake3:" + h,
        lambda: "md5:" + h[:32],
        lambda: "sha256",
        lambda: "sha256:",
        lambda: ":" + h,
        lambda: "SHA256:" + h,
        lambda: "sha256+b64:" + h,
        lambda: real[:-1] + ("0" if real[-1] != "0" else "1"),
        lambda: real + "%00",
        lambda: real + "/",
        lambda: "sha256::" + h,
        lambda: "sha256:" + h[:32] + "%00" + h[32:],
        lambda: "sha256:" + rand_hex(rng, 64 * 20),
        lambda: real,
    ][c]()


def name_variants(rng):
    c = rng.randrange(18)
    return [
        lambda: "a",
        lambda: "a" * 255,
        lambda: "a" * 256,
        lambda: "/".join(["ab"] * 85),
        lambda: "/".join(["a"] * 128),
        lambda: "Mutate/Fuzz",
        lambda: "-a/b",
        lambda: "a--b",
        lambda: "a__b/c",
        lambda: "a..b",
        lambda: "mutate/./fuzz",
        lambda: "mutate/../fuzz",
        lambda: "mutate//fuzz",
        lambda: "mutate/fuzz/",
        lambda: "_catalog",
        lambda: "mutate/fuzz/manifests/v1",
        lambda: "mutate/fuzz/blobs/uploads",
        lambda: "mutate%2ffuzz",
    ][c]()


def tag_variants(rng):
    c = rng.randrange(14)
    return [
        lambda: "a" * 128,
        lambda: "a" * 129,
        lambda: "_a",
        lambda: ".a",
        lambda: "-a",
        lambda: "a.b-c_D",
        lambda: "latest",
        lambda: "v1:",
        lambda: "v1@sha256:" + "0" * 64,
        lambda: "v%31",
        lambda: "tmp%00",
        lambda: "t" * 5000,
        lambda: "",
        lambda: "sha256",
    ][c]()

# ---------------------------------------------------------------- requests


class Req:
    """One request before serialization: path segments, query pairs
    (wire text, already escaped as wanted), headers and a body."""

    def __init__(self, method, segs, query=None, headers=None, body=b"",
                 version=b"HTTP/1.1"):
        self.method = method
        self.segs = segs          # path segments: [b"", b"v2", ...]
        self.query = query        # None: no '?'; else [(key, value or None)]
        self.version = version
        self.headers = [[b"Host", b"127.0.0.1"]] + (headers or []) + \
            [[b"Connection", b"close"]]
        self.body = body
        self.cl = None            # None: automatic; bytes: as given; False: none
        self.notes = []

    def target(self):
        t = b"/".join(self.segs)
        if self.query is not None:
            t += b"?" + b"&".join(k if v is None else k + b"=" + v
                                  for k, v in self.query)
        return t

    def serialize(self):
        out = [self.method + b" " + self.target() + b" " + self.version + b"\r\n"]
        for k, v in self.headers:
            out.append(k + b": " + v + b"\r\n")
        if self.cl is None:
            if self.body or self.method in (b"PUT", b"POST", b"PATCH"):
                out.append(b"Content-Length: %d\r\n" % len(self.body))
        elif self.cl is not False:
            out.append(b"Content-Length: " + self.cl + b"\r\n")
        out.append(b"\r\n")
        return b"".join(out) + self.body

    def header_del(self, name):
        self.headers = [h for h in self.headers if h[0].lower() != name.lower()]

    def header_set(self, name, value):
        self.header_del(name)
        self.headers.insert(len(self.headers) - 1, [name, value])


def P(path):
    return [s.encode() for s in path.split("/")]


class State:
    def __init__(self, repo, tag, mdigest, upload, canary):
        self.repo, self.tag, self.mdigest, self.upload = repo, tag, mdigest, upload
        self.canary = canary
        self.mbody = b""
        self.mtype = OCI_MANIFEST
        self.blobs = {}      # digest -> bytes
        self.layer = self.config = "sha256:" + "0" * 64
        self.tmp = 0


def q(*pairs):
    return [(k.encode(), None if v is None else v.encode()) for k, v in pairs]


def small_blob(rng):
    n = rng.choice([0, 1, 5, 100, 4096])
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def dg(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def manifest_variant(S, rng):
    """The pushed manifest, changed in one place (or the same)."""
    try:
        m = json.loads(S.mbody)
    except ValueError:
        return S.mbody
    c = rng.randrange(12)
    if c == 0:
        m.setdefault("annotations", {})[rng.choice(
            ["berth.expires-after", "quay.expires-after"])] = rng.choice(TTLS)
    elif c == 1:
        m["subject"] = {"mediaType": S.mtype, "digest": S.mdigest, "size": len(S.mbody)}
        m["artifactType"] = rng.choice([ARTIFACT_TYPE, "", "a" * 300, "x/y"])
    elif c == 2 and m.get("layers"):
        m["layers"][0]["size"] = rng.choice([-1, 0, 2 ** 63, 2 ** 64, 1.5, "1", None])
    elif c == 3 and m.get("layers"):
        m["layers"][0]["digest"] = digest_variants(rng, S.layer)
    elif c == 4:
        m["mediaType"] = rng.choice([OCI_INDEX, D2_MANIFEST, D2_LIST, "", "x", None])
    elif c == 5:
        m["schemaVersion"] = rng.choice([1, 3, "2", None, -1, 2 ** 64])
    elif c == 6 and m.get("layers"):
        m["layers"] = m["layers"] * rng.choice([2, 40])
    elif c == 7:
        d = rng.choice([100, 3000, 30000])
        return b"[" * d + b"]" * d
    elif c == 8:
        m["subject"] = {"mediaType": S.mtype, "digest": digest_variants(rng, S.mdigest),
                        "size": rng.choice([0, -1, len(S.mbody)])}
    elif c == 9:
        m["config"] = rng.choice([None, {}, [], "x", {"digest": S.config}])
    elif c == 10:
        m["annotations"] = {("k%d" % i): "v" * rng.choice([1, 100]) for i in
                            range(rng.choice([1, 50, 500]))}
    return json.dumps(m).encode()[:60000]


def seeds(S, rng):
    """Realistic requests for every route; a weighted list of builders."""
    R, T, MD, L, C = S.repo, S.tag, S.mdigest, S.layer, S.config
    V = "/v2/" + R
    acc = [[b"Accept", ACCEPT_ALL.encode()]]
    octet = [[b"Content-Type", b"application/octet-stream"]]

    def tmp_tag():
        S.tmp += 1
        return "tmp%d" % (S.tmp % 16)

    def post_digest():
        b = small_blob(rng)
        return Req(b"POST", P(V + "/blobs/uploads/"), q(("digest", dg(b))), octet[:], b)

    def patch_range():
        b = small_blob(rng) or b"12345"
        return Req(b"PATCH", P(S.upload), None, octet + [
            [b"Content-Range", b"%d-%d" % (0, len(b) - 1)]], b)

    def put_upload():
        b = small_blob(rng)
        return Req(b"PUT", P(S.upload), q(("digest", dg(b))), octet[:], b)

    def gc_body():
        return rng.choice([b'{"dry_run": true}', b'{"dry_run": false}', b"{}", b"",
                           b'{"dry_run": true, "pins": ["127.0.0.1/%s:%s"]}'
                           % (R.encode(), T.encode()),
                           b'{"dry_run": true, "pins": ["%s@%s"]}' % (R.encode(), MD.encode())])

    return [
        (3, lambda: Req(b"GET", P("/v2/"))),
        (1, lambda: Req(b"HEAD", P("/v2/"))),
        (1, lambda: Req(b"GET", P("/v2"))),
        (2, lambda: Req(b"GET", P("/v2/_catalog"))),
        (3, lambda: Req(b"GET", P("/v2/_catalog"), q(("n", "1"), ("last", R)))),
        (1, lambda: Req(b"GET", P("/v2/_catalog"), q(("n", "2")))),
        (2, lambda: Req(b"GET", P(V + "/tags/list"))),
        (3, lambda: Req(b"GET", P(V + "/tags/list"), q(("n", "1"), ("last", T)))),
        (1, lambda: Req(b"GET", P(V + "/tags/list"), q(("last", "")))),
        (3, lambda: Req(b"GET", P(V + "/manifests/" + T), None, acc[:])),
        (2, lambda: Req(b"HEAD", P(V + "/manifests/" + T), None, acc[:])),
        (2, lambda: Req(b"GET", P(V + "/manifests/" + MD), None, acc[:])),
        (1, lambda: Req(b"HEAD", P(V + "/manifests/" + MD), None, acc[:])),
        (3, lambda: Req(b"PUT", P(V + "/manifests/" + tmp_tag()), None,
                        [[b"Content-Type", S.mtype.encode()]], manifest_variant(S, rng))),
        (1, lambda: Req(b"PUT", P(V + "/manifests/" + MD), None,
                        [[b"Content-Type", S.mtype.encode()]], S.mbody)),
        (2, lambda: Req(b"DELETE", P(V + "/manifests/" + tmp_tag()))),
        (1, lambda: Req(b"DELETE", P(V + "/manifests/" + MD))),
        (2, lambda: Req(b"GET", P(V + "/blobs/" + L))),
        (3, lambda: Req(b"GET", P(V + "/blobs/" + L), None,
                        [[b"Range", rng.choice(RANGES[:6])]])),
        (2, lambda: Req(b"HEAD", P(V + "/blobs/" + C))),
        (1, lambda: Req(b"DELETE", P(V + "/blobs/" + L))),
        (2, lambda: Req(b"POST", P(V + "/blobs/uploads/"))),
        (3, post_digest),
        (3, lambda: Req(b"POST", P(V + "/m/blobs/uploads/"), q(("mount", L), ("from", R)))),
        (1, lambda: Req(b"POST", P(V + "/m/blobs/uploads/"),
                        q(("mount", L), ("from", R.replace("/", "%2F"))))),
        (1, lambda: Req(b"POST", P(V + "/m/blobs/uploads/"), q(("mount", C)))),
        (3, patch_range),
        (2, lambda: Req(b"PATCH", P(S.upload), None, octet[:], small_blob(rng))),
        (3, put_upload),
        (1, lambda: Req(b"PUT", P(S.upload), q(("digest", dg(b""))))),
        (2, lambda: Req(b"GET", P(S.upload))),
        (1, lambda: Req(b"DELETE", P(S.upload))),
        (2, lambda: Req(b"GET", P(V + "/referrers/" + MD))),
        (3, lambda: Req(b"GET", P(V + "/referrers/" + MD),
                        q(("artifactType", ARTIFACT_TYPE.replace("+", "%2B"))))),
        (2, lambda: Req(b"GET", P("/v2/_berth/tags"))),
        (3, lambda: Req(b"GET", P("/v2/_berth/tags"), q(
            ("repository", R.split("/")[0] + "/**"), ("expired", "false"),
            ("idle_for", "3d"), ("n", "10"), ("last", R + ":" + T)))),
        (2, lambda: Req(b"POST", P("/v2/_berth/gc"), None,
                        [[b"Content-Type", b"application/json"]], gc_body())),
        (2, lambda: Req(b"DELETE", P("/v2/_berth/repositories/" + R + "/gone"))),
        (1, lambda: Req(b"DELETE", P("/v2/_berth/repositories/" + R + "/gone/"),
                        q(("prefix", "true")))),
        (1, lambda: Req(b"DELETE", P("/v2/_berth/repositories/" + R))),
        (1, lambda: Req(b"GET", P("/healthz"))),
        (1, lambda: Req(b"HEAD", P("/readyz"))),
        (1, lambda: Req(b"GET", P("/readyz"))),
        (1, lambda: Req(b"GET", P("/metrics"))),
        (1, lambda: Req(b"GET", P("/auth/token"), q(
            ("service", "berth"), ("scope", "repository:%s:pull" % R)),
            [[b"Authorization", b"Basic dXNlcjpwYXNz"]])),
        (1, lambda: Req(b"POST", P("/token"), None,
                        [[b"Content-Type", b"application/x-www-form-urlencoded"]],
                        b"grant_type=password&username=u&password=p&service=berth")),
    ]

# ---------------------------------------------------------------- mutations


def long_value(rng):
    n = rng.choice(LONG_LENGTHS) if rng.random() < 0.1 else rng.choice(LENGTHS)
    return rng.choice([b"a", b"9", b"%00", b"%2f", b"/", b"a/", b"\xff"]) * n


def interesting(rng, S):
    c = rng.randrange(10)
    if c < 3:
        return rng.choice(NUMS)
    if c < 5:
        return rng.choice(STRINGS)
    if c == 5:
        return rng.choice(ESCAPES)
    if c == 6:
        return long_value(rng)
    if c == 7:
        return digest_variants(rng, S.layer).encode()
    if c == 8:
        return rng.choice([name_variants(rng), tag_variants(rng)]).encode()
    return rng.choice(RAW_BYTES)


def splice(rng, s, piece):
    i = rng.randint(0, len(s))
    return s[:i] + piece + s[i:]


def mut_segment(req, rng, S):
    """A path segment: an escape or raw byte inserted, replaced, doubled,
    dropped, or a name/tag/digest variant."""
    if len(req.segs) < 2:
        req.segs.append(b"x")
    i = rng.randrange(1, len(req.segs))
    c = rng.randrange(8)
    if c == 0:
        req.segs[i] = splice(rng, req.segs[i], rng.choice(ESCAPES))
    elif c == 1:
        req.segs[i] = splice(rng, req.segs[i], rng.choice(RAW_BYTES))
    elif c == 2:
        req.segs[i] = interesting(rng, S)
    elif c == 3:
        req.segs.insert(i, req.segs[i])
    elif c == 4 and len(req.segs) > 2:
        del req.segs[i]
    elif c == 5:
        req.segs[-1] = rng.choice([digest_variants(rng, S.mdigest), tag_variants(rng)]).encode()
    elif c == 6:
        # the repository name (segments between v2 and the route marker)
        if len(req.segs) > 4 and req.segs[1] == b"v2":
            req.segs[2:4] = [name_variants(rng).encode()]
    else:
        req.segs[i] = req.segs[i].upper() if rng.random() < 0.5 else \
            req.segs[i] + rng.choice([b"/", b"//", b"/.", b"/..", b";x", b"%20"])
    req.notes.append("seg")


def mut_query(req, rng, S):
    if req.query is None:
        req.query = []
    qs = req.query
    c = rng.randrange(9)
    if c == 0 or not qs:
        qs.insert(rng.randint(0, len(qs)), (rng.choice(QKEYS), interesting(rng, S)))
    elif c == 1:
        k, v = rng.choice(qs)
        qs.insert(rng.randint(0, len(qs)), (k, rng.choice([v, interesting(rng, S)])))
    elif c == 2:
        qs.insert(rng.randint(0, len(qs)), rng.choice(
            [(b"n", b""), (b"n", None), (b"", b""), (b"", None), (b"", b"x"),
             (b"last", b""), (b"digest", None), (b"=", b"="), (b"&", None)]))
    elif c == 3:
        i = rng.randrange(len(qs))
        qs[i] = (qs[i][0], interesting(rng, S))
    elif c == 4:
        i = rng.randrange(len(qs))
        k, v = qs[i]
        if v is None or rng.random() < 0.3:
            qs[i] = (splice(rng, k, rng.choice(ESCAPES + RAW_BYTES)), v)
        else:
            qs[i] = (k, splice(rng, v, rng.choice(ESCAPES + RAW_BYTES)))
    elif c == 5:
        del qs[rng.randrange(len(qs))]
    elif c == 6:
        i = rng.randrange(len(qs))
        qs[i] = (qs[i][0], long_value(rng))
    elif c == 7:
        i = rng.randrange(len(qs))
        qs[i] = (qs[i][0], (qs[i][1] or b"") + b"%0d%0a" + INJECT.encode() + b":%201")
    else:
        for _ in range(rng.choice([2, 10, 100])):
            qs.append((rng.choice(QKEYS), rng.choice(NUMS)))
    req.notes.append("query")


def mut_header(req, rng, S):
    c = rng.randrange(12)
    if c == 0:
        req.header_set(b"Range", rng.choice(RANGES) if rng.random() < 0.8
                       else interesting(rng, S))
    elif c == 1:
        req.header_set(b"Content-Range", rng.choice(CONTENT_RANGES) if rng.random() < 0.8
                       else interesting(rng, S))
    elif c == 2:
        req.header_set(b"Content-Type", rng.choice(CONTENT_TYPES))
    elif c == 3:
        req.header_set(b"Accept", rng.choice([b"", b"*/*", OCI_INDEX.encode(), b"text/html",
                                              long_value(rng), b"a,,,,b;q=x"]))
    elif c == 4:
        req.header_set(b"Authorization", rng.choice(
            [b"Bearer x", b"Bearer ", b"Basic", b"Basic !!!!", b"Basic Og==",
             b"Bearer " + b"a." * 2000, b"Digest x", b"\x00"]))
    elif c == 5:
        req.header_set(b"Expect", rng.choice([b"100-continue", b"100-Continue", b"x"]))
    elif c == 6:
        i = rng.randrange(len(req.headers))
        req.headers[i][1] = interesting(rng, S)
    elif c == 7:
        i = rng.randrange(len(req.headers))
        req.headers.insert(i, [req.headers[i][0], rng.choice([req.headers[i][1],
                                                              interesting(rng, S)])])
    elif c == 8:
        # Host, Connection or Content-Type gone
        req.header_del(rng.choice([b"Host", b"Connection", b"Content-Type", b"Accept"]))
    elif c == 9:
        req.headers.insert(rng.randrange(len(req.headers) + 1), rng.choice([
            [b"X-Long", long_value(rng)], [b"", b"x"], [b"X y", b"z"],
            [b"Content-Length ", b"%d" % len(req.body)], [b"X\x00", b"y"],
            [b" Folded", b"x"], [b"X-A", b"a\x00b"], [b"\xff", b"\xff"],
            [b"Host", b""], [b"Host", b"a" * 300], [b"Connection", b"keep-alive"],
            [b"Connection", b"close, upgrade"], [b"Upgrade", b"h2c"],
            [b"Cookie", b"a=" + b"b" * 1000], [b"X-Forwarded-For", b"1.2.3.4"]]))
    elif c == 10:
        for _ in range(rng.choice([10, 60])):
            req.headers.insert(1, [b"X-Many-%d" % rng.randrange(1000), b"v"])
    else:
        req.header_set(b"Transfer-Encoding", rng.choice(
            [b"gzip", b"chunked, gzip", b"identity", b"Chunked", b"", b"chunked "]))
    req.notes.append("header")


def mut_crlf(req, rng, S):
    """CR/LF (and what follows it) inside a header value or a query value."""
    inj = rng.choice(CRLFS)
    if rng.random() < 0.7 or not req.query:
        i = rng.randrange(len(req.headers))
        req.headers[i][1] = splice(rng, req.headers[i][1], inj)
    else:
        i = rng.randrange(len(req.query))
        k, v = req.query[i]
        req.query[i] = (k, splice(rng, v or b"", inj))
    req.notes.append("crlf")


def mut_method(req, rng, S):
    req.method = rng.choice(METHODS)
    req.notes.append("method")


def mut_version(req, rng, S):
    req.version = rng.choice(VERSIONS)
    req.notes.append("version")


def mut_body(req, rng, S):
    b = bytearray(req.body)
    c = rng.randrange(7)
    if c == 0 and b:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif c == 1 and b:
        del b[rng.randrange(len(b)):]
    elif c == 2:
        k = rng.choice([1, 10, 1000])
        b += rng.getrandbits(8 * k).to_bytes(k, "little")
    elif c == 3:
        b = bytearray(rng.choice([b"", b"{}", b"[]", b"null", b"\x00", b"{\"a\":",
                                  b"\xef\xbb\xbf{}", b"{\"schemaVersion\":2}",
                                  b"1e999999", b"\"" + b"\\u0000" * 1000 + b"\"",
                                  b"[" * 20000 + b"]" * 20000]))
    elif c == 4:
        b = bytearray(manifest_variant(S, rng))
    elif c == 5:
        b = bytearray(b"x" * rng.choice([65535 - len(req.serialize()) // 2, 1, 4096]))
    else:
        b = bytearray(small_blob(rng))
    req.body = bytes(b[:64000])
    req.notes.append("body")


def mut_cl(req, rng, S):
    """Content-Length that does not say the body's length: a few bytes
    more (the request is then incomplete and its sending side is shut),
    fewer, malformed, doubled or missing."""
    n = len(req.body)
    req.cl = rng.choice([b"%d" % (n + rng.randint(1, 3)), b"%d" % max(0, n - rng.randint(1, 3)),
                         b"abc", b"-1", b"", b" %d" % n, b"%d " % n, b"+%d" % n, b"0x%x" % n,
                         b"%d, %d" % (n, n), b"18446744073709551616", b"%d\x00" % n,
                         b"99999999999999999999", b"0", False, b"%d" % n])
    if rng.random() < 0.2:
        req.headers.append([b"Content-Length", rng.choice([b"%d" % n, b"%d" % (n + 1)])])
    req.notes.append("cl")


def mut_chunked(req, rng, S):
    """The body sent chunked (sometimes with malformed chunks)."""
    b = req.body
    out = []
    i = 0
    while i < len(b):
        k = rng.choice([1, 7, 100, 4096, 1 << 16])
        out.append(b"%x\r\n" % len(b[i:i + k]) + b[i:i + k] + b"\r\n")
        i += k
    out.append(b"0\r\n\r\n")
    if rng.random() < 0.25:
        j = rng.randrange(len(out))
        out[j] = rng.choice([b"zz\r\n", b"ffffffffffffffffff\r\nx\r\n", b"1;ext=1\r\nx\r\n",
                             b"-1\r\n", b"\r\n", b"0\r\nTrailer: x\r\n\r\n", b"3\r\nab\r\n"])
    req.body = b"".join(out)[:64000]
    req.cl = False
    req.header_set(b"Transfer-Encoding", b"chunked")
    req.notes.append("chunked")


STRUCT_OPS = [(5, mut_segment), (6, mut_query), (5, mut_header), (1, mut_crlf),
              (1, mut_method), (1, mut_version), (2, mut_body), (1, mut_cl),
              (1, mut_chunked)]


def raw_mutate(data, rng):
    """Byte flips, inserts, deletes, duplicates in the head (mostly in the
    request line), or a truncation anywhere."""
    b = bytearray(data)
    hend = data.find(b"\r\n\r\n")
    hend = len(data) if hend < 0 else hend + 2
    lend = data.find(b"\r\n")
    lend = hend if lend < 0 else lend
    notes = []
    for _ in range(rng.randint(1, 3)):
        lim = lend if rng.random() < 0.8 else hend
        lim = max(1, min(lim, len(b)))
        i = rng.randrange(lim)
        c = rng.randrange(6)
        if c == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif c == 1:
            b[i] = rng.randrange(256)
        elif c == 2:
            b[i:i] = rng.choice(RAW_BYTES + ESCAPES)
        elif c == 3:
            del b[i:i + rng.randint(1, 8)]
        elif c == 4:
            j = min(len(b), i + rng.randint(1, 16))
            b[i:i] = b[i:j] * rng.choice([1, 2, 50])
        else:
            b[i:i] = bytes([rng.randrange(256)])
        notes.append("raw")
    if rng.random() < 0.15:
        del b[rng.randrange(max(1, len(b))):]
        notes.append("truncated")
    return bytes(b), notes


def build_request(S, rng, table):
    """A mutated request: (bytes, notes)."""
    total = sum(w for w, _ in table)
    x = rng.randrange(total)
    for w, f in table:
        x -= w
        if x < 0:
            req = f()
            break
    k = rng.choice([0, 1, 1, 1, 2, 2, 3, 4])
    tw = sum(w for w, _ in STRUCT_OPS)
    for _ in range(k):
        x = rng.randrange(tw)
        for w, op in STRUCT_OPS:
            x -= w
            if x < 0:
                op(req, rng, S)
                break
    data = req.serialize()
    notes = req.notes
    if rng.random() < 0.25:
        data, more = raw_mutate(data, rng)
        notes = notes + more
    return data, notes

# ---------------------------------------------------------------- the wire


EOL = re.compile(rb"\r?\n")


def lines_of_head(data):
    """The head as libmicrohttpd 0.9.75 reads it (a line ends at CRLF or a
    lone LF, a lone CR is part of the line; empty lines before the request
    line are skipped): (lines, offset of the body), or None when the head
    has no end yet."""
    pos, lines = 0, []
    while True:
        m = EOL.search(data, pos)
        if m is None:
            return None
        line = data[pos:m.start()]
        pos = m.end()
        if not lines:
            if line:
                lines.append(line)
            continue
        if not line:
            return lines, pos
        lines.append(line)


def chunked_complete(b):
    pos = 0
    while True:
        j = b.find(b"\r\n", pos)
        if j < 0:
            return False
        size = b[pos:j].split(b";")[0]
        if not size or not re.fullmatch(rb"[0-9a-fA-F]{1,15}", size):
            return False
        size = int(size, 16)
        pos = j + 2
        if size == 0:
            while True:
                k = b.find(b"\r\n", pos)
                if k < 0:
                    return False
                if k == pos:
                    return True
                pos = k + 2
        if b[pos + size:pos + size + 2] != b"\r\n":
            return False
        pos += size + 2


def analyse(data):
    """(complete, method, has_body): complete when libmicrohttpd surely has the whole
    first request (head, and a body exactly as announced) and waits for
    nothing more. When this cannot be told, the request counts as
    incomplete and its sending side is shut after it."""
    h = lines_of_head(data)
    first = data.lstrip(b"\r\n").split(b" ", 1)[0]
    if h is None:
        return False, first, True
    lines, off = h
    body = data[off:]
    words = lines[0].split(b" ")
    version = words[-1] if len(words) >= 3 else b""
    hdrs = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            if not hdrs:
                return False, first, True
            hdrs[-1][1] += b" " + line.lstrip(b" \t")
            continue
        if b":" not in line:
            return False, first, True
        k, v = line.split(b":", 1)
        hdrs.append([k, v.lstrip(b" \t")])   # trailing blanks stay (as MHD keeps them)
    cls = [v for k, v in hdrs if k.strip().lower() == b"content-length"]
    tes = [v for k, v in hdrs if k.strip().lower() == b"transfer-encoding"]
    if any(k != k.strip() or b"\x00" in k for k, _ in hdrs
           if k.strip().lower() in (b"content-length", b"transfer-encoding")):
        return False, first, True
    if (cls or tes) and version not in (b"HTTP/1.1", b"HTTP/1.0"):
        return False, first, True
    if tes:
        if cls or len(tes) > 1 or tes[0].lower() != b"chunked":
            return False, first, True
        return chunked_complete(body), first, len(body) > 5
    if cls:
        # all the same plain number, at most what was sent (the rest is
        # a next request, which the answer to this one does not wait for)
        v = cls[0]
        ok = len(set(cls)) == 1 and re.fullmatch(rb"[0-9]{1,18}", v) is not None \
            and int(v) <= len(body)
        return ok, first, not ok or int(v) > 0
    return True, first, False


class Resp:
    def __init__(self):
        self.outcome = None   # "answer", "close", "reset", "timeout", "garbage"
        self.status = None
        self.head = b""
        self.headers = []
        self.body = b""
        self.short = False    # closed before Content-Length bytes came
        self.cut = False      # the same, by a reset
        self.extra = b""      # bytes after the answer (HEAD: must be none)

    def hdr(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None


STATUS_RE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.reset = False    # the end came as a reset, not a FIN

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except OSError:
            return False

    def shut(self):
        try:
            self.s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def _fill(self, deadline):
        """More bytes into buf; False on EOF or reset; socket.timeout when
        nothing came by the deadline (what already arrived is still read
        when the deadline passed meanwhile)."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        self.s.settimeout(min(left, 3.0) if left > 0 else 0.0)
        try:
            d = self.s.recv(65536)
        except (socket.timeout, BlockingIOError):
            if time.monotonic() >= deadline:
                raise socket.timeout()
            return True
        except OSError:
            self.eof = self.reset = True
            return False
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def response(self, deadline, method, soft=None):
        """The next answer (1xx skipped). With soft: "pending" when nothing
        of an answer came by then (the caller looks again later)."""
        r = Resp()
        try:
            while True:
                i = self.buf.find(b"\r\n\r\n")
                if i < 0:
                    if len(self.buf) >= 5 and not self.buf.startswith(b"HTTP/"):
                        r.outcome = "garbage"
                        r.head = self.buf[:400]
                        return r
                    if soft is not None and not self.buf and soft < deadline:
                        try:
                            alive = self._fill(soft)
                        except socket.timeout:
                            r.outcome = "pending"
                            return r
                    else:
                        alive = self._fill(deadline)
                    if not alive:
                        # a reset may cut what was on its way (berth
                        # answered early and closed with the request
                        # unread); a FIN after part of a head may not
                        if self.buf and not self.reset:
                            r.outcome = "garbage"
                            r.head = self.buf[:400]
                        else:
                            r.outcome = "reset" if self.reset else "close"
                        return r
                    continue
                head = self.buf[:i]
                first = head.split(b"\r\n", 1)[0]
                m = STATUS_RE.fullmatch(first)
                if not m:
                    r.outcome = "garbage"
                    r.head = head[:400]
                    return r
                st = int(m.group(1))
                if 100 <= st < 200:
                    self.buf = self.buf[i + 4:]
                    continue
                r.status, r.head = st, head
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    r.headers.append((k.strip().lower().decode("latin-1"),
                                      v.strip().decode("latin-1")))
                self.buf = self.buf[i + 4:]
                break
            r.outcome = "answer"
            cl = r.hdr("content-length")
            te = (r.hdr("transfer-encoding") or "").lower()
            if method == b"HEAD" or st in (204, 304):
                need = 0
            elif cl is not None and cl.isdigit():
                need = int(cl)
            elif te == "chunked":
                while not chunked_complete(self.buf):
                    if not self._fill(deadline):
                        r.short = True
                        break
                r.body, self.buf = self.buf, b""
                return r
            else:
                need = None
            if method.upper() == b"HEAD" and method != b"HEAD":
                # libmicrohttpd and berth may disagree on a "head"
                need = None
                deadline = min(deadline, time.monotonic() + 0.5)
            while need is None or len(self.buf) < need:
                try:
                    if not self._fill(deadline):
                        break
                except socket.timeout:
                    if need is None:
                        break
                    raise
            if need is None:
                r.body, self.buf = self.buf, b""
            else:
                r.short = len(self.buf) < need
                r.body, self.buf = self.buf[:need], self.buf[need:]
                if r.short and self.reset:
                    r.short, r.cut = False, True
            if method == b"HEAD":
                r.extra = self.buf
            return r
        except socket.timeout:
            if r.outcome != "answer":
                r.outcome = "timeout"
            else:
                r.short = True
            return r

# ---------------------------------------------------------------- checks


ROUTES = [(re.compile(p), k) for p, k in [
    (rb"/v2/?", "base"), (rb"/v2/_catalog.*", "catalog"), (rb"/v2/_berth/.*", "admin"),
    (rb"/v2/.*/tags/list", "tags"), (rb"/v2/.*/blobs/uploads/", "uploads"),
    (rb"/v2/.*/blobs/uploads/.+", "upload"), (rb"/v2/.*/manifests/.*", "manifest"),
    (rb"/v2/.*/referrers/.*", "referrers"), (rb"/v2/.*/blobs/.*", "blob"),
    (rb"/(healthz|readyz|metrics)", "ops"), (rb"/v2/.*", "v2-other")]]


TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


HEAD_MAX = 32 * 1024  # berth's per-connection memory for a request head


def well_formed_line(data):
    """A request line libmicrohttpd has no reason to drop: a token method,
    a target, HTTP/1.0 or HTTP/1.1, in a head that fits berth's connection
    memory (a bigger one is answered 431 and closed while the client still
    sends, which a reset may cut short)."""
    h = lines_of_head(data)
    if h is None or h[1] > HEAD_MAX:
        return False
    # an obs-fold (a header line that starts with a space or tab) may be
    # refused at once (RFC 9112, 5.2), the answer then lost to a reset
    # when a body is still coming
    if any(line[:1] in (b" ", b"\t") for line in h[0][1:]):
        return False
    words = h[0][0].split(b" ")
    return len(words) == 3 and TOKEN.fullmatch(words[0]) is not None and \
        words[1][:1] == b"/" and words[2] in (b"HTTP/1.0", b"HTTP/1.1")


def route_of(data):
    """A coarse route name for the request's target (for grouping)."""
    line = data.lstrip(b"\r\n").split(b"\n", 1)[0].split(b" ")
    target = line[1].split(b"?", 1)[0] if len(line) > 1 else b""
    for rx, k in ROUTES:
        if rx.fullmatch(target):
            return k
    return "other"


class Fuzz:
    SOFT = 0.01    # s before a silent connection is parked
    HARD = 5.0     # s for a complete request's answer
    SHUT = 3.0     # s for an answer (or close) after a half-close
    MAX_PARKED = 128  # lowered to a quarter of the descriptor limit

    def __init__(self, port, seed):
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft != resource.RLIM_INFINITY:
            self.MAX_PARKED = max(8, min(self.MAX_PARKED, soft // 4))
        self.port = port
        self.seed = seed
        self.sent = 0
        self.upkeep = 0
        self.status = {}
        self.closes = {"complete": 0, "incomplete": 0}
        self.incomplete = 0
        self.incomplete_silent = 0
        self.sendfail = 0
        self.pairs = 0
        self.pairs_closed = 0
        self.pipelined = 0
        self.raw = 0
        self.no_apiver = 0
        self.parked_max = 0
        self.hangs = 0
        self.mhd_head_body = 0
        self.cut = 0
        self.dead = False
        self.last = b""
        self.close_examples = []
        self.silent_examples = []
        self.parked = []   # [conn, data, method, complete, hard deadline, n, judge]

    def describe(self, data, n):
        if len(data) > 600:
            return "request #%d (seed %d) %r...(%d bytes in all)...%r" % (
                n, self.seed, data[:500], len(data), data[-60:])
        return "request #%d (seed %d) %r" % (n, self.seed, data)

    def judge(self, data, method, complete, r, n):
        """The checks on one exchange."""
        d = lambda: self.describe(data, n)
        has_body = analyse(data)[2]
        where = (method[:16], route_of(data))
        if r.outcome == "timeout":
            if complete:
                self.hangs += 1
                REP.fail("mutate: complete requests are answered within %.0f s" % self.HARD,
                         "no answer to %s (%s)" % (d(), "with a body" if has_body
                                                  else "without a body"),
                         key=("hang", True) if has_body else
                         ("hang", "expect") if b"100-continue" in data.lower() else
                         ("hang", False) + where)
            else:
                self.incomplete_silent += 1
                if len(self.silent_examples) < 3:
                    self.silent_examples.append(data[:300])
            return
        if r.outcome in ("close", "reset"):
            self.closes["complete" if complete else "incomplete"] += 1
            if complete and well_formed_line(data):
                REP.fail("mutate: a well-formed complete request gets an answer, not a close",
                         "%s: closed without an answer" % d(), key=("close",) + where)
            elif complete and len(self.close_examples) < 3:
                self.close_examples.append(data[:300])
            return
        if r.outcome == "garbage":
            REP.fail("mutate: status line parses", "%s got %r" % (d(), r.head[:300]),
                     key=("garbage",) + where)
            return
        st = r.status
        self.status[st] = self.status.get(st, 0) + 1
        if r.cut:
            self.cut += 1
        if st in (500, 502, 503, 507):
            REP.fail("mutate: no %d" % st, "%s -> %d %r body %r" % (
                d(), st, r.head[:300], r.body[:300]), key=(st,) + where)
        ctype = (r.hdr("content-type") or "").split(";")[0].strip().lower()
        apiver = r.hdr("docker-distribution-api-version")
        if apiver is None:
            self.no_apiver += 1
        if st >= 400 and method != b"HEAD" and not r.short and not r.cut and \
                (ctype == "application/json" or apiver is not None) and \
                not (method.upper() == b"HEAD" and not r.body):
            ok = False
            try:
                j = json.loads(r.body)
                ok = isinstance(j["errors"][0]["code"], str)
            except (ValueError, KeyError, IndexError, TypeError):
                pass
            if not ok:
                REP.fail("mutate: error answers are OCI error JSON",
                         "%s -> %d Content-Type %r body %r" % (
                             d(), st, r.hdr("content-type"), r.body[:300]),
                         key=("json", st) + where)
        if r.short:
            REP.fail("mutate: whole body as announced",
                     "%s -> %d %r, %d bytes of body" % (d(), st, r.head[:300], len(r.body)),
                     key=("short", st) + where)
        if r.extra and not r.extra.startswith(b"HTTP/"):
            if apiver is None:
                # libmicrohttpd's own error pages (431 "Request too big")
                # come with their body even to a HEAD
                self.mhd_head_body += 1
            else:
                REP.fail("mutate: HEAD answers have no body",
                         "%s -> %d then %r" % (d(), st, r.extra[:100]),
                         key=("headbody",) + where)
        if r.hdr(INJECT.lower()) is not None:
            REP.fail("mutate: no header injected into an answer",
                     "%s -> %r" % (d(), r.head[:400]), key=("inject",) + where)

    def connect(self):
        for i in range(3):
            try:
                return Conn(self.port)
            except ConnectionRefusedError:
                self.dead = True
                return None
            except OSError:
                time.sleep(0.05 * (i + 1))
        return None

    def await_answer(self, c, data, method, complete, n):
        """The answer, or the connection parked when nothing came within
        SOFT: it is looked at again by poll()."""
        hard = time.monotonic() + (self.HARD if complete else self.SHUT)
        r = c.response(hard, method, soft=time.monotonic() + self.SOFT)
        if r.outcome == "pending":
            self.parked.append([c, data, method, complete, hard, n, self.judge])
            self.parked_max = max(self.parked_max, len(self.parked))
            if len(self.parked) > self.MAX_PARKED:
                self.poll(wait_oldest=True)
            return
        c.close()
        self.judge(data, method, complete, r, n)

    def poll(self, wait_oldest=False, wait_all=False):
        """Judges the parked connections that have something to read or
        are past their deadline."""
        while self.parked:
            now = time.monotonic()
            if wait_all or wait_oldest:
                t = max(0.0, min(p[4] for p in self.parked) - now)
            else:
                t = 0.0
            ready, _, _ = select.select([p[0].s for p in self.parked], [], [], t)
            now = time.monotonic()
            done = [p for p in self.parked if p[0].s in ready or now >= p[4]]
            for p in done:
                self.parked.remove(p)
                c, data, method, complete, hard, n, judge = p
                r = c.response(hard, method)
                c.close()
                judge(data, method, complete, r, n)
            if wait_all:
                continue
            if not wait_oldest or done:
                return

    def one(self, data, n):
        """Sends one request on its own connection."""
        complete, method, _ = analyse(data)
        c = self.connect()
        if c is None:
            return
        self.sent += 1
        self.last = data
        if not complete:
            self.incomplete += 1
        if not c.send(data):
            self.sendfail += 1
        if not complete:
            c.shut()
        self.await_answer(c, data, method, complete, n)

    def pair(self, first, data, n, pipelined):
        """A clean request kept alive, then the mutated one on the same
        connection (pipelined: both sent at once)."""
        complete, method, _ = analyse(data)
        c = self.connect()
        if c is None:
            return
        fmethod = analyse(first)[1]
        self.sent += 2
        self.last = first + data
        if pipelined:
            self.pipelined += 1
            c.send(first + data)
            if not complete:
                c.shut()
        else:
            self.pairs += 1
            c.send(first)
        r = c.response(time.monotonic() + self.HARD, fmethod)
        self.judge(first, fmethod, True, r, n)
        if r.outcome != "answer" or (r.hdr("connection") or "").lower() == "close":
            self.pairs_closed += 1
            c.close()
            if not pipelined:
                self.sent -= 1
                self.one(data, n)
            return
        if not pipelined:
            if not complete:
                self.incomplete += 1
            c.send(data)
            if not complete:
                c.shut()
        self.await_answer(c, data, method, complete, n)

    def plain(self, method, target, headers=(), body=b"", limit=None):
        """A well-formed request (upkeep and final checks): the Resp."""
        h = b"".join(k.encode() + b": " + v.encode() + b"\r\n" for k, v in headers)
        data = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s" \
               b"Content-Length: %d\r\n\r\n" % (method.encode(), target.encode(), h,
                                                len(body)) + body
        c = self.connect()
        r = Resp()
        r.outcome = "close"
        if c is None:
            return r
        self.upkeep += 1
        c.send(data)
        r = c.response(time.monotonic() + (limit or self.HARD), method.encode())
        c.close()
        self.judge(data, method.encode(), True, r, -1)
        return r

# ---------------------------------------------------------------- upkeep


def fetch_state(F, S):
    """The manifest and blobs of REPO:TAG as pushed, and an upload session."""
    r = F.plain("GET", "/v2/%s/manifests/%s" % (S.repo, S.tag), [("Accept", ACCEPT_ALL)])
    if r.status != 200:
        REP.fail("mutate: GET the pushed manifest before the run",
                 "status %s %r" % (r.status, r.body[:200]))
        return False
    S.mbody = r.body
    S.mtype = (r.hdr("content-type") or OCI_MANIFEST).split(";")[0].strip()
    if not S.mdigest:
        S.mdigest = dg(r.body)
    try:
        m = json.loads(r.body)
        S.config = m["config"]["digest"]
        S.layer = m["layers"][0]["digest"]
        digests = [S.config] + [x["digest"] for x in m["layers"]]
    except (ValueError, KeyError, IndexError, TypeError):
        digests = []
    for d in digests:
        r = F.plain("GET", "/v2/%s/blobs/%s" % (S.repo, d))
        if r.status == 200 and dg(r.body) == d:
            S.blobs[d] = r.body
    if not S.upload:
        new_upload(F, S)
    return True


def new_upload(F, S):
    r = F.plain("POST", "/v2/%s/blobs/uploads/" % S.repo)
    loc = re.sub(r"^https?://[^/]*", "", r.hdr("location") or "")
    if r.status == 202 and loc:
        S.upload = loc.split("?")[0]
    elif not S.upload:
        S.upload = "/v2/%s/blobs/uploads/00000000-0000-0000-0000-000000000000" % S.repo


def restore(F, S):
    """Puts back what mutated DELETEs and PUTs may have changed in REPO."""
    r = F.plain("HEAD", "/v2/%s/manifests/%s" % (S.repo, S.tag), [("Accept", ACCEPT_ALL)])
    if r.status != 200 or r.hdr("docker-content-digest") != S.mdigest:
        for d, b in S.blobs.items():
            r = F.plain("HEAD", "/v2/%s/blobs/%s" % (S.repo, d))
            if r.status != 200:
                r = F.plain("POST", "/v2/%s/blobs/uploads/?digest=%s" % (S.repo, d),
                            [("Content-Type", "application/octet-stream")], b)
                if r.status != 201:
                    REP.fail("mutate: upkeep puts a blob back", "POST ?digest=%s -> %s %r"
                             % (d, r.status, r.body[:200]))
        r = F.plain("PUT", "/v2/%s/manifests/%s" % (S.repo, S.tag),
                    [("Content-Type", S.mtype)], S.mbody)
        if r.status != 201:
            REP.fail("mutate: upkeep puts the manifest back",
                     "PUT -> %s %r" % (r.status, r.body[:200]))
    r = F.plain("GET", S.upload)
    if r.status != 204:
        new_upload(F, S)

# ---------------------------------------------------------------- probes


def framing_probes(F, S):
    """Fixed requests that carry a small body to routes that take none (or
    to a POST that starts a plain session): each must be answered like the
    same request without a body. And a request whose body length cannot be
    told (a Transfer-Encoding other than chunked): RFC 9112 6.3 wants a 400
    and the connection closed, not a wait for the client to close. Sent
    all at once and parked: their answers are judged while the random
    requests run."""
    R, T = S.repo, S.tag
    b5 = b"Content-Length: 5\r\n\r\nhello"
    probes = [
        ("GET /v2/", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b5),
        ("HEAD manifest", b"HEAD /v2/%s/manifests/%s HTTP/1.1\r\nHost: x\r\n"
         b"Connection: close\r\n" % (R.encode(), T.encode()) + b5),
        ("GET tags/list", b"GET /v2/%s/tags/list HTTP/1.1\r\nHost: x\r\n"
         b"Connection: close\r\n" % R.encode() + b5),
        ("DELETE of an unknown tag", b"DELETE /v2/%s/manifests/nosuchtag HTTP/1.1\r\n"
         b"Host: x\r\nConnection: close\r\n" % R.encode() + b5),
        ("POST blobs/uploads/ (plain)", b"POST /v2/%s/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
         b"Connection: close\r\n" % R.encode() + b5),
        ("GET /healthz, chunked,", b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close"
         b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ]
    probes.append(("GET /v2/ with Expect: 100-continue, then a pipelined request,",
                   b"GET /v2/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"
                   b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    te = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"

    def judge_as(name):
        return lambda data, method, complete, r, n: framing_verdict(F, name, data, r)

    hard = time.monotonic() + F.HARD
    for name, data in probes + [(None, te)]:
        c = F.connect()
        if c is None:
            return
        c.send(data)
        F.upkeep += 1
        F.parked.append([c, data, data.split(b" ", 1)[0], True, hard, -1, judge_as(name)])


def framing_verdict(F, name, data, r):
    """The verdict on one framing probe (name None: the gzip one)."""
    if name is None:
        check = ("mutate: a request with Transfer-Encoding: gzip is refused at once "
                 "(RFC 9112 6.3: 400, then close)")
        if r.outcome in ("answer", "close", "reset"):
            REP.ok("%s (%s)" % (check, r.status or "closed"))
        else:
            REP.fail(check, "no answer or close after %.0f s: %r" % (F.HARD, data))
        return
    check = "mutate: %s is answered" % (name if "Expect" in name else
                                        name + " with a 5-byte body")
    if r.outcome == "answer":
        REP.ok("%s (%d)" % (check, r.status))
    else:
        REP.fail(check, "%s after %.0f s: %r" % (
            "no answer" if r.outcome == "timeout" else r.outcome, F.HARD, data))

def inflight_check(F):
    """Once every connection of this script is closed, berth has no
    request in flight but the one asking (berth_http_requests_in_flight)
    within the server's --idle-timeout (the test sets 4 s): a connection
    whose client half-closed it in the middle of a body may go unnoticed
    by libmicrohttpd until then, never longer."""
    n, t0 = None, time.monotonic()
    while time.monotonic() - t0 < 8:
        r = F.plain("GET", "/metrics")
        m = re.search(rb"^berth_http_requests_in_flight ([0-9]+)", r.body, re.M)
        n = int(m.group(1)) if m else None
        if n is not None and n <= 1:
            break
        time.sleep(0.2)
    REP.fig("mutate_in_flight_drained_after_s", "%.1f" % (time.monotonic() - t0))
    check = ("mutate: no request left in flight past --idle-timeout once "
             "this script closed its connections")
    if n is not None and n <= 1:
        REP.ok(check)
    else:
        REP.fail(check, "berth_http_requests_in_flight is %s after 8 s (1 "
                 "is this request): connections the client closed are "
                 "still held" % n)

# ---------------------------------------------------------------- main


def main(argv):
    if len(argv) < 5:
        say("usage: http_mutate.py PORT SEED SECONDS MAX_REQUESTS [REPO TAG DIGEST "
            "UPLOAD_PATH [CANARY_REPO CANARY_TAG CANARY_DIGEST]]")
        return 2
    port, seed, seconds, maxreq = int(argv[1]), int(argv[2]), float(argv[3]), int(argv[4])
    rest = argv[5:] + [""] * 7
    repo, tag = rest[0] or "mutate/fuzz", rest[1] or "v1"
    S = State(repo, tag, rest[2], rest[3], (rest[4], rest[5], rest[6]))
    rng = random.Random(seed)
    F = Fuzz(port, seed)
    REP.fig("mutate_seed", seed)

    if fetch_state(F, S):
        restore(F, S)
    framing_probes(F, S)
    table = seeds(S, rng)
    t0 = time.monotonic()
    n = 0
    while n < maxreq and time.monotonic() - t0 < seconds and not F.dead:
        if n % 250 == 0 and n > 0:
            restore(F, S)
            table = seeds(S, rng)
        data, notes = build_request(S, rng, table)
        if "raw" in notes or "truncated" in notes:
            F.raw += 1
        mode = rng.random()
        if mode < 0.06:
            first = Req(b"GET", P("/v2/%s/manifests/%s" % (S.repo, S.tag)), None,
                        [[b"Accept", ACCEPT_ALL.encode()]])
            first.header_del(b"Connection")
            F.pair(first.serialize(), data, n,
                   pipelined=mode < 0.02 and analyse(data)[0])
        else:
            F.one(data, n)
            F.poll()
        n += 1
    elapsed = time.monotonic() - t0
    F.poll(wait_all=True)
    if F.dead:
        REP.fail("mutate: berth keeps accepting connections",
                 "connection refused after %d requests; the last one sent: %s"
                 % (F.sent, F.describe(F.last, n - 1)))

    REP.fig("mutate_requests", F.sent)
    REP.fig("mutate_upkeep_requests", F.upkeep)
    REP.fig("mutate_seconds", "%.1f" % elapsed)
    REP.fig("mutate_req_per_s", "%.0f" % (F.sent / elapsed if elapsed > 0 else 0))
    REP.fig("mutate_statuses", " ".join("%d:%d" % kv for kv in sorted(F.status.items())))
    REP.fig("mutate_closed_without_answer", "%d (of complete requests %d, of incomplete %d)"
            % (F.closes["complete"] + F.closes["incomplete"], F.closes["complete"],
               F.closes["incomplete"]))
    REP.fig("mutate_answers_cut_by_a_reset", F.cut)
    REP.fig("mutate_libmicrohttpd_error_pages_with_a_body_to_head", F.mhd_head_body)
    for i, e in enumerate(F.close_examples):
        REP.fig("mutate_closed_complete_example_%d" % i, repr(e))
    REP.fig("mutate_incomplete_sent", F.incomplete)
    REP.fig("mutate_incomplete_no_answer_in_3s", F.incomplete_silent)
    for i, e in enumerate(F.silent_examples):
        REP.fig("mutate_incomplete_no_answer_example_%d" % i, repr(e))
    REP.fig("mutate_raw_mutated", F.raw)
    REP.fig("mutate_send_errors", F.sendfail)
    REP.fig("mutate_keepalive_pairs", "%d (pipelined %d, first answer closed %d)"
            % (F.pairs, F.pipelined, F.pairs_closed))
    REP.fig("mutate_answers_without_api_version", F.no_apiver)
    REP.fig("mutate_unanswered_complete_requests", "%d (at most %d parked at once)"
            % (F.hangs, F.parked_max))

    if not F.dead:
        r = F.plain("GET", "/v2/")
        if r.status == 200:
            REP.ok("mutate: GET /v2/ is 200 after %d mutated requests" % F.sent)
        else:
            REP.fail("mutate: GET /v2/ is 200 after the run", "got %s (%s)"
                     % (r.status, r.outcome))
        inflight_check(F)
        crepo, ctag, cdig = S.canary
        if crepo:
            r = F.plain("GET", "/v2/%s/manifests/%s" % (crepo, ctag), [("Accept", ACCEPT_ALL)])
            got = r.hdr("docker-content-digest")
            if r.status == 200 and got == cdig and dg(r.body) == cdig:
                REP.ok("mutate: canary %s:%s unchanged (%s)" % (crepo, ctag, cdig[:19]))
            else:
                REP.fail("mutate: canary %s:%s unchanged" % (crepo, ctag),
                         "status %s, Docker-Content-Digest %s, body %s, want %s"
                         % (r.status, got, dg(r.body), cdig))
        if REP.failures == 0:
            REP.ok("mutate: no 5xx, hang, malformed answer or non-OCI error in %d requests"
                   % F.sent)
    REP.close()
    say("end")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
