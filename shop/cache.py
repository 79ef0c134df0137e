"""The cache the caching techniques share: Django's Redis cache backend, with versioned keys,
invalidation after commit, and an outage that costs a logged warning instead of a 500.

    payload = cache.get(key)                    # cache.MISS when absent or when Redis fails
    cache.set(key, payload, timeout=300)        # False when Redis fails
    cache.invalidate_on_commit(key, other_key)  # after the writing transaction commits

    payload, seen = cache.get_seen(key)         # a fill: what the GET saw, then
    cache.set_if_unchanged(key, payload, seen=seen, timeout=300)  # stored only over it

**Versioned keys.** A key names what it holds and the shape it holds it in:
`cache.key("product", 42, version=PRODUCT_PAYLOAD_VERSION)` → `"product:v3:42"`, inside
the deployment-wide prefix `catalog-v{CACHE_SCHEMA_VERSION}`. Whoever changes a cached
payload's shape bumps its version next to the code that builds it, so a process of the new
code never reads an entry an older process wrote (and an older one, still serving during a
rolling deploy, never reads the new shape). `CACHE_SCHEMA_VERSION` (settings) moves every key
at once.

**Outage.** Redis down is a slower site, not a broken one: every call here catches the
errors that mean Redis cannot serve (`OUTAGE`), logs one warning per `_WARN_EVERY_S` per
process, and answers as a miss (`get`: the caller reads PostgreSQL) or a no-op (`set`, `add`,
`incr`, `delete`: whatever Redis still holds stays until its TTL, so a lost invalidation is
stale for that long; `_consequence()` logs which). Those errors are a refused or lost
connection, a timeout, a Redis still loading its data, and two answers that refuse a command
whatever it is: `OOM command not allowed` (a Redis under `maxmemory` with `noeviction`, which
refuses every write and still serves reads) and `READONLY` (a replica after a failover). Any
other error Redis answers with (`WRONGTYPE`, `value is not an integer`, a script error) is a
bug of ours and is raised, as a test must see it.
This is why the catalog does not configure `IGNORE_EXCEPTIONS` on the backend: the choice is
made here, per call, and other users of the backend (rate limiting, which must choose fail
open or closed) still see the error.

**Invalidation leaves a marker, and a fill stores only over what it read.** Cache-aside's
classic race: a reader misses, reads the row, a write commits and deletes the key, and then
the reader stores the row it read, which is now the old one, for a whole TTL. So an
invalidation (`invalidate`) does not DEL: it overwrites the key with a marker of its own, a
unique string every read here takes for a miss. A fill reads the key with `get_seen`, which
also answers what it saw (the stored bytes, b"" for absent), and stores with
`set_if_unchanged`, a compare-and-set in one Lua script: if an invalidation ran since the GET,
the key holds a new marker, and the old row is not stored. A marker lives INVALIDATION_TTL_S
by default, longer than a fill takes. Markers are a value an older process does not know:
every key that may hold one moved to a new version with them.

**Cost.** A request's cost is its queries and its cache operations (django-perf-rec's lesson):
every call here is counted into the request's `Ops` (`counting()`), which the cost middleware
sends as `X-Cache-Ops: hits=1 misses=0 sets=0 deletes=0 errors=0` next to `X-DB-Queries`.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends import redis as django_redis
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

ALIAS = "default"
MISS = object()  # what get() returns for an absent key; a cached None stays None
ABSENT = b""  # what get_seen() saw of an absent key, for set_if_unchanged()
# What an invalidation leaves under a key (with a unique suffix): read as a miss.
INVALIDATED = "shop.cache:invalidated:"
# How long a marker stays, unless the caller says (local_cache: its Redis TTL): longer than a
# fill takes between its GET and its store (a statement times out after 30 s,
# DB_STATEMENT_TIMEOUT_MS). Once the key is absent again (the marker expired, was evicted
# under memory pressure, or Redis restarted), a fill that saw it absent stores.
INVALIDATION_TTL_S = 120
# Redis cannot serve: no answer (a refused or lost connection, a timeout, BusyLoadingError,
# which is a ConnectionError), or a refusal of any command (OOM, READONLY). Not every
# RedisError: WRONGTYPE, DataError or NoScriptError are bugs of the caller.
OUTAGE = (RedisConnectionError, RedisTimeoutError, OutOfMemoryError, ReadOnlyError, OSError)
_WARN_EVERY_S = 10.0
_last_warning = 0.0


class _OneClientPerPool(django_redis.RedisCacheClient):
    """Django's client, which builds a new `redis.Redis` for every operation (`get_client`):
    redis-py's constructor registers its response callbacks (about 170 of them) each time,
    which costs about as much as the GET's round trip to a local Redis. One client per
    connection pool is enough: a client takes a connection from its pool for each command, so
    it holds no state of its own between commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))  # the pools live as long as this object
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    """Django's Redis cache backend (settings.CACHES), less a redis-py client built for every
    operation (`_OneClientPerPool`). Everything else, the keys, the pickling, the pools, is
    Django's."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _OneClientPerPool

    def get_seen(self, key: Any, default: Any = None) -> tuple[Any, bytes]:
        """Django's `get`, less invalidation markers (read as absent), and with what was
        seen: the bytes Redis held, ABSENT (b"") for none, for `set_if_unchanged`. The bytes
        as read, not the value: a value read back and pickled again need not give the same
        bytes."""
        key = self.make_and_validate_key(key)
        raw = self._cache.get_client(key).get(key)
        if raw is None:
            return default, ABSENT
        value = self._cache._serializer.loads(raw)
        return (default if invalidated(value) else value), raw

    def invalidate_many(self, keys: list[Any], marker: str, *, timeout: Any) -> None:
        """Overwrite each key with `marker` for `timeout` seconds, in one round trip (a
        pipeline of `SET ... EX`). Its own method, not `set_many`, so the bench counts it as
        what it is, a delete per key. Under `maxmemory` with `noeviction` Redis refuses the
        SETs (OutOfMemoryError) and still lets a DEL through: the keys are deleted instead,
        which is safe there, since every fill's store is refused too."""
        client = self._cache.get_client(write=True)
        ttl = self.get_backend_timeout(timeout)
        stored = self._cache._serializer.dumps(marker)
        pipeline = client.pipeline(transaction=False)
        for key in keys:
            pipeline.set(self.make_and_validate_key(key), stored, ex=ttl)
        try:
            pipeline.execute()
        except OutOfMemoryError:
            client.delete(*(self.make_and_validate_key(key) for key in keys))

    def set_if_unchanged(self, key: Any, value: Any, *, seen: bytes, timeout: Any) -> bool:
        """SET `key` to `value` only if it still holds what `get_seen` saw (`seen`), in one
        Lua script (`_SET_IF_UNCHANGED`), with the keys, pickling and TTL of Django's `set`.
        What was seen goes as its SHA-1: 40 characters, not a page sent back."""
        client = self._cache.get_client(key, write=True)
        ttl = self.get_backend_timeout(timeout)
        digest = hashlib.sha1(seen, usedforsecurity=False).hexdigest() if seen else ""
        args = (digest, self._cache._serializer.dumps(value), "" if ttl is None else ttl)
        return bool(client.eval(_SET_IF_UNCHANGED, 1, self.make_and_validate_key(key), *args))


