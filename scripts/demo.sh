#!/usr/bin/env bash
# The echo demo: starts Examples/EchoServer (TCP, then TLS with a throw-away certificate), runs
# Examples/EchoClient against each, and prints round trips per second.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product EchoServer
swift build -c release --product EchoClient
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_server() {  # args: EchoServer flags; sets $server and $port
    "$bin/EchoServer" --port 0 "$@" >"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do grep -q '^listening on' "$work/server.log" && break; sleep 0.1; done
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/server.log")
}
stop_server() { kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=; }

start_server
echo "== TCP (EchoServer on port $port)"
"$bin/EchoClient" --port "$port" --size 256 --count 100000
"$bin/EchoClient" --port "$port" --size 256 --count 2000 --connections 100
stop_server

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
start_server --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
echo "== TLS (EchoServer on port $port, throw-away certificate)"
"$bin/EchoClient" --port "$port" --tls --ca "$work/cert.pem" --size 256 --count 50000
"$bin/EchoClient" --port "$port" --tls --ca "$work/cert.pem" --size 256 --count 500 --connections 100
stop_server
