#!/usr/bin/env bash
# Run the whole test suite against this machine's real PostgreSQL and Redis. On a fresh clone it
# sets up first (.venv, Debian packages, PostgreSQL and Redis when missing), so it can be the
# first command typed. Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/governance -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/synthgate}"
export SYNTHGATE_TEST_BROKER_URL="${SYNTHGATE_TEST_BROKER_URL:-redis://127.0.0.1:6379/15}"
bash scripts/setup.sh --services
bash scripts/services.sh
exec .venv/bin/pytest -q "$@"
