#!/usr/bin/env bash
# Makes Benchmarks/.build/python-venv for the optional Python contender (py-aiofastnet):
# `python3 -m venv` + `pip install -r Benchmarks/Python/requirements.txt`, then an import check.
# On success it copies requirements.txt into the venv as .fsb-requirements.txt, the stamp the
# contender looks for (and the next run skips the install while it matches). On any failure it
# removes the venv and exits non-zero; run.sh carries on and the contender's cells read "skipped".
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$here/.build/python-venv"
req="$here/Python/requirements.txt"
stamp="$venv/.fsb-requirements.txt"
check='import aiofastnet, uvloop; print("aiofastnet", aiofastnet.__version__, "uvloop", uvloop.__version__, "OpenSSL libs", aiofastnet.OPENSSL_DYN_LIBS)'

if [[ -f "$stamp" ]] && cmp -s "$req" "$stamp" && "$venv/bin/python" -c "$check"; then
    exit 0
fi
fail() { echo "python venv: $*" >&2; rm -rf "$venv"; exit 1; }
rm -rf "$venv"
command -v python3 >/dev/null || fail "no python3"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv" || fail "python3 -m venv failed"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q --timeout 30 --retries 2 -r "$req" \
    || fail "pip install -r $req failed"
"$venv/bin/python" -c "$check" || fail "aiofastnet or uvloop does not import"
cp "$req" "$stamp"
