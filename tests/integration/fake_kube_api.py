# A stand-in for the Kubernetes API server, for the tests of
# `berth gc --pins-from-kubernetes`: HTTPS with a test certificate, the
# seven list endpoints answered from recorded pages FIXDIR/<resource>-<n>.json
# (paged with limit/continue, read at each request), a bearer token checked
# (anything else: 401 with a Status object), every request logged.
# usage: fake_kube_api.py PORT FIXDIR CERT KEY LOG TOKEN [PODS_ONLY BROKEN]
# (listens on 127.0.0.1, or on FAKE_KUBE_ADDR)
import json, os, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

port, fixdir, cert, key, log, good = sys.argv[1:7]
# optional: a token allowed pods only (403 elsewhere), a token whose
# cronjobs page 2 is cut in the middle
pods_only, broken = (sys.argv[7:9] + ["\0", "\0"])[:2]
ENDPOINTS = {"/api/v1/pods": ("pods", ""),
             "/apis/apps/v1/deployments": ("deployments", "apps"),
             "/apis/apps/v1/replicasets": ("replicasets", "apps"),
             "/apis/apps/v1/statefulsets": ("statefulsets", "apps"),
             "/apis/apps/v1/daemonsets": ("daemonsets", "apps"),
             "/apis/batch/v1/jobs": ("jobs", "batch"),
             "/apis/batch/v1/cronjobs": ("cronjobs", "batch")}


def pages_of(res):
    """[(raw page, its metadata.continue)], read at every request so a
    test can change the cluster between runs."""
    out, n = [], 1
    while os.path.exists("%s/%s-%d.json" % (fixdir, res, n)):
        raw = open("%s/%s-%d.json" % (fixdir, res, n), "rb").read()
        out.append((raw, json.loads(raw)["metadata"].get("continue", "")))
        n += 1
    return out

lock = threading.Lock()

def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {},
         "status": "Failure", "message": message, "reason": reason,
         "code": code}
    if details:
        s["details"] = details
    return json.dumps(s).encode()

def answer(path, auth, cont):
    if auth not in ("Bearer " + good, "Bearer " + pods_only, "Bearer " + broken):
        return 401, status(401, "Unauthorized", "Unauthorized"), "-"
    if path not in ENDPOINTS:
        return 404, status(404, "NotFound", "the server could not find the requested resource"), "-"
    res, group = ENDPOINTS[path]
    if auth == "Bearer " + pods_only and res != "pods":
        return 403, status(403, "Forbidden",
            '%s.%s is forbidden: User "system:serviceaccount:registry:berth-gc" '
            'cannot list resource "%s" in API group "%s" at the cluster scope'
            % (res, group, res, group), {"group": group, "kind": res}), "-"
    pages = pages_of(res)
    if cont is None:
        i = 0
    else:
        i = next((k + 1 for k, (_, c) in enumerate(pages) if c and c == cont), len(pages))
    if i >= len(pages):
        return 410, status(410, "Expired", "The provided continue parameter is "
            "too old to display a consistent list result. You can start a new "
            "list without the continue parameter."), "-"
    raw = pages[i][0]
    if auth == "Bearer " + broken and res == "cronjobs" and i == 1:
        raw = raw[:len(raw) // 2]  # a connection cut in the middle
    return 200, raw, str(i + 1)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query, keep_blank_values=True)
        cont = q["continue"][0] if "continue" in q else None
        code, body, page = answer(u.path, self.headers.get("Authorization", ""), cont)
        with lock, open(log, "a") as f:
            f.write("GET %s limit=%s continue=%s -> %d page %s\n" % (
                u.path, ",".join(q.get("limit", ["-"])),
                "-" if cont is None else cont, code, page))
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Audit-Id", "5d1e2f6a-0c4b-4f0e-9a55-3f1d2c7b8e90")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

srv = ThreadingHTTPServer((os.environ.get("FAKE_KUBE_ADDR", "127.0.0.1"), int(port)), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
