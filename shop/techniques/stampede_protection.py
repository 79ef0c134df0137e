"""Stampede protection: when a hot key expires, one request rebuilds it, not all of them.

Plain cache-aside (shop/techniques/cache_aside.py, `fill`) has a failure that only shows
under load. The moment a hot entry expires, or a write deletes it, every request that reads
it in the time one rebuild takes misses, and every one of them runs the rebuild: 50
concurrent readers of a category page run its facet queries 50 times, at once, on the
primary, exactly when the cache was supposed to spare it. Entries written together (a deploy,
a warm-up) also expire together, and do it again every TTL.

Off: the code a team writes first, `cache_aside.fill`. N concurrent misses compute N times.

On, `fetch(key, compute, ttl=...)`, three mechanisms:

1. **Single flight.** A miss takes a lock, `shop.cache.add(<key>:fill-lock)` (Redis
   `SET NX` with a short TTL, STAMPEDE_LOCK_TTL_S), before it computes. One request wins it,
   reads the key again (a fill may have finished between its miss and its lock), computes,
   stores, and releases the lock (compare-and-delete: only its own lock). The
   others poll the key every STAMPEDE_POLL_S for the value it stores, for up to
   STAMPEDE_WAIT_S; each poll also tries the lock, so if the holder failed (its lock is
   released) or died (its lock expires) one of them takes over. A waiter still empty-handed
   after STAMPEDE_WAIT_S computes by itself, without storing: the last resort that keeps a
   stuck holder from blocking a request for longer than that.
2. **Stale-while-revalidate.** The stored value is an `Entry`: the payload and its soft
   expiry, `fresh_until`. Redis keeps it STAMPEDE_STALE_S longer than that (the hard TTL).
   Between the two, the entry is stale but usable: the one request that gets the lock
   refreshes it (in its own response time), and every other request is served the stale
   payload at once, without waiting. Only a key that is absent (never filled, dropped by a
   write, past its hard TTL) makes requests wait. A write drops the entry, so what a write
   changed is never served stale; SWR only stretches the time-based expiry. The refresh
   stores only over the entry it read (`shop.cache.set_if_unchanged`, as cache_aside's fill):
   a write that drops the key while it computes is not undone by it.
3. **TTL jitter.** Each entry's TTL is drawn from [ttl × (1 − STAMPEDE_JITTER), ttl], so
   entries filled together expire over a spread instead of in the same second.

**Redis down.** `shop.cache` answers a miss, and `add` answers None (no lock to take, and
nobody to wait for): the request computes from PostgreSQL, as cache-aside does, and, since
nothing is stored, through this process's local_cache L1. No 500.

The read path is cache_aside's seam (`cache_aside.set_read_path`): with cache_aside on,
every cached read comes here, and this module picks the plain path or the protected one under
its own toggle. Both read the other's entries: the plain path unwraps an `Entry`, and the
protected path takes a plain payload as fresh, so flipping the toggle mid-TTL is harmless.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from shop import cache, toggles
from shop.techniques import cache_aside, local_cache, read_replica

TOGGLE = toggles.register(
    "stampede_protection",
    group="caching",
    description="single-flight lock, stale-while-revalidate and TTL jitter on cache misses",
)


@dataclass(frozen=True)
class Entry:
    """What the protected path stores: the payload and the time (epoch seconds) it is fresh
    until. Wall-clock time, compared by every process: clocks a second apart make an entry
    refresh a second early or late, which is all a soft expiry needs."""

    payload: Any
    fresh_until: float


def fetch(cache_key: str, compute: Callable[[], Any], *, ttl: float) -> Any:
    """The payload cached under `cache_key`, or `compute()`'s, stored for about `ttl`
    seconds. cache_aside.fetch calls it for every cached read while cache_aside is on."""
    if not toggles.is_enabled(TOGGLE.name):
        return _naive(cache_key, compute, ttl=ttl)
    return _protected(cache_key, compute, ttl=ttl)


def _naive(cache_key: str, compute: Callable[[], Any], *, ttl: float) -> Any:
    """Plain cache-aside: a hit is the answer; a miss computes and stores. Every request
    that misses computes."""
    stored, seen = cache.get_seen(cache_key)
    if isinstance(stored, Entry):
        return stored.payload  # stored by the protected path: its payload is the same
    if stored is not cache.MISS:
        return stored
    return cache_aside.fill(cache_key, compute, ttl=ttl, seen=seen)


def _protected(cache_key: str, compute: Callable[[], Any], *, ttl: float) -> Any:
    stored = cache.get(cache_key)
    payload = _fresh(stored)
    if payload is not cache.MISS:
        return payload  # the common case: one GET
    lock = Lock(cache_key)
    taken = lock.acquire()
    if taken is None:
        # Redis does not answer: nobody can hold the lock or store a value. Serve what we
        # read, if anything; else compute from PostgreSQL, as cache-aside does.
        return stored.payload if isinstance(stored, Entry) else _compute_unstored(compute)
    if taken:
        return _fill_and_release(lock, compute, ttl=ttl)
    if isinstance(stored, Entry):
        return stored.payload  # stale while another request revalidates it
    return _wait_for_fill(lock, compute, ttl=ttl)


def _fresh(stored: Any) -> Any:
    """What a read may serve as it is, or cache.MISS: an `Entry` before its soft expiry, or a
    plain payload (filled while the toggle was off: it has no soft expiry)."""
    if isinstance(stored, Entry):
        return stored.payload if time.time() < stored.fresh_until else cache.MISS
    return stored


def _wait_for_fill(lock: Lock, compute: Callable[[], Any], *, ttl: float) -> Any:
    """Another request holds the lock on an absent key: poll for the value it stores. Each
    poll also tries the lock, so a holder that failed (released) or died (expired) is taken
    over by one waiter. Past STAMPEDE_WAIT_S, compute without storing: the last resort."""
    deadline = time.monotonic() + settings.STAMPEDE_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(settings.STAMPEDE_POLL_S)
        stored = cache.get(lock.cache_key)
        if stored is not cache.MISS:
            return stored.payload if isinstance(stored, Entry) else stored
        taken = lock.acquire()
        if taken:
            return _fill_and_release(lock, compute, ttl=ttl)
        if taken is None:
            break  # Redis went away: nothing will arrive
    return _compute_unstored(compute)


def _fill_and_release(lock: Lock, compute: Callable[[], Any], *, ttl: float) -> Any:
    try:
        # Read again under the lock: this request's miss may be older than a fill that
        # another request finished (and whose lock it released) just before this one took it.
        stored, seen = cache.get_seen(lock.cache_key)
        payload = _fresh(stored)
        if payload is not cache.MISS:
            return payload
        payload = _compute_to_store(compute)
        # Only over what was seen: a write that dropped the key while this computed (what it
        # read may be the row before that write) leaves its marker, and this request's answer
        # is stored nowhere. A waiter then takes the lock and fills from the new row.
        store(lock.cache_key, payload, ttl=ttl, seen=seen)
        return payload
    finally:
        lock.release()  # after the store: a waiter that then polls finds the value


def _compute_to_store(compute: Callable[[], Any]) -> Any:
    # The primary, as cache_aside.fill: a lagging replica would store the row as it was
    # before the write that just deleted the entry. And not this process's local_cache L1,
    # which may be behind another process's write: what is stored is served to all of them.
    with read_replica.on_primary(), local_cache.bypassed():
        return compute()


def _compute_unstored(compute: Callable[[], Any]) -> Any:
    # For this request alone (Redis down, or the waiter's last resort): nothing is stored,
    # so this process's L1 may serve it as it serves any of its reads, and spares PostgreSQL
    # exactly when Redis cannot. The primary still, as the path that stores.
    with read_replica.on_primary():
        return compute()


def store(cache_key: str, payload: Any, *, ttl: float, seen: bytes) -> bool | None:
    """Store `payload` as the protected path does: an `Entry` fresh for a jittered TTL, kept
    STAMPEDE_STALE_S longer, only if the key still holds what `get_seen` saw (`seen`): True if
    stored, False if the key changed, None if Redis failed. write_through stores through it
    while this toggle is on."""
    fresh_for = jittered(ttl)
    entry = Entry(payload=payload, fresh_until=time.time() + fresh_for)
    timeout = fresh_for + settings.STAMPEDE_STALE_S
    return cache.set_if_unchanged(cache_key, entry, seen=seen, timeout=timeout)


def jittered(ttl: float) -> float:
    """A TTL drawn from [ttl × (1 − STAMPEDE_JITTER), ttl]: never longer than asked."""
    return ttl * (1 - settings.STAMPEDE_JITTER * random.random())


class Lock:
    """The single-flight lock of one key: `SET <key>:fill-lock <token> NX EX <ttl>`, released
    only by its holder (compare-and-delete), and freed by its TTL if the holder dies."""

    def __init__(self, cache_key: str) -> None:
        self.cache_key = cache_key
        self.lock_key = f"{cache_key}:fill-lock"
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool | None:
        """True if taken, False if another holds it, None if Redis is down."""
        return cache.add(self.lock_key, self.token, timeout=settings.STAMPEDE_LOCK_TTL_S)

    def release(self) -> None:
        cache.delete_if_equal(self.lock_key, self.token)


cache_aside.set_read_path(fetch)
