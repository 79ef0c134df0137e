"""A product's page, with a connection per request against one from the pool.

The pool is the process's, chosen when it starts: no header switches it. So:

- In process, `before()` gives the bench's own process a pool or takes it away
  (connection_pooling.process_pool). The test client keeps its connection between requests,
  so the warm pair runs on one open connection either way and shows the pool's bookkeeping
  only; the **cold** pair ends each connection before each run, as the WSGI handler does when
  a response is sent: off opens a new one (a new PostgreSQL backend), on borrows the pool's.
- Over HTTP (`manage.py bench --http connection_pooling --clients 16`), each arm is a gunicorn
  of its own, started with its own environment (SERVERS below), all alive for the run and
  loaded in turn, off, on, persistent, pgbouncer, then back: shop/bench/http_servers.py. That
  is the pair the technique's target is about: latency, rate, and connections opened as
  PostgreSQL counted them (pg_stat_database.sessions).
"""

from __future__ import annotations

import contextlib
import os
from urllib.parse import urlparse, urlunparse

from django.db import close_old_connections

from catalog.models import Product
from config import env
from shop.bench import holds
from shop.bench.measure import BenchError
from shop.bench.scenario import Call, Scenario
from shop.techniques import connection_pooling

TECHNIQUE = "connection_pooling"
_product: dict[str, int] = {}
_side = contextlib.ExitStack()


def _prepare() -> None:
    product = Product.objects.filter(is_active=True).order_by("id").values("id").first()
    if product is None:
        raise BenchError("connection_pooling needs products: seed the database first")
    _product["id"] = product["id"]


def _call() -> Call:
    return Call("GET", f"/api/products/{_product['id']}/")


def before(enabled: bool) -> None:
    """This process with the pool the settings would give it (on) or none (off)."""
    _side.close()
    _side.enter_context(
        connection_pooling.process_pool(connection_pooling.pool_options() if enabled else None)
    )


def after() -> None:
    _side.close()  # the settings' own choice again


def _end_connection() -> None:
    """What the WSGI handler does once a response is sent (request_finished): a connection
    past CONN_MAX_AGE (0: every one) is closed, a pooled one goes back to its pool."""
    close_old_connections()


SCENARIO = Scenario(
    name=TECHNIQUE,
    title="product page, a connection per request against the pool's",
    prepare=_prepare,
    call=_call,
    cold=True,
    reset=_end_connection,
    hold=holds.CONNECTION_POOLING,
    notes="In process the test client keeps its connection between requests, so the warm pair "
    "runs on one open connection either way; the cold pair ends it before each run, as a "
    "server does after each response: off opens a new connection, on borrows one from the "
    "pool. Over HTTP with concurrent clients (`bench --http connection_pooling --clients 16`) "
    "each side is a gunicorn of its own.",
)


# ------------------------------------------------------------------------------------ over HTTP

# Each gunicorn: 2 workers x 8 threads, so 16 clients each have a thread, and a pool of 8 per
# worker, so no thread waits for a connection: what is measured is opening one, not queueing.
WORKERS = 2
THREADS = "8"


def pgbouncer_url() -> str:
    """DATABASE_URL, through the local stack's PgBouncer (same database, user and options)."""
    parsed = urlparse(os.environ.get("DATABASE_URL") or env.DEFAULT_DATABASE_URL)
    user = parsed.netloc.rpartition("@")[0]
    host = f"127.0.0.1:{env.LOCAL_PGBOUNCER_PORT}"
    return urlunparse(parsed._replace(netloc=f"{user}@{host}" if user else host))


def servers() -> dict[str, dict[str, str]]:
    """Each arm's gunicorn environment, by label; off and on first."""
    common = {"WEB_THREADS": THREADS, "DB_POOL_MAX_SIZE": THREADS, "DB_CONN_MAX_AGE": ""}
    return {
        # A new connection per request (CONN_MAX_AGE=0), Django's default.
        "off": {**common, "PERF_TOGGLES": f"{TECHNIQUE}=off"},
        # The psycopg pool, as the settings size it.
        "on": {**common, "PERF_TOGGLES": f"{TECHNIQUE}=on"},
        # Persistent connections: each thread keeps its own for 60 s.
        "persistent": {**common, "PERF_TOGGLES": f"{TECHNIQUE}=off", "DB_CONN_MAX_AGE": "60"},
        # A connection per request to PgBouncer, which lends server connections per transaction.
        "pgbouncer": {
            **common,
            "PERF_TOGGLES": f"{TECHNIQUE}=off",
            "DATABASE_URL": pgbouncer_url(),
            "DB_PGBOUNCER": "on",
        },
    }


def unavailable(label: str) -> str | None:
    """Why an arm cannot run here, or None: the pgbouncer arm needs the stack's PgBouncer."""
    if label != "pgbouncer":
        return None
    from shop.devstack.pgbouncer import find_pgbouncer, pgbouncer_up

    if pgbouncer_up(env.LOCAL_PGBOUNCER_PORT):
        return None
    if find_pgbouncer() is None:
        return "pgbouncer is not installed (apt-get install pgbouncer, then `devstack up`)"
    return (
        f"no PgBouncer listens on 127.0.0.1:{env.LOCAL_PGBOUNCER_PORT} "
        "(`python -m shop.devstack up` starts it)"
    )
