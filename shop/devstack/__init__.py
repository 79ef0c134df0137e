"""The local stack: a PostgreSQL primary, a streaming replica, Redis, the stub payment gateway
and the stub shipping carriers, all under `.stack/`.

Plain Python (standard library only; psycopg and redis are used lazily when present), so it
runs before Django can start:

    python -m shop.devstack up | down [--purge] | status | env
    python manage.py devstack up | down [--purge] | status | env

Everything lives in the git-ignored state folder (`<project>/.stack`, or `$PERFSHOP_STACK_DIR`):

    .stack/pg-primary/   primary data directory (owned by `postgres` when run as root, mode 0700)
    .stack/pg-replica/   replica made with `pg_basebackup -R -X stream` over slot perfshop_replica
    .stack/run/          Unix sockets of both PostgreSQL servers
    .stack/log/          pg-primary.log, pg-replica.log
    .stack/redis/        redis.pid, redis.log
    .stack/gateway/      gateway.pid, gateway.log (shop/payment_gateway_stub.py)
    .stack/carriers/     carriers.pid, carriers.log (shop/carrier_stub.py, the three carriers)

Servers listen on 127.0.0.1 only, on the ports in `config.env`. When DATABASE_URL is set, no
local PostgreSQL is started (the URL is only checked); likewise DATABASE_REPLICA_URL for the
replica, REDIS_URL for Redis, PAYMENT_GATEWAY_URL for the gateway and CARRIER_*_URL for the
carriers.

The modules, each depending only on the ones above it:

    layout     the Stack (paths, ports, the pg_root fallback), shared constants, DevstackError
    process    running commands (as `postgres` when root), pids, waiting, the state-folder lock
    discovery  PostgreSQL binaries (PgToolchain) and redis-server; the search lists
               PG_BIN_GLOBS, PG_PACKAGES and REDIS_PACKAGES, and PG_EXTENSIONS (what a
               PostgreSQL build must ship), live (and are patched) there
    postgres   initdb, postgresql.conf, start/stop, role/database/slot, the pg_basebackup replica
    redis      redis-server start/stop, PING over RESP
    gateway    the stub payment gateway: a detached `python -m shop.payment_gateway_stub`
    carriers   the stub carriers: a detached `python -m shop.carrier_stub rapid:17181:100 ...`
    external   checking DATABASE_URL / DATABASE_REPLICA_URL / REDIS_URL servers instead
    control    up, down, status, format_status, env_lines
    cli        the command line (`__main__` runs it)
"""

from .cli import main
from .control import down, env_lines, format_status, status, up
from .discovery import INSTALL_HINT, PG_TOOLS, PgToolchain, find_pg_bindir, find_redis_server
from .layout import (
    HOST,
    LOCAL_DB_NAME,
    LOCAL_DB_USER,
    MARKER_FILE,
    PG_SUPERUSER,
    PG_SYSTEM_USER,
    PROJECT_ROOT,
    REPLICATION_SLOT,
    DevstackError,
    Stack,
)
from .redis import redis_ping

__all__ = [
    "HOST",
    "INSTALL_HINT",
    "LOCAL_DB_NAME",
    "LOCAL_DB_USER",
    "MARKER_FILE",
    "PG_SUPERUSER",
    "PG_SYSTEM_USER",
    "PG_TOOLS",
    "PROJECT_ROOT",
    "REPLICATION_SLOT",
    "DevstackError",
    "PgToolchain",
    "Stack",
    "down",
    "env_lines",
    "find_pg_bindir",
    "find_redis_server",
    "format_status",
    "main",
    "redis_ping",
    "status",
    "up",
]
