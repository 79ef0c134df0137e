"""Write-through: a write stores the new cached value together with the row, instead of
deleting it.

Off: cache-aside's invalidation (shop/techniques/cache_aside.py). A write drops the
cached entry once it commits, and the next read misses and rebuilds it from PostgreSQL: the
first reader after every price change pays for the rebuild (on a hot product, every reader
in the time one rebuild takes; stampede_protection is about that).

On: once the write commits, the writer rebuilds the entry itself and stores it, so the next
read is a hit with the new data. The writer pays the rebuild instead of a reader: a write
gets slower, reads after it do not miss.

**The race, and why the value is read back.** The obvious write-through stores the value
the writer has in hand, after its commit. Two writers of one price, A (10) then B (20):

    A commits 10 ─ B commits 20 ─ B stores 20 ─ A stores 10     → cache 10, row 20, for a TTL

Nothing orders the two stores: A's process was descheduled for a moment between its commit
and its store. So the value is never the writer's own: after the commit, the writer opens a
short transaction on the primary, locks the rows the cached value is built from
(`lock()`: `SELECT ... FOR NO KEY UPDATE`, what an `UPDATE` of them takes too), builds the
value from them as committed (`build()`), stores it, and only then commits and lets the
locks go. A later writer's `UPDATE` of those rows waits for that, so its own store comes
after; and a store that reads after a later commit stores that later value. Either way the
last store carries the last committed row. The cost: a writer waits for a concurrent
writer's read-back (a few milliseconds, a Redis round trip included). A replica is never
read here: it could be behind the commit that is being written through; nor is this
process's local_cache L1 (`local_cache.bypassed()`), which may be behind another process's.

**Failures.** If the read-back or the store fails (a deadlock, a statement timeout, Redis
down), the entry is dropped instead, as off: a write never leaves an entry older than its row.
With Redis down, the drop is lost too and the entry lives until its TTL, as in cache-aside.

**Readers racing it.** A reader that missed and read the row before the write committed
stores only if the key still holds what it saw (cache_aside's `set_if_unchanged`): the value
written through is a change, so that reader's old row is not stored over it.

What is written through is one entry per write: a product's detail page. The pages that list
the product (every list page, every category page with its facets) cannot be rebuilt by a
write: they are whatever URLs readers asked for. They are invalidated, as off
(cache_aside's list generation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction

from shop import cache, toggles
from shop.techniques import local_cache, read_replica, stampede_protection

TOGGLE = toggles.register(
    "write_through",
    group="caching",
    description="a write stores the new cached value with the row instead of deleting it",
)

logger = logging.getLogger(__name__)


def changed_on_commit(
    cache_key: str,
    *,
    build: Callable[[], Any],
    lock: Callable[[], None],
    ttl: float,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """The entry `cache_key` changes with the current transaction. Once it commits: off,
    delete the entry; on, store `build()`, run after `lock()` in a transaction of its own."""
    if not toggles.is_enabled(TOGGLE.name):
        _naive(cache_key, using=using)
    else:
        _optimized(cache_key, build=build, lock=lock, ttl=ttl, using=using)


def _naive(cache_key: str, *, using: str) -> None:
    """Invalidate: the next read misses and rebuilds the entry."""
    cache.invalidate_on_commit(cache_key, using=using)


def _optimized(
    cache_key: str, *, build: Callable[[], Any], lock: Callable[[], None], ttl: float, using: str
) -> None:
    transaction.on_commit(
        lambda: store_read_back(cache_key, build=build, lock=lock, ttl=ttl, using=using),
        using=using,
    )


def store_read_back(
    cache_key: str,
    *,
    build: Callable[[], Any],
    lock: Callable[[], None],
    ttl: float,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Lock the rows, build the value from them as committed, store it, then let them go.
    On any failure, drop the entry instead."""
    try:
        # Not from this process's local_cache L1 either: it may be behind another process's
        # write, and the entry stored here is what every process reads.
        with read_replica.on_primary(), local_cache.bypassed(), transaction.atomic(using=using):
            lock()
            payload = build()
            stored = store(cache_key, payload, ttl=ttl)
    except Exception:  # the write has committed: its answer must not turn into a 500
        logger.warning("write-through of %s failed; dropping it", cache_key, exc_info=True)
        stored = False
    if not stored:
        # Cache-aside's drop (a marker, not a DEL): a reader that read the row before this
        # write's commit then cannot store it after (shop.cache.set_if_unchanged).
        cache.invalidate(cache_key)


def store(cache_key: str, payload: Any, *, ttl: float) -> bool:
    """Store as the read path would have: an `Entry` with a soft expiry while
    stampede_protection is on, the plain payload while it is off."""
    if toggles.is_enabled(stampede_protection.TOGGLE.name):
        return stampede_protection.store(cache_key, payload, ttl=ttl)
    return cache.set(cache_key, payload, timeout=ttl)