def invalidated(value: Any) -> bool:
    """Whether `value` is an invalidation's marker (`invalidate`), which reads as a miss."""
    return isinstance(value, str) and value.startswith(INVALIDATED)


@dataclass
class Ops:
    """The cache operations of one request (or block): keys read found and not found, keys
    written (set, add, incr) and deleted, and calls Redis failed (`OUTAGE`)."""

    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    errors: int = 0

    def header(self) -> str:
        return (
            f"hits={self.hits} misses={self.misses} sets={self.sets} "
            f"deletes={self.deletes} errors={self.errors}"
        )


_ops: ContextVar[Ops | None] = ContextVar("cache_ops", default=None)


@contextmanager
def counting() -> Iterator[Ops]:
    """Count the calls made through this module in the block (this thread or task only)."""
    ops = Ops()
    token = _ops.set(ops)
    try:
        yield ops
    finally:
        _ops.reset(token)


def _count(**counts: int) -> None:
    ops = _ops.get()
    if ops is not None:
        for name, n in counts.items():
            setattr(ops, name, getattr(ops, name) + n)


def key(name: str, *parts: object, version: int) -> str:
    """`key("product", 42, version=3)` → `"catalog-v1:product:v3:42"`."""
    schema = getattr(settings, "CACHE_SCHEMA_VERSION", 1)
    return ":".join([f"catalog-v{schema}", name, f"v{version}", *(str(part) for part in parts)])


