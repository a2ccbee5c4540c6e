#!/usr/bin/env bash
# Set up a fresh machine for Synthgate: system packages, the virtual environment in .venv/
# (torch first, then the pinned set). With --services (as `scripts/test.sh` calls it), also the
# PostgreSQL and Redis servers the tests use, from Debian packages, when they are missing.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_SERVICES=0
[ "${1:-}" = "--services" ] && WITH_SERVICES=1

log() { printf '\n== %s\n' "$*"; }

# --- system packages (WeasyPrint needs Pango; fonts for the PDFs; Chromium for the browser tests;
#     a Java runtime for the Spark engine's local session) ---
need=()
packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core shared-mime-info chromium openjdk-17-jre-headless)
# The test services: PostgreSQL (it brings psql) and Redis, only where the tests will run.
[ "$WITH_SERVICES" -eq 1 ] && packages+=(postgresql redis-server)
for pkg in "${packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
fresh_postgres=0
if [ "${#need[@]}" -gt 0 ]; then
    log "installing system packages: ${need[*]}"
    [[ " ${need[*]} " == *" postgresql "* ]] && fresh_postgres=1
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if [ "$fresh_postgres" -eq 1 ]; then
    # A cluster we just installed: let the tests connect as `postgres` over local TCP without a
    # password (a development machine's test server; production settings never use this).
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
    log "trusting local connections in $hba (test server installed just now)"
    $SUDO sed -i -E 's/^(local|host)(\s+all\s+\S+\s+(127\.0\.0\.1\/32|::1\/128)?\s*)(peer|md5|scram-sha-256)$/\1\2trust/' "$hba"
fi

# --- Python 3.11 virtual environment ---------------------------------------------------------
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            PYTHON="$candidate"; break
        fi
    done
fi
[ -n "$PYTHON" ] || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || { log "creating .venv with $PYTHON"; "$PYTHON" -m venv .venv; }

# Reinstall only when the pinned files change.
stamp=.venv/.synthgate-installed
want=$(cat constraints.txt requirements/*.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -L .venv ]; then
    # A linked .venv is an environment shared with other checkouts: whoever owns it installs.
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] || echo "setup: .venv is a shared link; pinned files differ from its install (not reinstalling)"
elif [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages (torch 2.13.0 CPU first, then the pinned set)"
    .venv/bin/pip install -q -c constraints.txt torch==2.13.0
    .venv/bin/pip install -q -c constraints.txt -r requirements/test.txt
    .venv/bin/pip install -q --no-deps -e .
    .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else "torch changed: " + torch.__version__)'
    echo "$want" > "$stamp"
fi
echo "setup: .venv ready ($(.venv/bin/python --version))"
