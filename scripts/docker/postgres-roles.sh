#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d).
# The owner role owns the schema and runs migrations (`synthgate init`); the application role
# is what the web app, workers and beat connect as. `synthgate init` grants the application
# role INSERT and SELECT only on the audit log and the ledger (docs/tamper-evidence.md).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner_password="$SYNTHGATE_OWNER_PASSWORD" -v app_password="$SYNTHGATE_APP_PASSWORD" <<'SQL'
CREATE ROLE synthgate_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE synthgate_app LOGIN PASSWORD :'app_password';
CREATE DATABASE synthgate OWNER synthgate_owner;
\connect synthgate
ALTER SCHEMA public OWNER TO synthgate_owner;
SQL
