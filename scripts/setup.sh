#!/usr/bin/env bash
# Set up a fresh machine for Synthgate: system packages, the virtual environment in .venv/
# (torch first, then the pinned set), and the local services the tests use. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# --- system packages (WeasyPrint needs Pango; fonts for the PDFs; Chromium for the browser tests) ---
need=()
for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core shared-mime-info chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    log "installing system packages: ${need[*]}"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
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
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages (torch 2.13.0 CPU first, then the pinned set)"
    .venv/bin/pip install -q -c constraints.txt torch==2.13.0
    .venv/bin/pip install -q -c constraints.txt -r requirements/test.txt
    .venv/bin/pip install -q --no-deps -e .
    .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else "torch changed: " + torch.__version__)'
    echo "$want" > "$stamp"
fi
echo "setup: .venv ready ($(.venv/bin/python --version))"
