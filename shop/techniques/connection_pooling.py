"""Keep database connections open and share them, instead of opening one for every request.

Off: `CONN_MAX_AGE=0`, Django's default. Every request opens a connection to PostgreSQL, which
forks a backend process for it, authenticates it and sets it up (time zone, encoding), and
closes it when the response is sent. On a loopback socket that costs a few milliseconds of CPU
on both sides per request, paid again by every request, and under load the database spends its
cores starting and stopping processes.

On: Django's psycopg pool (Django 5.1+, `OPTIONS={"pool": {...}}`). Each web process keeps
between `DB_POOL_MIN_SIZE` and `DB_POOL_MAX_SIZE` connections open; a request borrows one when it
runs its first query and gives it back when it ends. A request that finds every connection lent
out waits up to `DB_POOL_TIMEOUT` seconds for one, then psycopg_pool raises PoolTimeout, which
the API answers with a 503 and `Retry-After` (shop.api_errors): a full pool sheds load instead of
holding a worker for as long as the database is slow.

This technique is a process's, not a request's: a pool is built when the process starts, from
settings. So `X-Perf-Toggles: connection_pooling=...` is refused with a 400 naming the switch
(shop.perf_headers.NOT_PER_REQUEST), and PERF_TOGGLES, read here when the settings load, is the
switch: `PERF_TOGGLES=connection_pooling=off` then restart. `GET /api/perf/toggles/` reports
what the process runs with (`in_effect()`).

The two other ways to stop paying a connection per request are set by the environment too, with
the toggle off: `DB_CONN_MAX_AGE=60` keeps each thread's own connection for 60 s (persistent
connections: no bound on how many, one per thread of every process), and `DB_PGBOUNCER=on` for
a `DATABASE_URL` that points at PgBouncer in transaction mode (one pool shared by every process
on the machine). docs/techniques/connection_pooling.md compares the three.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from config.env import BadEnvironment, env_bool, env_int
from shop import toggles

TOGGLE = toggles.register(
    "connection_pooling",
    group="replicas",
    description="a psycopg pool of open connections per process instead of a new connection "
    "per request; set by PERF_TOGGLES when the process starts, not per request",
)
SWITCH = "PERF_TOGGLES=connection_pooling=on|off"  # in the environment of a process it starts

# Per web process. Sized for the Procfile's gunicorn: a worker runs WEB_THREADS requests at
# once, and each holds at most one connection of the alias, so max_size >= WEB_THREADS means no
# request waits for the pool, only for the CPU. Every process has its own pool: PostgreSQL sees
# up to workers x max_size connections (plus Celery's), which must stay under max_connections.
DEFAULT_MIN_SIZE = 2
DEFAULT_MAX_SIZE = 8
# Below gunicorn's worker timeout (30 s), so a request that cannot get a connection is answered
# (503) long before gunicorn kills the worker; a client retries sooner than a stuck database
# recovers, so waiting longer would only hold the worker.
DEFAULT_TIMEOUT_S = 5


def enabled_at_start() -> bool:
    """The toggle's state for this process, read from PERF_TOGGLES while the settings load.

    The registry's parse cannot run yet (the other techniques register later, when the app is
    ready, and it refuses names it does not know), so only this toggle's entry is read here;
    shop.apps checks the whole variable once every toggle is registered.
    """
    for part in os.environ.get("PERF_TOGGLES", "").split(","):
        name, sep, value = part.partition("=")
        if name.strip() == TOGGLE.name and sep:
            return value.strip().lower() in {"on", "true", "1", "yes"}
    return TOGGLE.default


def pool_options() -> dict[str, Any]:
    """psycopg_pool.ConnectionPool's sizing, from the environment."""
    min_size = env_int("DB_POOL_MIN_SIZE", DEFAULT_MIN_SIZE)
    max_size = env_int("DB_POOL_MAX_SIZE", DEFAULT_MAX_SIZE)
    timeout = env_int("DB_POOL_TIMEOUT", DEFAULT_TIMEOUT_S)
    if not 0 <= min_size <= max_size or max_size < 1:
        raise BadEnvironment(
            f"DB_POOL_MIN_SIZE={min_size} and DB_POOL_MAX_SIZE={max_size}: need "
            "0 <= min <= max and max >= 1"
        )
    if timeout < 1:
        raise BadEnvironment(f"DB_POOL_TIMEOUT={timeout} is not a number of seconds >= 1")
    return {"min_size": min_size, "max_size": max_size, "timeout": timeout}


