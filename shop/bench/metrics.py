"""What a request costs besides its time and its queries: cache operations and database
connections opened, counted for every request, and the counts a scenario reports of its own
(units oversold, tasks lost).

django-perf-rec's lesson: a request's cost is its queries and its cache operations. A cache
that turns 3 queries into 3 round trips to Redis has not made the request free, and a pool is
only visible in the connections PostgreSQL saw opened. Both are counted here from the real
thing: the cache calls the request made on Django's Redis backend, and `pg_stat_database.sessions`
read from PostgreSQL itself, not from the client.

Every name is a count per request; `Side.metrics` reports their median and their total over
the side's runs.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from django.core.cache.backends.redis import RedisCache
from django.db import connections

from shop.cache import RedisCache as ShopRedisCache

# The common counts, in the order the reports show them. A scenario's own follow.
CACHE_HITS = "cache_hits"
CACHE_MISSES = "cache_misses"
CACHE_SETS = "cache_sets"
CACHE_DELETES = "cache_deletes"
CONNECTIONS_OPENED = "connections_opened"
COMMON = (CACHE_HITS, CACHE_MISSES, CACHE_SETS, CACHE_DELETES, CONNECTIONS_OPENED)

# The metrics issue 9 and 10's scenarios report through `Scenario.metrics`; named here so
# every report spells them the same way.
UNITS_OVERSOLD = "units_oversold"
TASKS_LOST = "tasks_lost"
# Seconds from an order's placement to the end of its last task (async_tasks; `max` over the
# runs is "every task finished within N s").
TASKS_DONE_S = "tasks_done_s"
DEAD_TUPLES = "dead_tuples"  # left in a table after a job (table_partitioning's archive)

_MISSING = object()


class CacheCounter:
    """Counts the operations made on Django's Redis cache backend, every alias, while it is
    entered: one per key read or written.

    The backend's methods are wrapped on the class, so a cache instance created during the
    request (caches are per thread) is counted too. The wrappers are put in place when the
    first counter is entered and taken away when the last one leaves; each counts into the
    counters active in its own context (a ContextVar), so two counters that overlap, in one
    thread or in two, each count only their own calls. `get_or_set`, which Django builds from
    `get`, `add` and `get`, counts as the three it is. `clear` counts one delete.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __enter__(self) -> CacheCounter:
        _install()
        _active.set((*_active.get(), self.counts))
        return self

    def __exit__(self, *exc_info: object) -> None:
        _active.set(tuple(counts for counts in _active.get() if counts is not self.counts))
        _uninstall()


_active: ContextVar[tuple[Counter[str], ...]] = ContextVar("bench_cache_counters", default=())
_lock = threading.Lock()
_originals: dict[tuple[type, str], Callable[..., Any]] = {}
_users = 0


def _add(kind: str, n: int) -> None:
    for counts in _active.get():
        counts[kind] += n


def _install() -> None:
    global _users
    with _lock:
        _users += 1
        if _users > 1:
            return
        for owner, wrappers in _WRAPPED:
            for name, wrap in wrappers.items():
                original = getattr(owner, name)
                _originals[owner, name] = original
                setattr(owner, name, functools.wraps(original)(wrap(original)))


def _uninstall() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users:
            return
        for (owner, name), original in _originals.items():
            setattr(owner, name, original)
        _originals.clear()


def _get(original: Callable[..., Any]) -> Callable[..., Any]:
    def get(cache: RedisCache, key: Any, default: Any = None, version: Any = None) -> Any:
        # Asked with a default of our own, so a cached value equal to the caller's default
        # (get_or_set passes the value it is about to store) is still a hit.
        value = original(cache, key, _MISSING, version=version)
        _add(CACHE_MISSES if value is _MISSING else CACHE_HITS, 1)
        return default if value is _MISSING else value

    return get


