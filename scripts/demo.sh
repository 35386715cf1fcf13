#!/usr/bin/env bash
# The echo demo: starts Examples/EchoServer, runs Examples/EchoClient against it, prints round trips/s.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product EchoServer
swift build -c release --product EchoClient
bin=$(swift build -c release --show-bin-path)
log=$(mktemp)
"$bin/EchoServer" --port 0 >"$log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$log" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log")
echo "TCP, EchoServer on port $port:"
"$bin/EchoClient" --port "$port" --size 256 --count 100000
"$bin/EchoClient" --port "$port" --size 256 --count 2000 --connections 100
