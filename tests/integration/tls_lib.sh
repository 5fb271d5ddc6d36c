# shellcheck shell=bash
# HTTPS fixture for integration tests (source after lib.sh): a test CA
# made with openssl (root -> intermediate -> leaves for 127.0.0.1 and
# localhost), and berth started with a certificate.
#
# tls_make_ca DIR: DIR/ca.crt (the root, what clients trust) and the
#   intermediate that signs the leaves (names: TLS_SAN, by default
#   IP:127.0.0.1,DNS:localhost).
# tls_make_leaf DIR NAME ec|rsa: DIR/NAME.key and DIR/NAME.crt (the leaf
#   then the intermediate, as cert-manager writes tls.crt); DIR/NAME.leaf
#   is the leaf alone.
# tls_start_berth ARGS...: berth on a free port (BERTH_PORT to choose it)
#   with ARGS (the certificate flags, a config file...); sets PORT, REG
#   and URL (https://127.0.0.1:PORT); health checked with the test CA.
# tls_fp [SERVERNAME]: SHA-256 fingerprint of the leaf a new handshake with
#   127.0.0.1:$PORT gets, empty when the handshake fails.
# tls_cert_fp FILE: the fingerprint of the first certificate in FILE.

tls_make_ca() {
	local d=$1
	mkdir -p "$d" || return 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj /CN=berth-test-root \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/int.key" -out "$d/int.csr" -subj /CN=berth-test-intermediate \
		2>/dev/null || return 1
	printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$d/int.ext"
	openssl x509 -req -in "$d/int.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -out "$d/int.crt" -days 2 -extfile "$d/int.ext" \
		2>/dev/null || return 1
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
		"${TLS_SAN:-IP:127.0.0.1,DNS:localhost}" >"$d/leaf.ext"
}

tls_make_leaf() {
	local d=$1 n=$2 kind=$3 opt
	case $kind in
	ec) opt=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	rsa) opt=(-newkey rsa:2048) ;;
	*) return 1 ;;
	esac
	openssl req "${opt[@]}" -nodes -keyout "$d/$n.key" -out "$d/$n.csr" \
		-subj /CN=127.0.0.1 2>/dev/null || return 1
	openssl x509 -req -in "$d/$n.csr" -CA "$d/int.crt" -CAkey "$d/int.key" \
		-CAcreateserial -out "$d/$n.leaf" -days 2 -extfile "$d/leaf.ext" \
		2>/dev/null || return 1
	cat "$d/$n.leaf" "$d/int.crt" >"$d/$n.crt"
}

tls_start_berth() {
	PORT=${BERTH_PORT:-$(free_port)}
	REG=127.0.0.1:$PORT
	URL=https://$REG
	mkdir -p "$T/data"
	"$BERTH_BIN" serve --listen "$REG" --data "$T/data" "$@" >>"$T/berth.log" 2>&1 &
	BERTH_PID=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null --cacert "$TLS_CA" "$URL/healthz" 2>/dev/null && return 0
		kill -0 "$BERTH_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "berth did not start with TLS; log:" >&2
	cat "$T/berth.log" >&2
	return 1
}

tls_cert_fp() {
	openssl x509 -noout -fingerprint -sha256 -in "$1" 2>/dev/null | cut -d= -f2
}

tls_fp() {
	timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername "${1:-localhost}" \
		</dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null |
		cut -d= -f2
}
