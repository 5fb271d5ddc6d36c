# The Kubernetes side of the `--pins-from-kubernetes` tests (source after
# lib.sh): a test CA with a certificate for 127.0.0.1 (and another CA that
# did not sign it), service-account directories, and the stand-in API
# server tests/integration/fake_kube_api.py on a free port.

# kube_certs: $T/pki/{ca,apiserver,other-ca}.{crt,key}; 0 or 1 (openssl's
# output in $T/openssl.log). The server certificate names 127.0.0.1 and
# FAKE_KUBE_ADDR when set.
kube_certs() {
	local d=$T/pki rc
	mkdir -p "$d" && cd "$d" || return 1
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout ca.key -out ca.crt -days 2 -subj "/CN=kubernetes-test-ca" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" &&
			printf '%s\n' "subjectAltName=IP:127.0.0.1${FAKE_KUBE_ADDR:+,IP:$FAKE_KUBE_ADDR},DNS:kubernetes.default.svc" \
				'basicConstraints=CA:FALSE' 'extendedKeyUsage=serverAuth' >ext.cnf &&
			openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key \
				-CAcreateserial -days 2 -extfile ext.cnf -out apiserver.crt &&
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-keyout other-ca.key -out other-ca.crt -days 2 -subj "/CN=another-ca"
	} >"$T/openssl.log" 2>&1
	rc=$?
	cd - >/dev/null || return 1
	return $rc
}

# kube_rand: a random token part.
kube_rand() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }

# kube_sa NAME TOKEN CA: a service-account directory $T/NAME (no token
# file when TOKEN is empty), for BERTH_KUBE_SA_DIR.
kube_sa() {
	mkdir -p "$T/$1"
	[ -n "$2" ] && printf '%s' "$2" >"$T/$1/token"
	cp "$3" "$T/$1/ca.crt"
}

KUBE_PID=
kube_stop() {
	[ -n "$KUBE_PID" ] && kill "$KUBE_PID" 2>/dev/null && wait "$KUBE_PID" 2>/dev/null
	KUBE_PID=
}
cleanup_fns+=(kube_stop)

# kube_start FIXDIR TOKEN [PODS_ONLY_TOKEN BROKEN_TOKEN]: the stand-in API
# on a free port (KPORT; retried on another when it was taken meanwhile),
# requests logged to $T/kube.log. 0 when it answers.
kube_start() {
	local i
	for i in 1 2 3; do
		KPORT=$(free_port)
		python3 "$(dirname "${BASH_SOURCE[0]}")/fake_kube_api.py" "$KPORT" "$1" \
			"$T/pki/apiserver.crt" "$T/pki/apiserver.key" "$T/kube.log" "${@:2}" \
			>>"$T/kube.err" 2>&1 &
		KUBE_PID=$!
		for _ in $(seq 1 50); do
			curl -s -o /dev/null --max-time 2 --cacert "$T/pki/ca.crt" "https://${FAKE_KUBE_ADDR:-127.0.0.1}:$KPORT/readyz" && return 0
			kill -0 "$KUBE_PID" 2>/dev/null || break
			sleep 0.1
		done
		kube_stop
	done
	return 1
}
