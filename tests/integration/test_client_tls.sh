#!/usr/bin/env bash
# Real clients against berth serving HTTPS with a certificate from a test
# CA, each trusting that CA the way a node or a CI runner is set up:
# skopeo and podman with --cert-dir, containerd's ctr with hosts.toml
# `ca = ...`, docker with certs.d/<host:port>/ca.crt. Each one first fails
# without the CA (verification is on), then pushes what another client
# pulls back, digests compared through the registry.
#
# dockerd treats every registry on 127.0.0.0/8 as insecure (it then skips
# verification and never reads certs.d), so docker reaches berth by a name
# dockerd cannot resolve, berth.test:PORT, through an HTTPS proxy on
# 127.0.0.1 that only connects that name to berth: dockerd then verifies
# the certificate against certs.d/berth.test:PORT/ca.crt.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/clients_lib.sh
. tests/integration/tls_lib.sh

# the clients this test drives; a missing one is skipped, not passed
have() { command -v "$1" >/dev/null 2>&1; }
skip() { echo "skip $1 (not installed)"; }
export CONTAINERD_SNAPSHOTTER=native
PSTORE=(--root "$T/ps" --runroot "$T/psr" --storage-driver vfs)
run() {
	local rc t0=$SECONDS
	echo "+ $*" >>"$T/clients.log"
	timeout 120 "$@" >"$T/last.out" 2>&1
	rc=$?
	cat "$T/last.out" >>"$T/clients.log"
	echo "= rc $rc in $((SECONDS - t0)) s" >>"$T/clients.log"
	return $rc
}
why() { echo "$1 ($(tail_msg "$T/last.out"))"; }
x509_refused() { grep -Eqi 'x509|certificate signed by unknown authority|unknown authority|tls: failed to verify' "$T/last.out"; }
sk() { run skopeo --policy "$POLICY" "$@"; }
pd() { run podman "${PSTORE[@]}" "$@"; }
c() { run ctr -a "$CTD_SOCK" -n berth-test "$@"; }
image_digest() { timeout 60 ctr -a "$CTD_SOCK" -n berth-test images ls 2>/dev/null | awk -v r="$1" '$1 == r { print $3 }'; }

C=$T/certs
if ! TLS_SAN=IP:127.0.0.1,DNS:localhost,DNS:berth.test tls_make_ca "$C" ||
	! tls_make_leaf "$C" srv ec; then
	fail "ctls.setup: openssl could not make the test CA"
	exit 1
fi
TLS_CA=$C/ca.crt
export CURL_CA_BUNDLE=$TLS_CA # the reg_* helpers' curl
CD=$T/cert-dir                # what --cert-dir wants: a ca.crt in it
mkdir -p "$CD" && cp "$TLS_CA" "$CD/ca.crt"
if ! tls_start_berth --tls-cert "$C/srv.crt" --tls-key "$C/srv.key"; then
	fail "ctls.start: berth did not start with TLS"
	exit 1
fi
L=$T/layout
make_oci_image "$L" app "hello over tls" amd64 1024 || { fail "ctls.build_image"; exit 1; }
APP=$IMG_MANIFEST_DIGEST

# ---- skopeo: refuses the unknown CA, pushes with --dest-cert-dir (the
# image every other client starts from)
if have skopeo; then
	if sk copy "oci:$L:app" "docker://$REG/tls/sk:v1"; then
		fail "ctls.skopeo_verifies: pushed without the CA"
	elif x509_refused; then
		ok ctls.skopeo_verifies
	else
		fail "ctls.skopeo_verifies: $(why 'failed for another reason')"
	fi
	if sk copy --dest-cert-dir "$CD" "oci:$L:app" "docker://$REG/tls/sk:v1"; then
		expect_eq ctls.skopeo_push_digest "$APP" "$(reg_head_digest tls/sk v1)"
	else
		fail "ctls.skopeo_push: $(why 'skopeo copy --dest-cert-dir failed')"
	fi
