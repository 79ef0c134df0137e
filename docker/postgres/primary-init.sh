#!/usr/bin/env bash
# Runs once, when db-primary's data directory is first created (the postgres image runs
# /docker-entrypoint-initdb.d/*.sh as the postgres user, against a temporary local server):
# the role and the physical replication slot db-replica streams through, and the pg_hba.conf
# line that lets that role open a replication connection over the network.
set -euo pipefail

: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set}"
: "${REPLICATION_SLOT:=replica_1}"

psql -v ON_ERROR_STOP=1 --no-psqlrc \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=repl_user="$REPLICATION_USER" \
    --set=repl_password="$REPLICATION_PASSWORD" \
    --set=repl_slot="$REPLICATION_SLOT" <<'SQL'
CREATE ROLE :"repl_user" WITH REPLICATION LOGIN PASSWORD :'repl_password';
SELECT pg_create_physical_replication_slot(:'repl_slot');
SQL

# `all` in the database column does not cover replication connections: name them.
echo "host replication ${REPLICATION_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"

echo "primary-init: role ${REPLICATION_USER} and slot ${REPLICATION_SLOT} ready for the replica"
