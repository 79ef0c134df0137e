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
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from django.core.cache.backends.redis import RedisCache
from django.db import connections

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
DEAD_TUPLES = "dead_tuples"  # left in a table after a job (table_partitioning's archive)

_MISSING = object()


class CacheCounter:
    """Counts the operations a request makes on Django's Redis cache backend, every alias.

    The backend's methods are wrapped for the duration, on the class, so a cache instance
    created during the request (caches are per thread) is counted too. Each wrapped call is
    one round trip to Redis. `get_or_set`, which Django builds from `get`, `add` and `get`,
    counts as the three it is. A `get` is a hit or a miss; `get_many` counts one per key.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._stack = ExitStack()

    def __enter__(self) -> CacheCounter:
        wrappers = {"get": self._get, "get_many": self._get_many}
        wrappers |= {name: self._count(name, kind) for name, kind in _ONE_OPERATION.items()}
        for name, wrap in wrappers.items():
            original = getattr(RedisCache, name)
            self._stack.callback(setattr, RedisCache, name, original)
            setattr(RedisCache, name, functools.wraps(original)(wrap(original)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _get(self, original: Callable[..., Any]) -> Callable[..., Any]:
        counts = self.counts

        def get(cache: RedisCache, key: Any, default: Any = None, version: Any = None) -> Any:
            # Asked with a default of our own, so a cached value equal to the caller's default
            # (get_or_set passes the value it is about to store) is still a hit.
            value = original(cache, key, _MISSING, version=version)
            counts[CACHE_MISSES if value is _MISSING else CACHE_HITS] += 1
            return default if value is _MISSING else value

        return get

    def _get_many(self, original: Callable[..., Any]) -> Callable[..., Any]:
        counts = self.counts

        def get_many(cache: RedisCache, keys: Any, version: Any = None) -> Any:
            keys = list(keys)
            found = original(cache, keys, version=version)
            counts[CACHE_HITS] += len(found)
            counts[CACHE_MISSES] += len(keys) - len(found)
            return found

        return get_many

    def _count(self, name: str, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        counts = self.counts

        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def operation(cache: RedisCache, *args: Any, **kwargs: Any) -> Any:
                counts[kind] += 1
                return original(cache, *args, **kwargs)

            return operation

        return wrap


# The other operations, each one round trip, by what it does to the cache.
_ONE_OPERATION = {
    "has_key": CACHE_HITS,  # a lookup that reads no value, counted as a read that found one
    "set": CACHE_SETS,
    "set_many": CACHE_SETS,
    "add": CACHE_SETS,
    "touch": CACHE_SETS,
    "incr": CACHE_SETS,  # decr is incr with a negative delta
    "delete": CACHE_DELETES,
    "delete_many": CACHE_DELETES,
    "clear": CACHE_DELETES,
}


class SessionCounter:
    """Database connections opened, as PostgreSQL counts them: `pg_stat_database.sessions`
    (PostgreSQL 14+) of each server the aliases point at, read before and after.

    PostgreSQL counts a session when the backend starts, so a connection opened during the
    request is counted at once, whether it is closed by the end or kept (CONN_MAX_AGE, a pool).
    It reads on connections of its own, opened before the first reading, so its readings count
    nothing, even when the request closed Django's connections. Aliases that point at the same
    database (a test mirror) are read once.
    """

    def __init__(self) -> None:
        self._readers: dict[tuple, psycopg.Connection] = {}
        for alias in connections:
            wrapper = connections[alias]
            if wrapper.vendor != "postgresql":
                continue
            params = wrapper.get_connection_params()
            key = (params.get("host"), params.get("port"), params.get("dbname"))
            if key not in self._readers:
                kwargs = {k: v for k, v in params.items() if k not in _DJANGO_ONLY_PARAMS}
                self._readers[key] = psycopg.connect(**kwargs, autocommit=True)

    def read(self) -> int:
        """The sessions opened so far on every server, summed."""
        total = 0
        for reader in self._readers.values():
            # Statistics are read from a snapshot taken at the first access in a transaction;
            # autocommit gives each statement its own, and clearing makes sure of it.
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
