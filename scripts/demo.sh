#!/usr/bin/env bash
# Set up (if needed) and run the governed path end to end on the embedded default:
# SQLite, in-process tasks, the bundled adult sample. Starts from an empty data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${SYNTHGATE_DATA_DIR:-}" ]; then
    # The default demo directory is recreated on every run; a directory you name is kept.
    export SYNTHGATE_DATA_DIR="$PWD/var/demo"
    rm -rf "$SYNTHGATE_DATA_DIR"
fi
unset DATABASE_URL CELERY_BROKER_URL
exec .venv/bin/synthgate demo "$@"
