#!/usr/bin/env bash
# The HTTP benchmark: wrk against /plaintext and /json on Examples/HTTPServer (FastStreams), a
# minimal NIOHTTP1 server and Hummingbird 2, each a release build in its own process.
#
#   Benchmarks/HTTP/run.sh           full run (10 s cells), writes docs/http-benchmarks.{md,json,png}
#   Benchmarks/HTTP/run.sh --quick   CI smoke test (2 s cells, fewer of them, every answer checked,
#                                    no speed asserted); writes under Benchmarks/.build/quick/
#
# Other arguments go to wrk_bench.py (e.g. `--seconds 5 --connections 64 --transports http`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(dirname "$here")"
root="$(dirname "$bench")"

quick=0
for arg in "$@"; do [[ "$arg" == "--quick" ]] && quick=1; done

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
command -v openssl >/dev/null || missing+=(openssl)
command -v taskset >/dev/null || missing+=(util-linux)
[[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
if [[ ${#missing[@]} -gt 0 ]]; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p "$bench/.build"
log="$bench/.build/http-build.log"
echo "== building HTTPServer, NIOHTTP1Bench, HummingbirdBench (release)" >&2
if ! { swift build -c release --package-path "$root" --product HTTPServer \
       && swift build -c release --package-path "$bench" --product NIOHTTP1Bench \
       && swift build -c release --package-path "$bench" --product HummingbirdBench; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "build failed" >&2
    exit 1
fi
fs="$(swift build -c release --package-path "$root" --show-bin-path)/HTTPServer"
bin="$(swift build -c release --package-path "$bench" --show-bin-path)"

# A throw-away certificate for the HTTPS cells.
tls="$bench/.build/http-tls"
mkdir -p "$tls"
if [[ ! -f "$tls/cert.pem" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
fi

if [[ $quick -eq 1 ]]; then out="$bench/.build/quick"; else out="$root/docs"; fi
exec python3 "$here/wrk_bench.py" --server "faststreams=$fs" --server "nio-http1=$bin/NIOHTTP1Bench" \
    --server "hummingbird=$bin/HummingbirdBench" --cert "$tls/cert.pem" --key "$tls/key.pem" --output "$out" "$@"
