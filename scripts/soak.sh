#!/usr/bin/env bash
# Soak (suite "Soak"): connection churn (TCP and TLS, clean close and reset) and a long echo under
# load, with the process's descriptors (/proc/self/fd) and RSS sampled; both must end flat.
#   scripts/soak.sh          CI form: 4,000 churns, 30 s of echo on 16 connections (~2 minutes)
#   scripts/soak.sh --full   100,000 churns, 5 minutes of echo on 32 connections
# The suite runs alone (no other test moves the figures) from the normal debug test build; in a
# plain `swift test` it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=quick
case "${1:-}" in
    "") ;;
    --full) mode=full ;;
    *) echo "usage: scripts/soak.sh [--full]" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
swift build --build-tests
bin="$(swift build --show-bin-path)/FastStreamsPackageTests.xctest"
FASTSTREAMS_SOAK=$mode "$bin" --testing-library swift-testing --filter Soak
