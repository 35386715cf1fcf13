#!/usr/bin/env bash
# Runs the test suite under AddressSanitizer and under ThreadSanitizer (each in its own build
# folder, .build-asan / .build-tsan) and prints how long each took.
#
#   scripts/sanitizers.sh [asan|tsan|all]     default: all
#
# The sanitizer runtimes come with the Swift toolchain (lib/clang/*/lib/linux); no package needed.
# ASan: any report aborts the test process, so the run fails. Leak checking is off: the suite's
# shared loops, TLS contexts and test-library state live until exit by design.
# TSan: every report fails the run (exit code 66), except the classes in scripts/tsan.supp, each
# a blind spot of the toolchain reproduced by a program in scripts/tsan-repro/.
# Sanitizer builds run several times slower: FASTSTREAMS_TEST_TIME_SCALE stretches the suite's
# bounded waits (they only stop a failing test from hanging; no test asserts speed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# A crash must be reported by the sanitizer, not by the Swift runtime's backtracer (which reads
# raw stack memory: ASan reports that, and the two can hang each other).
export SWIFT_BACKTRACE=enable=no

run() {
    local name=$1 flag=$2 scale=$3
    local start
    start=$(date +%s)
    mkdir -p ".build-$name"
    if ! swift build --build-tests -Xswiftc "-sanitize=$flag" --scratch-path ".build-$name" >".build-$name/build.log" 2>&1; then
        grep -E "error" ".build-$name/build.log" >&2 || tail -20 ".build-$name/build.log" >&2
        exit 1
    fi
    local built=$(( $(date +%s) - start ))
    # Two passes: the suites that run our example servers as child processes (each one a
    # sanitizer process of its own, answering within client timeouts), the interop features (gnutls-cli
    # --resume under TLS 1.3 resumed only when our sanitizer-slowed server was not competing with the
    # whole parallel run) and the backpressure suite (it fills kernel socket buffers and waits for
    # the writer to stall, which under a sanitizer and a full parallel run took
    # longer than its bounds) apart from the rest, so that they do not compete with all of it.
    local apart="InteropFeatureTests|FileServerTests|EchoServerProcessTests|ChatServerTests|RPCTests|HTTPServerClientTests|HTTPServerLifecycleTests|HTTPServerMalformedTests|FDLimitTests|BackpressureTests" status=0
    FASTSTREAMS_TEST_TIME_SCALE=$scale swift test --skip-build --scratch-path ".build-$name" --skip "$apart" || status=1
    FASTSTREAMS_TEST_TIME_SCALE=$scale swift test --skip-build --scratch-path ".build-$name" --filter "$apart" || status=1
    echo "sanitizers: $name: build ${built} s, tests $(( $(date +%s) - start - built )) s"
    [ $status -eq 0 ] || failed+=("$name")
}

failed=()

# Suppressions match symbol names: TSan needs llvm-symbolizer, which the toolchain ships.
symbolizer=$(dirname "$(readlink -f "$(command -v swift)")")/llvm-symbolizer
[ -x "$symbolizer" ] || symbolizer=$(command -v llvm-symbolizer || true)
[ -n "$symbolizer" ] || { echo "sanitizers: no llvm-symbolizer" >&2; exit 1; }

case "${1:-all}" in
    asan|all) ASAN_OPTIONS=detect_leaks=0:handle_sigill=1 run asan address 4 ;;&
    tsan|all) TSAN_OPTIONS="suppressions=$PWD/scripts/tsan.supp:history_size=4:external_symbolizer_path=$symbolizer" run tsan thread 6 ;;
    asan|tsan|all) ;;
    *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
if [ ${#failed[@]} -gt 0 ]; then
    echo "sanitizers: FAILED under ${failed[*]}" >&2
    exit 1
fi
