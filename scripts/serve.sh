#!/usr/bin/env bash
# One command for a newcomer: set up, fill an empty database with the demo, and serve the
# dashboard on the embedded default (SQLite, in-process jobs, files under var/ or
# $SYNTHGATE_DATA_DIR). Usage: bash scripts/serve.sh [ADDRESS:PORT]   (default 127.0.0.1:8000)
set -euo pipefail
cd "$(dirname "$0")/.."
ADDRESS="${1:-127.0.0.1:8000}"

bash scripts/setup.sh
# The embedded default: no broker (jobs run in the web process), SQLite unless DATABASE_URL is set.
unset CELERY_BROKER_URL
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
# A served dashboard never shows Django's debug pages (they list the URLconf and settings).
export DJANGO_DEBUG=false
SG=.venv/bin/synthgate

printf '\n== preparing the database and the signing key\n'
"$SG" init >/dev/null
DEMO_PEOPLE='["steward", "alice", "bob", "carol", "dana"]'
if "$SG" shell -c 'from django.contrib.auth import get_user_model; import sys; sys.exit(0 if get_user_model().objects.exists() else 3)' >/dev/null 2>&1; then
    echo "users exist: keeping the database as it is"
    # Name the demo people on the login page only if this is the demo's database.
    if "$SG" shell -c "from django.contrib.auth import get_user_model; import sys; sys.exit(0 if get_user_model().objects.filter(username__in=$DEMO_PEOPLE).count() == 5 else 3)" >/dev/null 2>&1; then
        export SYNTHGATE_DEMO=true
    fi
else
    export SYNTHGATE_DEMO=true
    printf '\n== empty database: running the demo (five people, the adult sample, one request generated)\n'
    # The dashboard is worth starting even if the demo stops part-way (its people exist by then).
    "$SG" demo || printf '\n!! the demo stopped early (see above); the dashboard starts anyway\n'
fi

printf '\n== collecting static files\n'
"$SG" collectstatic --noinput -v 0

printf '\nSynthgate dashboard: http://%s/\n' "$ADDRESS"
[ "${SYNTHGATE_DEMO:-}" = true ] && cat <<INFO
Log in as one of the demo people (password: <name>-synthgate):
  steward / steward-synthgate   data steward: registers datasets, releases, revokes
  alice   / alice-synthgate     requester: files requests, starts jobs, downloads
  bob     / bob-synthgate       approver
  carol   / carol-synthgate     approver (four-eyes: two approvals for external-research)
  dana    / dana-synthgate      auditor (read-only, compliance reports)
INFO
printf 'Stop with Ctrl-C.\n\n'
# --noreload: generation jobs run in background threads of this process; a reload would end them.
exec "$SG" runserver --noreload "$ADDRESS"
