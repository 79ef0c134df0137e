"""Cache-aside: read a page's payload from Redis, and on a miss build it from PostgreSQL and
store it with a TTL; every write that changes what a cached page shows drops it on commit.

Off (the code a team writes first): every read of a product, a list page, the category tree
or a category page runs its queries, however often the same page was just built.

On, `fetch(key, compute, ttl=...)`:

1. GET the key from Redis. A hit is the answer: no query at all.
2. A miss (absent, expired, dropped by a write, or Redis down) runs `compute()`, the very
   function the off path runs, so the two answers are the same bytes, then stores the payload
   with its TTL, if no write dropped the key meanwhile (see below). The fill reads the
   primary, never the replica: a replica a second behind would store the row as it was
   before the write that just dropped the entry, for a whole TTL, and no later write would
   come to drop it. Nor does it read this process's
   local_cache L1 (`local_cache.bypassed()`): the category tree there may be seconds behind
   another process's write, and a page built from it would be served by Redis, to every
   process, for the page's whole TTL.

**Invalidation runs on commit** (`shop.cache.invalidate_on_commit`). Dropping the entry before
the commit lets a concurrent reader read the old row and cache it again before the new one is
visible. On commit, one window is left: a reader that read the old row just before the commit
and stores it just after the drop. That one is closed by how the drop and the store are made
(`shop.cache`): the drop overwrites the key with a marker of its own instead of deleting it,
and a fill stores only if the key still holds what its GET saw (`set_if_unchanged`, one Lua
compare-and-set). A fill that read before the drop finds the marker and does not store; it
answers its own request with what it read, as it would have a moment earlier.

**List pages are invalidated by generation, not by key.** A price change moves the product
on every list page that shows it: every page number, page size, filter and search of every
category above it. Enumerating those keys is impossible (they are whatever URLs clients
asked for), so every list key carries the catalog's list generation, a counter in Redis, and
a change that any list shows bumps it on commit (`invalidate_on_commit(lists=True)`). The old entries
are never read again and expire on their own TTL. The counter starts at the clock in
nanoseconds, not 1, so a counter lost with Redis's memory never comes back at a value whose
old entries still exist.

**Which write invalidates what** (the callers are the services that write; see the chapter):

| write                            | product detail | list pages (generation) | category tree |
|----------------------------------|----------------|-------------------------|---------------|
| a variant's price                | its product    | bumped (price from, price facets) | -    |
| a variant's stock (orders too)   | its product    | - (no list shows stock) | -             |
| a review (rating, review count)  | its product    | bumped (rating, rating facets) | -      |
| a review deleted (a cascade too) | its product    | bumped                  | -             |
| a product moved to a category    | its product    | bumped                  | -             |
| a category moved (new parent)    | -              | bumped (descendants)    | deleted       |
| a bulk import                    | - (new ids)    | bumped                  | -             |
| a drifted rating repaired        | its product    | bumped                  | -             |

**Redis down.** `shop.cache` answers a miss and logs a warning: reads come from PostgreSQL
(slower, never a 500), and a write's drop is lost, so an entry may be served until its TTL.
That, and only that, is the staleness this technique allows.

The read is a seam: `read()` (a GET, then `fill()` on a miss: compute and store);
`set_read_path()` lets the stampede_protection technique put its protected read (a lock on
the fill, a soft expiry inside the stored value) in its place under its own toggle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from django.db import DEFAULT_DB_ALIAS, transaction

from shop import cache, toggles
from shop.techniques import local_cache, read_replica

TOGGLE = toggles.register(
    "cache_aside",
    group="caching",
    description="Redis cache-aside with TTL and event-based invalidation on commit",
)


class ReadPath(Protocol):
    def __call__(self, cache_key: str, compute: Callable[[], Any], *, ttl: float) -> Any: ...


def fetch(cache_key: str, compute: Callable[[], Any], *, ttl: float) -> Any:
    """The payload cached under `cache_key`, or `compute()`'s, stored for `ttl` seconds."""
    if not toggles.is_enabled(TOGGLE.name):
        return compute()  # naive: every read runs its queries
    return _read_path(cache_key, compute, ttl=ttl)


def read(cache_key: str, compute: Callable[[], Any], *, ttl: float) -> Any:
    """The plain read: a hit is the answer, a miss fills."""
    payload, seen = cache.get_seen(cache_key)
    if payload is not cache.MISS:
        return payload  # a hit: no query
    return fill(cache_key, compute, ttl=ttl, seen=seen)


def fill(cache_key: str, compute: Callable[[], Any], *, ttl: float, seen: bytes) -> Any:
    """The plain miss path: compute on the primary, then store, unless the key changed since
    the GET that saw `seen` (a write dropped it: what `compute()` read may be the row before
    that write). N concurrent misses of one key compute N times (the stampede that
    stampede_protection's read path prevents). local_cache's L1 is bypassed: what is stored
    here is served to every process."""
    with read_replica.on_primary(), local_cache.bypassed():
        payload = compute()
    cache.set_if_unchanged(cache_key, payload, seen=seen, timeout=ttl)
    return payload


_read_path: ReadPath = read


def set_read_path(path: ReadPath | None) -> None:
    """Read through `path` instead of `read` (None: back to `read`). For the
    stampede_protection technique, whose path decides under its own toggle and calls `fill`
    when it is off."""
    global _read_path
    _read_path = read if path is None else path


# --- list pages: keys under a generation ---------------------------------------------------


def _generation_key() -> str:
    return cache.key("list-generation", version=1)


def list_generation() -> int | None:
    """The catalog's current list generation, which every list key includes; None when Redis
    does not answer."""
    current = cache.get(_generation_key())
    if current is not cache.MISS:
        return current
    # Absent (first use, or evicted): start at the clock, never at a value used before.
    started = time.time_ns()
    added = cache.add(_generation_key(), started, timeout=None)
    if added is None:
        return None  # Redis down
    if added:
        return started
    current = cache.get(_generation_key())  # another process started it first
    return None if current is cache.MISS else current


def fetch_list(name: str, *parts: object, compute: Callable[[], Any], ttl: float, version: int):
    """`fetch` for a list page, keyed `name:v<version>:g<generation>:<parts>`. Off, no Redis
    call at all (not even the generation's GET); Redis down, PostgreSQL answers."""
    if not toggles.is_enabled(TOGGLE.name):
        return compute()
    generation = list_generation()
    if generation is None:
        return compute()  # Redis down: shop.cache has logged it
    return fetch(cache.key(name, f"g{generation}", *parts, version=version), compute, ttl=ttl)


# --- invalidation, on commit ------------------------------------------------------------------
# Whatever the toggle: a change made while it is off must not leave an entry that turning it
# on would serve.


def bump_list_generation() -> None:
    """Move every list page to a new generation now: one INCR, whatever the number of pages.
    An absent counter needs nothing: the next read starts a new generation from the clock."""
    cache.incr(_generation_key())


def invalidate_on_commit(*cache_keys: str, lists: bool, using: str = DEFAULT_DB_ALIAS) -> None:
    """Once the current transaction commits (at once outside one): drop `cache_keys`, and
    with `lists` move every list page to a new generation."""
    cache.invalidate_on_commit(*cache_keys, using=using)
    if lists:
        transaction.on_commit(bump_list_generation, using=using)