else
	skip "ctls (skopeo seeds the image the other clients pull)"
	exit 0
fi
# ---- podman: pulls what skopeo pushed, pushes its own copy
PD_DIG=
if have podman; then
	if pd pull --tls-verify=true "$REG/tls/sk:v1"; then
		fail "ctls.podman_verifies: pulled without the CA"
	elif x509_refused; then
		ok ctls.podman_verifies
	else
		fail "ctls.podman_verifies: $(why 'failed for another reason')"
	fi
	if pd pull --cert-dir "$CD" "$REG/tls/sk:v1"; then
		expect_eq ctls.podman_pull_digest "$APP" \
			"$(podman "${PSTORE[@]}" image inspect -f '{{.Digest}}' "$REG/tls/sk:v1" 2>/dev/null)"
		if pd push --cert-dir "$CD" --digestfile "$T/pd.dig" "$REG/tls/sk:v1" "docker://$REG/tls/pd:v1"; then
			PD_DIG=$(cat "$T/pd.dig")
			expect_eq ctls.podman_push_digest "$PD_DIG" "$(reg_head_digest tls/pd v1)"
		else
			fail "ctls.podman_push: $(why 'podman push --cert-dir failed')"
		fi
	else
		fail "ctls.podman_pull: $(why 'podman pull --cert-dir failed')"
	fi
else
	skip ctls.podman
fi
[ -n "$PD_DIG" ] || PD_DIG=$(reg_head_digest tls/sk v1) PD_REPO=tls/sk
PD_REPO=${PD_REPO:-tls/pd}

# ---- containerd: hosts.toml with ca = ..., pulls what podman pushed
CT_DIG=
if have ctr && have containerd; then
	if start_containerd; then
		hosts() { # DIR [CA]
			mkdir -p "$1/$REG"
			{
				printf 'server = "https://%s"\n\n[host."https://%s"]\n' "$REG" "$REG"
				printf '  capabilities = ["pull", "resolve", "push"]\n'
				[ -n "${2:-}" ] && printf '  ca = "%s"\n' "$2"
			} >"$1/$REG/hosts.toml"
		}
		hosts "$T/hosts-noca"
		hosts "$T/hosts" "$TLS_CA"
		if c images pull --hosts-dir "$T/hosts-noca" "$REG/$PD_REPO:v1"; then
			fail "ctls.ctr_verifies: pulled without the CA"
		elif x509_refused; then
			ok ctls.ctr_verifies
		else
			fail "ctls.ctr_verifies: $(why 'failed for another reason')"
		fi
		if c images pull --hosts-dir "$T/hosts" "$REG/$PD_REPO:v1"; then
			expect_eq ctls.ctr_pull_digest "$PD_DIG" "$(image_digest "$REG/$PD_REPO:v1")"
			if c images push --hosts-dir "$T/hosts" "$REG/tls/ctr:v1" "$REG/$PD_REPO:v1"; then
				CT_DIG=$(reg_head_digest tls/ctr v1)
				expect_eq ctls.ctr_push_digest "$PD_DIG" "$CT_DIG"
			else
				fail "ctls.ctr_push: $(why 'ctr images push --hosts-dir failed')"
			fi
		else
			fail "ctls.ctr_pull: $(why 'ctr images pull --hosts-dir failed')"
		fi
	else
		fail "ctls.containerd_start: $(tail_msg "$T/ctd/containerd.log")"
	fi
else
	skip ctls.containerd
fi
[ -n "$CT_DIG" ] || CT_DIG=$PD_DIG CT_REPO=$PD_REPO
CT_REPO=${CT_REPO:-tls/ctr}