def backend():
    return caches[ALIAS]


def failure(exc: BaseException) -> str:
    """What Redis did, for a log: `Redis did not answer (TimeoutError: ...)`, or `Redis
    refused it (OutOfMemoryError: OOM command not allowed ...)`."""
    answered = not isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)
    what = "Redis refused it" if answered else "Redis did not answer"
    return f"{what} ({type(exc).__name__}: {exc})"


def _consequence(operation: str) -> str:
    """What follows a failed call. A Redis that refuses writes (full under `noeviction`, or
    READONLY) still serves reads: what it holds stays, and a write that would have changed
    it (a page's fill, but also an ETag token's bump or a list generation's INCR, which are
    invalidations) is left to the TTLs."""
    if operation.startswith("get"):
        return "serving from PostgreSQL"
    if operation.startswith("delete"):
        return "the entry is left to the TTLs"
    if operation == "incr":
        return "the counter keeps its value: what it invalidates is left to the TTLs"
    return (
        "nothing written: an entry Redis holds under the key is left to the TTLs, "
        "one it does not hold is read from PostgreSQL"
    )


def outage(exc: BaseException, *, operation: str) -> None:
    """Log (at most one warning per _WARN_EVERY_S per process) that Redis failed a call."""
    global _last_warning
    _count(errors=1)
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_S:
        _last_warning = now
        logger.warning("cache %s failed: %s; %s", operation, failure(exc), _consequence(operation))


def get(cache_key: str) -> Any:
    """The value stored under `cache_key`: MISS when absent, invalidated, or Redis fails."""
    return get_seen(cache_key)[0]


def get_seen(cache_key: str) -> tuple[Any, bytes]:
    """`get`, and what it saw, for a fill's `set_if_unchanged`: ABSENT when the key was absent
    or Redis failed (a fill then stores only if the key is still absent)."""
    try:
        value, seen = backend().get_seen(cache_key, MISS)
    except OUTAGE as exc:
        outage(exc, operation="get")
        _count(misses=1)
        return MISS, ABSENT
    _count(**({"misses": 1} if value is MISS else {"hits": 1}))
    return value, seen


def get_many(cache_keys: list[str]) -> dict[str, Any]:
    try:
        found = backend().get_many(cache_keys)
    except OUTAGE as exc:
        outage(exc, operation="get_many")
        _count(misses=len(cache_keys))
        return {}
    found = {key: value for key, value in found.items() if not invalidated(value)}
    _count(hits=len(found), misses=len(cache_keys) - len(found))
    return found


def set(cache_key: str, value: Any, *, timeout: float | None) -> bool:  # noqa: A001
    """Store `value`: True, or False when Redis failed the write."""
    _count(sets=1)
    try:
        backend().set(cache_key, value, timeout=timeout)
    except OUTAGE as exc:
        outage(exc, operation="set")
        return False
    return True


def set_many(values: dict[str, Any], *, timeout: float | None) -> bool:
    """Store every key's value, one round trip (Django's MSET and EXPIREs in a pipeline): True,
    or False when Redis failed the write."""
    _count(sets=len(values))
    try:
        backend().set_many(values, timeout=timeout)
    except OUTAGE as exc:
        outage(exc, operation="set_many")
        return False
    return True


