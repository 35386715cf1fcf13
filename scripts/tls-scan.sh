#!/usr/bin/env bash
# Scans the TLS that EchoServer and FileServer serve with the library's default configuration
# (RSA and ECDSA certificates respectively) with sslyze: Mozilla's "intermediate" profile
# (--mozilla_config=intermediate: versions, cipher suites, curves, certificate), then the
# vulnerability scans (scripts/tls-scan-check.py). Fails on any finding. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --product EchoServer >/dev/null
swift build --product FileServer >/dev/null
bin="$(swift build --show-bin-path)"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "${TLS_SCAN_KEEP:-}" ]; then echo "tls-scan: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A private CA (handed to sslyze as its trust store) and two 90-day server certificates.
(
    cd "$work"
    cat > ext.cnf <<'CNF'
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
CNF
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
        -subj "/CN=FastStreams scan CA" -days 90 -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign" 2>/dev/null
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ecdsa.key 2>/dev/null
    for kind in rsa ecdsa; do
        openssl req -new -key "$kind.key" -subj "/CN=localhost" -out "$kind.csr" 2>/dev/null
        openssl x509 -req -in "$kind.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 -sha256 \
            -extfile ext.cnf -extensions server -out "$kind.pem" 2>/dev/null
    done
    mkdir www && echo "scan" > www/index.html
)

# Starts a server in the background and waits for its "listening on HOST:PORT" line; sets `port`.
# (Not called as `$(start ...)`: a command substitution is a subshell, where `pids+=` is lost and
# the cleanup trap then left both servers running after every scan.)
start() {
    local log="$1"; shift
    "$@" > "$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do
        if grep -q "^listening on " "$log"; then
            port="$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log" | head -n 1)"
            return 0
        fi
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.05
    done
    echo "tls-scan: $* did not start:" >&2
    cat "$log" >&2
    return 1
}
start "$work/echo.log" "$bin/EchoServer" --host 127.0.0.1 --port 0 \
    --tls-cert "$work/rsa.pem" --tls-key "$work/rsa.key"
echo_port=$port
start "$work/file.log" "$bin/FileServer" --root "$work/www" --host 127.0.0.1 --port 0 \
    --tls-cert "$work/ecdsa.pem" --tls-key "$work/ecdsa.key"
file_port=$port

echo "tls-scan: sslyze $(python3 -c 'import importlib.metadata as m; print(m.version("sslyze"))')" \
     "(nassl $(python3 -c 'import importlib.metadata as m; print(m.version("nassl"))')), python $(python3 -c 'import platform; print(platform.python_version())')"
echo "tls-scan: targets EchoServer (RSA 2048) 127.0.0.1:$echo_port, FileServer (ECDSA P-256) 127.0.0.1:$file_port"
echo "tls-scan: checks: Mozilla \"intermediate\" compliance (TLS versions, cipher suites, curves, certificate);" \
     "SSL 2/3, TLS 1.0/1.1 refused; TLS 1.2 ECDHE + AEAD only; Heartbleed; CCS injection; ROBOT;" \
     "renegotiation; compression; TLS_FALLBACK_SCSV; extended master secret; 0-RTT"
status=0
python3 -m sslyze --mozilla_config=intermediate --early_data --certinfo_ca_file "$work/ca.pem" --json_out "$work/scan.json" \
    "127.0.0.1:$echo_port" "127.0.0.1:$file_port" > "$work/sslyze.txt" 2>&1 || status=$?
sed -n '/COMPLIANCE AGAINST/,$p' "$work/sslyze.txt"
if [ "$status" -ne 0 ]; then
    echo "tls-scan: sslyze reports the servers are not compliant with Mozilla's intermediate profile (exit $status):"
    cat "$work/sslyze.txt"
fi
echo "tls-scan: vulnerability scans:"
python3 scripts/tls-scan-check.py "$work/scan.json" || status=1
if [ "$status" -ne 0 ]; then
    echo "tls-scan: FAILED"
    exit 1
fi
echo "tls-scan: passed"