# ---- docker: certs.d/berth.test:PORT/ca.crt, through the proxy (above)
stop_proxy() { [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null; return 0; }
drop_certs_d() { [ -n "${CERTS_D:-}" ] && rm -rf "$CERTS_D"; return 0; }
if have docker && have dockerd; then
	NAME=berth.test:$PORT
	cat >"$T/proxy.py" <<'EOF'
# CONNECT proxy for one name: NAME -> 127.0.0.1:PORT; logs each tunnel.
import socket, sys, threading
lport, name, tport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", lport))
srv.listen(64)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve(c):
    c.settimeout(30)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d or len(buf) > 16384:
            c.close()
            return
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    f = head.split(b"\r\n")[0].decode("latin-1").split()
    if len(f) < 2 or f[0] != "CONNECT" or f[1] != name:
        c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        c.close()
        return
    u = socket.create_connection(("127.0.0.1", tport), timeout=30)
    c.settimeout(None)
    u.settimeout(None)
    print("tunnel", name, flush=True)
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    if rest:
        u.sendall(rest)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    pipe(u, c)
print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
EOF
	PPORT=$(free_port)
	python3 "$T/proxy.py" "$PPORT" "$NAME" "$PORT" >"$T/proxy.log" 2>&1 &
	PROXY_PID=$!
	cleanup_fns+=(stop_proxy drop_certs_d)
	for _ in $(seq 1 50); do grep -q ready "$T/proxy.log" && break; sleep 0.1; done
	# dockerd's registry connections go through the proxy; NO_PROXY empty
	if HTTPS_PROXY=http://127.0.0.1:$PPORT HTTP_PROXY='' NO_PROXY='' start_dockerd; then
		CERTS_D=/etc/docker/certs.d/$NAME
		dk() { run "$DOCKER" "$@"; }
		if dk pull "$NAME/$CT_REPO:v1"; then
			fail "ctls.docker_verifies: pulled without certs.d"
		elif x509_refused; then
			ok ctls.docker_verifies
		else
			fail "ctls.docker_verifies: $(why 'failed for another reason')"
		fi
		mkdir -p "$CERTS_D" && cp "$TLS_CA" "$CERTS_D/ca.crt"
		if dk pull "$NAME/$CT_REPO:v1"; then
			got=$(timeout 30 "$DOCKER" image inspect -f '{{range .RepoDigests}}{{.}} {{end}}' "$NAME/$CT_REPO:v1" 2>/dev/null)
			expect_eq ctls.docker_pull_digest "$NAME/$CT_REPO@$CT_DIG" "${got% }"
			dk tag "$NAME/$CT_REPO:v1" "$NAME/tls/dk:v1"
			if dk push "$NAME/tls/dk:v1"; then
				DK_DIG=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\) size.*/\1/p' "$T/last.out" | tail -n 1)
				expect_eq ctls.docker_push_digest "$DK_DIG" "$(reg_head_digest tls/dk v1)"
				sk inspect --cert-dir "$CD" --format '{{.Digest}}' "docker://$REG/tls/dk:v1"
				expect_eq ctls.skopeo_pulls_docker_push "$DK_DIG" "$(tail -n 1 "$T/last.out")"
			else
				fail "ctls.docker_push: $(why 'docker push failed')"
			fi
		else
			fail "ctls.docker_pull: $(why 'docker pull with certs.d failed')"
		fi
		n=$(grep -c '^tunnel' "$T/proxy.log")
		if [ "$n" -gt 0 ]; then ok "ctls.docker_through_proxy ($n tunnels)"; else fail "ctls.docker_through_proxy: no tunnel"; fi
	else
		fail "ctls.dockerd_start: $(grep -E 'level=(fatal|error)' "$T/dockerd.log" | tail -n 1 | tail -c 400)"
	fi
else
	skip ctls.docker
fi

if kill -0 "$BERTH_PID" 2>/dev/null; then ok ctls.berth_running; else fail "ctls.berth_running: died"; fi
n=$(grep -c '"level":"error"' "$T/berth.log")
expect_eq ctls.no_error_logged 0 "$n"