def _get_seen(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_seen(cache: ShopRedisCache, key: Any, default: Any = None) -> tuple[Any, bytes]:
        value, seen = original(cache, key, _MISSING)
        _add(CACHE_MISSES if value is _MISSING else CACHE_HITS, 1)
        return (default if value is _MISSING else value), seen

    return get_seen


def _get_many(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_many(cache: RedisCache, keys: Any, version: Any = None) -> Any:
        keys = list(keys)
        found = original(cache, keys, version=version)
        _add(CACHE_HITS, len(found))
        _add(CACHE_MISSES, len(keys) - len(found))
        return found

    return get_many


def _has_key(original: Callable[..., Any]) -> Callable[..., Any]:
    def has_key(cache: RedisCache, *args: Any, **kwargs: Any) -> bool:
        found = original(cache, *args, **kwargs)
        _add(CACHE_HITS if found else CACHE_MISSES, 1)
        return found

    return has_key


def _per_key(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """For set_many and delete_many: one count per key of their first argument."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def operation(cache: RedisCache, keys: Any, *args: Any, **kwargs: Any) -> Any:
            keys = keys if isinstance(keys, dict) else list(keys)
            _add(kind, len(keys))
            return original(cache, keys, *args, **kwargs)

        return operation

    return wrap


def _once(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def operation(cache: RedisCache, *args: Any, **kwargs: Any) -> Any:
            _add(kind, 1)
            return original(cache, *args, **kwargs)

        return operation

    return wrap


_WRAPPERS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "get": _get,
    "get_many": _get_many,
    "has_key": _has_key,
    "set": _once(CACHE_SETS),
    "add": _once(CACHE_SETS),
    "touch": _once(CACHE_SETS),
    "incr": _once(CACHE_SETS),  # decr is incr with a negative delta
    "set_many": _per_key(CACHE_SETS),
    "delete": _once(CACHE_DELETES),
    "delete_many": _per_key(CACHE_DELETES),
    "clear": _once(CACHE_DELETES),
}
# The project's own operations on its backend (shop.cache.RedisCache): its GET that also
# answers what it saw (an invalidation's marker is a miss), the compare-and-set that the
# fills store with (one set), and the invalidation's markers (a delete per key).
_SHOP_WRAPPERS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "get_seen": _get_seen,
    "set_if_unchanged": _once(CACHE_SETS),
    "invalidate_many": _per_key(CACHE_DELETES),
}
_WRAPPED = ((RedisCache, _WRAPPERS), (ShopRedisCache, _SHOP_WRAPPERS))


class SessionCounter:
    """Database connections opened, as PostgreSQL counts them: `pg_stat_database.sessions`
    (PostgreSQL 14+) of each server the aliases point at, read before and after.

    PostgreSQL counts a session when the backend starts, so a connection opened during the
    request is counted, whether it is closed by the end or kept (CONN_MAX_AGE, a pool).

    With PostgreSQL 15's shared statistics, the backend adds its session to them when it first
    goes idle, without waiting for their lock. If another backend holds it just then, the count
    waits in the backend for a later try (a second or more later) or for its exit. Over HTTP
    the client is answered before the server closes its connection, so a reading taken right
    after a block could miss the last connection's session, or a block's reading could take in
    the warm-up's. With `settle_s`, each reading first waits, up to that long on each server,
    until every backend that connected since the last reading has exited: a backend writes its
    statistics before it leaves pg_stat_activity. A connection that stays open is waited for
    in vain, once (by the next reading it is not new), and its session is counted when its
    first try succeeded, which is nearly always. In process there is nothing to wait for: the
    request's connection is this process's own.

    It reads on connections of its own, opened before the first reading, so its readings count
    nothing, even when the request closed Django's connections. Aliases that reach the same
    database of the same server (a test mirror, two spellings of one host) are read once.
    """

    def __init__(self, *, settle_s: float = 0.0) -> None:
        self.settle_s = settle_s
        self._readers: dict[tuple, psycopg.Connection] = {}
        self._since: dict[tuple, Any] = {}  # each server's clock at its last reading
        for alias in connections:
            wrapper = connections[alias]
            if wrapper.vendor != "postgresql":
                continue
            params = wrapper.get_connection_params()
            kwargs = {k: v for k, v in params.items() if k not in _DJANGO_ONLY_PARAMS}
            kwargs["application_name"] = _READER
            reader = psycopg.connect(**kwargs, autocommit=True)
            # Which database of which server, asked of the server: "localhost" and "127.0.0.1"
            # are one server, and a replica differs from its primary in its recovery state.
            *key, now = reader.execute(
                "SELECT inet_server_addr(), current_setting('port'), pg_is_in_recovery(), "
                "current_database(), clock_timestamp()"
            ).fetchone()
            key = tuple(key)
            if key in self._readers:
                reader.close()
            else:
                self._readers[key] = reader
                self._since[key] = now

    def read(self) -> int:
        """The sessions opened so far on every server, summed."""
        total = 0
        for key, reader in self._readers.items():
            deadline = time.monotonic() + self.settle_s
            while True:
                # Statistics are read from a snapshot taken at the first access in a
                # transaction; autocommit gives each statement its own, and clearing makes
                # sure of it.
                reader.execute("SELECT pg_stat_clear_snapshot()")
                new, now = reader.execute(_NEW_BACKENDS, (_READER, self._since[key])).fetchone()
                if not new or time.monotonic() >= deadline:
                    break
                time.sleep(0.005)
            self._since[key] = now
            reader.execute("SELECT pg_stat_clear_snapshot()")
            row = reader.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
            total += row[0] if row and row[0] is not None else 0
        return total

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        self._since.clear()


SETTLE_S = 0.5  # the wait of a reading over HTTP (SessionCounter)
_READER = "perfshop-session-counter"  # the readers' application_name, left out of the wait
# Backends of this database that connected since a time and are still there, and the time now.
_NEW_BACKENDS = """
SELECT count(*) FILTER (
    WHERE datname = current_database() AND backend_type = 'client backend'
      AND application_name IS DISTINCT FROM %s AND backend_start > %s
), clock_timestamp()
FROM pg_stat_activity
"""


# Keys of Django's connection parameters that psycopg.connect() does not take.
_DJANGO_ONLY_PARAMS = frozenset({"cursor_factory", "server_side_binding", "pool", "context"})


@contextmanager
def counted(sessions: SessionCounter | None) -> Iterator[Counter[str]]:
    """Count cache operations and, with `sessions`, connections opened during the block; the
    counts are in the yielded Counter once the block ends."""
    counts: Counter[str] = Counter()
    before = sessions.read() if sessions is not None else 0
    with CacheCounter() as cache:
        try:
            yield counts
        finally:
            counts.update(cache.counts)
            if sessions is not None:
                counts[CONNECTIONS_OPENED] += sessions.read() - before


def ordered(names: set[str] | list[str]) -> list[str]:
    """The common metrics first, in their order, then a scenario's own, sorted."""
    return [n for n in COMMON if n in names] + sorted(set(names) - set(COMMON))


def sides_of(entry: Any) -> dict[str, dict[str, dict[str, float]]]:
    """An entry's sides that have runs, by label, each with its `Side.metrics`: off, on, and
    the cold runs when the scenario has them (a cold run opens its connection: it shows)."""
    sides = {"off": entry.off, "on": entry.on, "cold off": entry.cold_off, "cold on": entry.cold_on}
    return {label: side.metrics for label, side in sides.items() if side is not None}


def summary(per_side: dict[str, dict[str, dict[str, float]]]) -> str:
    """One line for a report: each count that is not 0 on some side, per request (p50),
    side by side: `cache_hits off 0 · on 3; connections_opened off 1 · on 0`. Empty when
    every count is 0 everywhere."""
    names = ordered({name for counts in per_side.values() for name in counts})
    parts = []
    for name in names:
        values = {side: counts.get(name, {}).get("p50", 0) for side, counts in per_side.items()}
        if any(values.values()):
            parts.append(f"{name} " + " · ".join(f"{side} {n:g}" for side, n in values.items()))
    return "; ".join(parts)
