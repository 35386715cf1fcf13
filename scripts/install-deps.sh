#!/usr/bin/env bash
# Installs what FastStreams' tests and CI need, only when missing (idempotent, quiet).
#   libssl-dev: OpenSSL 3 headers and libraries (TLS)
#   openssl, curl, python3, gnutls-bin: real peers the interoperability tests talk to
#   python3-pip: to install the Python peers and the TLS scanner below
#   tlslite-ng (PyPI): an independent, pure-Python TLS implementation (interop peer)
#   sslyze (PyPI): the TLS scanner scripts/tls-scan.sh runs against our servers
set -euo pipefail
missing=()
for pkg in libssl-dev openssl curl python3 procps gnutls-bin; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# python3 -m pip, for whichever python3 is first on PATH (the tests run that one).
if ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3-pip)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python_missing=()
python3 -c "import tlslite" 2>/dev/null || python_missing+=("tlslite-ng==0.8.2")
python3 -c "import sslyze" 2>/dev/null || python_missing+=("sslyze==6.3.1")
if [ ${#python_missing[@]} -gt 0 ]; then
    echo "installing (pip): ${python_missing[*]}"
    flags=(-q --disable-pip-version-check)
    # Debian's own python3 refuses system-wide installs (PEP 668) unless told.
    if python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
        flags+=(--break-system-packages)
    fi
    python3 -m pip install "${flags[@]}" "${python_missing[@]}"
fi
