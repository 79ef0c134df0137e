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

**Readers and other writers racing it.** The read-back first drops the entry (cache-aside's
marker), so a reader that missed and read the row before the write committed cannot store it
(cache_aside's `set_if_unchanged`), neither before the value written through nor over it. And
the value itself is stored only over what the key held once the locks were taken: a write
that the locks do not order (a category renamed, which locks no product row) and that drops
the key while the page is built is not overwritten by a page built before it. A refused store
is left as it is, with no drop of its own: it ran after the locks are let go, and could land on
the page a later writer had just stored under them.

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
    """Drop the entry, lock the rows, build the value from them as committed, store it over
    what the key held once the locks were taken, then let them go. On any failure, drop the
    entry instead. A store refused because the key changed meanwhile is left as it is: what
    changed it is another write's drop, or a fill that read after this write's drop."""
    # First the drop, as off: a reader that read the row before this write's commit can no
    # longer store it (shop.cache.set_if_unchanged) in the moment before the value below is.
    cache.invalidate(cache_key)
    try:
        # Not from this process's local_cache L1 either: it may be behind another process's
        # write, and the entry stored here is what every process reads.
        with read_replica.on_primary(), local_cache.bypassed(), transaction.atomic(using=using):
            lock()
            # Another write that this one's locks do not order (a category renamed: no
            # product row locked) may drop the key while this builds: stored only over what
            # is seen here, so that drop is never overwritten with a page built before it.
            _held, seen = cache.get_seen(cache_key)
            payload = build()
            stored = store(cache_key, payload, ttl=ttl, seen=seen)
    except Exception:  # the write has committed: its answer must not turn into a 500
        logger.warning("write-through of %s failed; dropping it", cache_key, exc_info=True)
        stored = None
    if stored is None:
        # Failed, not refused: cache-aside's drop (a marker, not a DEL). Not on a refusal:
        # run after the locks are let go, a drop there could land on the page a later writer
        # has just stored under them, and turn its next read into a miss.
        cache.invalidate(cache_key)


def store(cache_key: str, payload: Any, *, ttl: float, seen: bytes) -> bool | None:
    """Store as the read path would have, only if the key still holds `seen`: an `Entry` with
    a soft expiry while stampede_protection is on, the plain payload while it is off. True if
    stored, False if the key changed, None if Redis failed."""
    if toggles.is_enabled(stampede_protection.TOGGLE.name):
        return stampede_protection.store(cache_key, payload, ttl=ttl, seen=seen)
    return cache.set_if_unchanged(cache_key, payload, seen=seen, timeout=ttl)