def add(cache_key: str, value: Any, *, timeout: float | None) -> bool | None:
    """SET NX: True if this call stored it, False if the key existed, None if Redis failed."""
    _count(sets=1)
    try:
        return backend().add(cache_key, value, timeout=timeout)
    except OUTAGE as exc:
        outage(exc, operation="add")
        return None


def incr(cache_key: str) -> int | None:
    """INCR an integer stored by set() or add(): the new value, or None when the key is absent
    or Redis failed."""
    _count(sets=1)
    try:
        return backend().incr(cache_key)
    except ValueError:  # Django's backend: the key does not exist
        return None
    except OUTAGE as exc:
        outage(exc, operation="incr")
        return None


def delete(*cache_keys: str) -> None:
    if not cache_keys:
        return
    _count(deletes=len(cache_keys))
    try:
        backend().delete_many(list(cache_keys))
    except OUTAGE as exc:
        # The entry stays until its TTL: the staleness a cache outage costs, and the reason
        # every cached entry has a TTL at all.
        outage(exc, operation="delete")


# Compare-and-delete in one step inside Redis: a GET then a DEL from here would delete a key
# that expired between the two and was set again by someone else.
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def delete_if_equal(cache_key: str, value: Any) -> bool | None:
    """Delete `cache_key` only if it still holds `value` (one Lua script, atomic): the
    release of a lock taken with `add`, which must never release a lock that expired and was
    taken by another process since. True if deleted, False if not, None if Redis failed."""
    _count(deletes=1)
    cache = backend()
    try:
        client = cache._cache.get_client(cache_key, write=True)
        stored = cache._cache._serializer.dumps(value)  # as `add` stored it
        redis_key = cache.make_and_validate_key(cache_key)
        return bool(client.eval(_DELETE_IF_EQUAL, 1, redis_key, stored))
    except OUTAGE as exc:
        outage(exc, operation="delete_if_equal")
        return None


# Compare-and-set in one step inside Redis: store ARGV[2] only if the SHA-1 of what the key
# holds is still ARGV[1] ('' for absent), with a TTL of ARGV[3] seconds ('' for none).
_SET_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[1])
local seen = ''
if current then
    seen = redis.sha1hex(current)
end
if seen ~= ARGV[1] then
    return 0
end
if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
else
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
"""


def set_if_unchanged(
    cache_key: str, value: Any, *, seen: bytes, timeout: float | None
) -> bool | None:
    """Store `value` only if the key still holds what `get_seen` saw before the caller
    computed `value`, atomically: a fill that must not land after an invalidation made while
    it computed (`invalidate`). True if stored, False if the key changed meanwhile, None if
    Redis failed."""
    _count(sets=1)
    try:
        return backend().set_if_unchanged(cache_key, value, seen=seen, timeout=timeout)
    except OUTAGE as exc:
        outage(exc, operation="set")
        return None


def invalidate(*cache_keys: str, timeout: float = INVALIDATION_TTL_S) -> None:
    """Drop `cache_keys`: each is overwritten with a new marker (one round trip), which every
    read takes for a miss, so a fill that read the key before this call and stores with
    `set_if_unchanged` after it is refused. Counted, and logged when Redis fails, as a delete:
    the entries then stay until their TTL."""
    if not cache_keys:
        return
    _count(deletes=len(cache_keys))
    marker = f"{INVALIDATED}{uuid.uuid4().hex}"
    try:
        backend().invalidate_many(list(cache_keys), marker, timeout=timeout)
    except OUTAGE as exc:
        outage(exc, operation="delete")


def invalidate_on_commit(*cache_keys: str, using: str = "default") -> None:
    """`invalidate` after the current transaction commits (at once outside one). Before the
    commit, a concurrent reader would read the old row and store it again over the marker,
    since the marker was already there when it looked."""
    keys = list(cache_keys)
    transaction.on_commit(lambda: invalidate(*keys), using=using)
