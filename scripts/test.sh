#!/usr/bin/env bash
# Runs the FastStreams test suite from a fresh clone: installs what it needs, builds, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# 1,000-connection tests need a few thousand descriptors.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
swift build --build-tests
swift test --skip-build "$@"
