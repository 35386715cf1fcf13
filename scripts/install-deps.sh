#!/usr/bin/env bash
# Installs the system packages FastStreams needs, only when missing (idempotent, quiet).
#   libssl-dev: OpenSSL 3 headers and libraries (TLS)
#   openssl, curl, python3: real peers the interoperability tests talk to
set -euo pipefail
missing=()
for pkg in libssl-dev openssl curl python3 procps; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
