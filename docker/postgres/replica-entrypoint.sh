#!/usr/bin/env bash
# db-replica's entrypoint. On the first start (no data directory yet) it clones db-primary
# with `pg_basebackup -R -X stream`, which also writes standby.signal and primary_conninfo;
# then, every time, it hands over to the postgres image's own entrypoint, which finds an
# existing data directory, skips initdb and starts the server as a hot standby.
#
# The clone goes to "$PGDATA.partial" first and is renamed when complete, so a start that is
# interrupted half-way is simply retried next time instead of leaving a broken data directory.
set -euo pipefail

: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
: "${PRIMARY_HOST:=db-primary}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set}"
: "${REPLICATION_SLOT:=replica_1}"

as_postgres=()
if [ "$(id -u)" = 0 ]; then
    as_postgres=(gosu postgres)
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    partial="$PGDATA.partial"
    parent="$(dirname "$PGDATA")"
    mkdir -p "$parent"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$parent"
    fi
    "${as_postgres[@]}" rm -rf "$partial"

    echo "replica: waiting for the primary at ${PRIMARY_HOST}:${PRIMARY_PORT}"
    until pg_isready --quiet --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" \
        --username="$REPLICATION_USER" --dbname=postgres; do
        sleep 1
    done

    echo "replica: cloning the primary into ${PGDATA} (pg_basebackup -R -X stream)"
    "${as_postgres[@]}" env PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup \
        --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" --username="$REPLICATION_USER" \
        --pgdata="$partial" --wal-method=stream --write-recovery-conf \
        --slot="$REPLICATION_SLOT" --checkpoint=fast --no-password
    chmod 0700 "$partial"
    mv "$partial" "$PGDATA"
    echo "replica: clone complete"
fi

exec docker-entrypoint.sh "$@"