def configure(databases: dict[str, dict[str, Any]], *, enabled: bool | None = None) -> None:
    """Set every alias's connection handling: a pool (on), or a connection per request, kept
    `DB_CONN_MAX_AGE` seconds when that is set (off). Called by the settings."""
    enabled = enabled_at_start() if enabled is None else enabled
    max_age = env_int("DB_CONN_MAX_AGE", 0)
    if enabled and max_age:
        # Django refuses the two together; say which switch to use, in one line.
        raise BadEnvironment(
            f"DB_CONN_MAX_AGE={max_age} keeps connections open, which the pool does already: "
            "unset it, or set PERF_TOGGLES=connection_pooling=off for persistent connections"
        )
    behind_pgbouncer = env_bool("DB_PGBOUNCER", False)
    if enabled and behind_pgbouncer:
        raise BadEnvironment(
            "DB_PGBOUNCER=on with connection_pooling on: one pool in front of another; set "
            "PERF_TOGGLES=connection_pooling=off to use PgBouncer's"
        )
    for settings_dict in databases.values():
        settings_dict["CONN_MAX_AGE"] = max_age
        settings_dict["CONN_HEALTH_CHECKS"] = True  # the pool checks a connection it lends
        options = settings_dict.setdefault("OPTIONS", {})
        if enabled:
            options["pool"] = pool_options()
        else:
            options.pop("pool", None)
        if behind_pgbouncer:
            # In transaction mode consecutive transactions of one client may run on different
            # server connections, so nothing may outlive a transaction: no WITH HOLD cursor
            # (Django's .iterator() outside atomic()) and no prepared statement (Django's
            # default prepare_threshold is None already; set here so nobody turns it on).
            settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
            options["prepare_threshold"] = None
            # PgBouncer refuses a startup parameter it does not know, `options` among them: the
            # session timeouts (short_transactions) are then set on the role instead
            # (ALTER ROLE ... SET statement_timeout), as its chapter says.
            options.pop("options", None)


def in_effect(alias: str = "default") -> bool:
    """Whether this process's connections for `alias` come from a pool."""
    from django.db import connections

    return bool(connections[alias].settings_dict["OPTIONS"].get("pool"))


def pool_exhausted(exc: BaseException | None) -> bool:
    """Whether `exc` is the pool's timeout: psycopg_pool.PoolTimeout, which Django re-raises
    wrapped as django.db.OperationalError (it is a psycopg.OperationalError)."""
    from psycopg_pool import PoolTimeout

    seen = 0
    while exc is not None and seen < 5:  # the cause chain is short; a loop would be a bug
        if isinstance(exc, PoolTimeout):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def retry_after_s(alias: str = "default") -> int:
    """What a refused request is told to wait: as long as it waited for a connection (the
    pool's timeout). By then the requests that held them have usually finished."""
    from django.db import connections

    options = connections[alias].settings_dict["OPTIONS"].get("pool") or {}
    timeout = options.get("timeout", DEFAULT_TIMEOUT_S) if isinstance(options, dict) else 30
    return max(1, math.ceil(timeout))


@contextmanager
def process_pool(options: dict[str, Any] | None) -> Iterator[None]:
    """Run this process with a pool of `options` (None: a connection per request) for the
    block, then as before. For what cannot restart a process between its sides: the bench's
    in-process pair and the tests. Every connection is closed and every pool shut on the way
    in and out, so no connection made one way is used the other."""
    from django.db import connections

    saved = {
        alias: connections[alias].settings_dict["OPTIONS"].get("pool") for alias in connections
    }
    close_all()
    try:
        for alias in connections:
            _set_pool(connections[alias].settings_dict, options)
        yield
    finally:
        close_all()
        for alias, pool in saved.items():
            _set_pool(connections[alias].settings_dict, pool)


def _set_pool(settings_dict: dict[str, Any], options: dict[str, Any] | None) -> None:
    if options:
        settings_dict["OPTIONS"]["pool"] = dict(options)
    else:
        settings_dict["OPTIONS"].pop("pool", None)


def close_all() -> None:
    """Close this thread's connections (a pooled one goes back) and shut every pool: its next
    connection comes from the settings as they are then."""
    from django.db import connections

    connections.close_all()
    for alias in connections:
        close_pool = getattr(connections[alias], "close_pool", None)
        if close_pool is not None:
            close_pool()
