"""The local stack: a PostgreSQL primary, a streaming replica, two Redis servers (the cache and
the Celery broker), the stub payment gateway, the SMTP sink and the stub shipping carriers, all
under `.stack/`.

Plain Python (standard library only; psycopg and redis are used lazily when present), so it
runs before Django can start:

    python -m shop.devstack up | down [--purge] | status | env
    python manage.py devstack up | down [--purge] | status | env

Everything lives in the git-ignored state folder (`<project>/.stack`, or `$PERFSHOP_STACK_DIR`):

    .stack/pg-primary/   primary data directory (owned by `postgres` when run as root, mode 0700)
    .stack/pg-replica/   replica made with `pg_basebackup -R -X stream` over slot perfshop_replica
    .stack/run/          Unix sockets of both PostgreSQL servers
    .stack/log/          pg-primary.log, pg-replica.log
    .stack/redis/        redis.pid, redis.log (the cache, no persistence)
    .stack/broker/       redis.pid, redis.log, appendonly files (the Celery broker)
    .stack/smtp/         smtp.pid, smtp.log, mail/ (shop/smtp_sink.py: one .eml per message)
    .stack/gateway/      gateway.pid, gateway.log (shop/payment_gateway_stub.py)
    .stack/carriers/     carriers.pid, carriers.log (shop/carrier_stub.py, the three carriers)

Servers listen on 127.0.0.1 only, on the ports in `config.env`. When DATABASE_URL is set, no
local PostgreSQL is started (the URL is only checked); likewise DATABASE_REPLICA_URL for the
replica, REDIS_URL for the cache, CELERY_BROKER_URL for the broker (a redis:// or amqp:// URL),
PAYMENT_GATEWAY_URL for the gateway, EMAIL_HOST for the SMTP sink and CARRIER_*_URL for the
carriers.

The modules, each depending only on the ones above it:

    layout     the Stack (paths, ports, the pg_root fallback), shared constants, DevstackError
    process    running commands (as `postgres` when root), pids, waiting, the state-folder lock
    discovery  PostgreSQL binaries (PgToolchain) and redis-server; the search lists
               PG_BIN_GLOBS, PG_PACKAGES and REDIS_PACKAGES, and PG_EXTENSIONS (what a
               PostgreSQL build must ship), live (and are patched) there
    postgres   initdb, postgresql.conf, start/stop, role/database/slot, the pg_basebackup replica
    redis      redis-server start/stop (cache and broker: layout.RedisServer), PING over RESP
    gateway    the stub payment gateway: a detached `python -m shop.payment_gateway_stub`
    smtp       the SMTP sink: a detached `python -m shop.smtp_sink`
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
from .smtp import smtp_ping

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
    "smtp_ping",
    "status",
    "up",
]
