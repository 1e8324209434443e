#!/bin/sh
# Runs once, when the PostgreSQL container initialises an empty data directory: creates the
# role the API logs in as. It owns nothing and cannot bypass row-level security, so the
# tenant policies bind it; the tables' owner (POSTGRES_USER) creates the schema and grants.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$SHELFWISE_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE shelfwise_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
  PASSWORD :'app_password';
SQL
