#!/usr/bin/env bash
# Builds the benchmark (release) and runs it: FastStreams vs SwiftNIO vs raw C epoll.
#
#   Benchmarks/run.sh            full run (2 s per cell, 3 repetitions, 10,000 idle connections),
#                                writes docs/benchmarks.md, docs/benchmarks.json, docs/benchmarks.png
#   Benchmarks/run.sh --quick    CI smoke test: short cells and small counts, every echoed byte
#                                checked, no speed asserted; exits non-zero on any mismatch or
#                                failure. Writes its report under Benchmarks/.build/quick/.
#
# It also makes Benchmarks/.build/python-venv (Python/setup-venv.sh: aiofastnet + uvloop from PyPI)
# for the optional Python contender; if that fails, its cells read "skipped" and the run goes on.
#
# Then it runs the HTTP benchmark, Benchmarks/HTTP/run.sh (with --quick when given; skipped with
# FSB_SKIP_HTTP=1): wrk against Examples/HTTPServer, NIOHTTP1 and Hummingbird 2.
#
# Any other arguments go to the FastStreamsBench executable (see `FastStreamsBench run --help`),
# e.g. `--seconds 5`, `--cells pingpong-256`, `--contenders faststreams,c-epoll`, `--output DIR`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

quick=0
for arg in "$@"; do [[ "$arg" == "--quick" ]] && quick=1; done

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
    if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# OpenSSL headers for FastStreamsTLS; gnuplot for the chart.
if ! [[ -f /usr/include/openssl/ssl.h ]]; then apt_install libssl-dev; fi
if ! command -v gnuplot >/dev/null; then apt_install gnuplot-nox; fi
# The TLS cells' throw-away certificate is made with the openssl command.
if ! command -v openssl >/dev/null; then apt_install openssl; fi

echo "== building (release)" >&2
mkdir -p "$here/.build"
log="$here/.build/build.log"
if ! swift build -c release --package-path "$here" >"$log" 2>&1; then
    cat "$log" >&2
    echo "build failed" >&2
    exit 1
fi
bin="$(swift build -c release --package-path "$here" --show-bin-path)/FastStreamsBench"

# The optional Python contender (py-aiofastnet): a venv with aiofastnet + uvloop. Never fatal:
# without the venv that contender's cells read "skipped".
echo "== python venv (aiofastnet + uvloop, optional)" >&2
if ! bash "$here/Python/setup-venv.sh" >"$here/.build/python-venv.log" 2>&1; then
    echo "   failed (see Benchmarks/.build/python-venv.log): the py-aiofastnet cells will be skipped" >&2
fi

# The LD_PRELOAD malloc counter for the allocation cells.
counter="$here/.build/libfsb_malloc_counter.so"
cc -O2 -shared -fPIC -o "$counter" "$here/Tools/malloc_counter.c"

if [[ $quick -eq 1 ]]; then
    out="$here/.build/quick"
else
    out="$root/docs"
fi
has_output=0
for arg in "$@"; do [[ "$arg" == "--output" ]] && has_output=1; done
extra=()
[[ $has_output -eq 0 ]] && extra+=(--output "$out")

echo "== running $bin run $* ${extra[*]}" >&2
"$bin" run --malloc-counter "$counter" "${extra[@]}" "$@"

# The HTTP benchmark (wrk against three servers; HTTP/run.sh), unless FSB_SKIP_HTTP=1.
if [[ "${FSB_SKIP_HTTP:-0}" != 1 ]]; then
    echo "== HTTP benchmark (Benchmarks/HTTP/run.sh)" >&2
    if [[ $quick -eq 1 ]]; then bash "$here/HTTP/run.sh" --quick; else bash "$here/HTTP/run.sh"; fi
fi
