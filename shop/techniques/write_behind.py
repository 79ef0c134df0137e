"""Count product page views in Redis and add them to PostgreSQL in bulk, instead of one
`UPDATE` per view.

Off: the code a team writes first, and it is correct. Each view runs
`UPDATE catalog_product SET view_count = view_count + 1 WHERE id = %s` (an `F()` expression, so
two views at once both count) and commits it: a write, a row lock and a WAL flush on the
primary for every page view, on the most read page of the shop, even when the page itself
comes from a cache.

On: each view is one `HINCRBY` into a Redis hash (product id → views). A periodic flush
(`flush()`, run by beat every WRITE_BEHIND_FLUSH_EVERY_S, or `manage.py write_behind_flush`)
moves the hash into PostgreSQL with one `UPDATE ... FROM unnest(...)` for all its products. The
count in PostgreSQL is then up to a flush interval behind: the contract change the chapter
names. The public product payload does not show it either way.

**No counted view is lost, none is added twice, whatever point the flush dies at.**

1. *Cut.* One Lua script RENAMEs the live hash to a batch of its own (`batch:<flush id>`)
   and records the id in a set of pending batches, atomically. A view counted after the
   cut goes into a new live hash, for the next flush.
2. *Apply.* One PostgreSQL transaction inserts the batch's ledger row
   (`catalog.ViewCountFlush`, keyed by the flush id, `ON CONFLICT DO NOTHING`) and, only if
   that row is new, adds the batch's counts.
3. *Drop.* After the commit, a second script deletes the batch and its pending entry.

Every flush first finishes the batches an earlier one left pending. Killed before the commit,
PostgreSQL rolls the transaction back and the batch is applied then; killed after it, the
ledger row says it was applied and the batch is only dropped. Two flushes at once may take up
the same pending batch: the second one's ledger INSERT waits for the first's transaction and
then finds its row. Exactly once, in effect: the batch is at-least-once, the ledger makes its
application idempotent.

**Redis down.** Counting a view is not worth a 500, nor a lost view: a view whose Redis does not
answer is counted in PostgreSQL the naive way, with a warning, and so is every view for the
next WRITE_BEHIND_RETRY_S (a Redis that hangs costs one view its timeout, not every view).
A timeout whose HINCRBY Redis did apply counts that view twice, never zero times.
What Redis held when it died is lost unless it persisted it; the chapter gives the window.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from shop import toggles

TOGGLE = toggles.register(
    "write_behind",
    group="caching",
    description="count product views in Redis; a periodic flush adds them to PostgreSQL in bulk",
)

logger = logging.getLogger(__name__)

PRIMARY = "default"
# For the crash tests: with this set to a checkpoint's name ("cut", "applied", "committed"),
# the flush says so on stderr when it gets there and waits to be killed (tests/techniques/
# test_write_behind.py kills it with SIGKILL). Never set in production.
PAUSE_ENV = "WRITE_BEHIND_PAUSE_AT"

_down_until = 0.0  # monotonic; until then views go to PostgreSQL without trying Redis


def count_view(*, product_id: int) -> None:
    """Count one view of the product page. Call it once the product is known to exist (a 404
    counts nothing, and ids nobody has never become Redis entries), and on every view,
    including those a cache answers."""
    if not toggles.is_enabled(TOGGLE.name):
        _naive(product_id)
    else:
        _optimized(product_id)


def _naive(product_id: int) -> None:
    from catalog.models import Product

    # F(): the increment happens in PostgreSQL, so two views at once both count (a read, +1
    # in Python and save() would lose one). In autocommit, so one commit a view. update(), not
    # save(): no signal, and updated_at (auto_now) stays the product's last real change.
    Product.objects.filter(pk=product_id).update(view_count=F("view_count") + 1)


def _optimized(product_id: int) -> None:
    global _down_until
    if time.monotonic() < _down_until:
        _naive(product_id)
        return
    try:
        client().hincrby(_keys().live, str(product_id), 1)
    except redis.RedisError as exc:
        _down_until = time.monotonic() + settings.WRITE_BEHIND_RETRY_S
        logger.warning(
            "write_behind: Redis unavailable (%s: %s); counting views in PostgreSQL for %g s",
            type(exc).__name__,
            exc,
            settings.WRITE_BEHIND_RETRY_S,
        )
        _naive(product_id)


def reset() -> None:
    """Forget a Redis failure: the next view tries Redis again (tests, the bench)."""
    global _down_until
    _down_until = 0.0


# --- Redis -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    live: str  # the hash views are counted into now
    pending: str  # the set of batch ids cut and not yet dropped

    def batch(self, flush_id: str) -> str:
        return f"{self.live.rsplit(':', 1)[0]}:batch:{flush_id}"


def _keys() -> _Keys:
    # One hash tag for every key: they land on one Redis Cluster slot, as RENAME and a script
    # touching several keys require.
    base = f"{settings.WRITE_BEHIND_KEY_PREFIX}:{{product_views}}"
    return _Keys(live=f"{base}:live", pending=f"{base}:pending")


@lru_cache(maxsize=4)
def _client(url: str, timeout: float) -> redis.Redis:
    # Short timeouts: the call sits on the product page, and a Redis that does not answer must
    # cost a view a fraction of a second before it is counted in PostgreSQL, not seconds.
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def client() -> redis.Redis:
    return _client(settings.WRITE_BEHIND_REDIS_URL, settings.WRITE_BEHIND_REDIS_TIMEOUT_S)


# KEYS: live, batch, pending; ARGV: flush id. The cut: after it, HINCRBY creates a new live hash.
_CUT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: batch, pending; ARGV: flush id. Only once the batch is in PostgreSQL (or was empty).
_DROP = """
redis.call('DEL', KEYS[1])
return redis.call('SREM', KEYS[2], ARGV[1])
"""


def waiting() -> dict[int, int]:
    """Views counted in Redis and not yet in PostgreSQL, by product id (live and pending
    batches together). A pending batch already applied by a flush killed before it dropped
    it is included: only the next flush can tell."""
    redis_client, keys = client(), _keys()
    hashes = [keys.live, *(keys.batch(i.decode()) for i in redis_client.smembers(keys.pending))]
    totals: dict[int, int] = {}
    for key in hashes:
        for product_id, views in redis_client.hgetall(key).items():
            totals[int(product_id)] = totals.get(int(product_id), 0) + int(views)
    return totals


def discard() -> int:
    """Delete every count waiting in Redis, unflushed: for the tests and the bench, whose views
    are their own. Returns the keys deleted."""
    redis_client, keys = client(), _keys()
    batches = [keys.batch(i.decode()) for i in redis_client.smembers(keys.pending)]
    return redis_client.delete(keys.live, keys.pending, *batches)


# --- the flush -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flushed:
    """What one flush() did: batches applied to PostgreSQL (a pending one included), batches
    found already applied (left by a flush killed after its commit) and only dropped, and the
    views and distinct products it added."""

    applied: int = 0
    already_applied: int = 0
    views: int = 0
    products: int = 0

    def __add__(self, other: Flushed) -> Flushed:
        return Flushed(
            applied=self.applied + other.applied,
            already_applied=self.already_applied + other.already_applied,
            views=self.views + other.views,
            products=self.products + other.products,
        )


def flush() -> Flushed:
    """Move the views counted in Redis into `Product.view_count`: first the batches an
    earlier flush cut and did not drop, then the live hash. The loop body of the beat task
    and of `manage.py write_behind_flush`. Raises redis.RedisError or DatabaseError when
    either is down; what was cut stays pending for the next flush."""
    redis_client, keys = client(), _keys()
    done = Flushed()
    for pending in sorted(i.decode() for i in redis_client.smembers(keys.pending)):
        done += _apply(pending)
    # Sortable by time, unique across processes: a ledger that reads in order.
    flush_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
    if redis_client.eval(_CUT, 3, keys.live, keys.batch(flush_id), keys.pending, flush_id):
        _checkpoint("cut")
        done += _apply(flush_id)
    _prune()
    return done


def _apply(flush_id: str) -> Flushed:
    """Apply the batch `flush_id` to PostgreSQL once, then drop it from Redis."""
    from catalog.models import Product, ViewCountFlush

    redis_client, keys = client(), _keys()
    batch = keys.batch(flush_id)
    counts = sorted((int(p), int(n)) for p, n in redis_client.hgetall(batch).items())
    first = False
    if counts:  # empty: dropped meanwhile by another flush, after its commit
        ids, views = [p for p, _ in counts], [n for _, n in counts]
        with transaction.atomic(using=PRIMARY), connections[PRIMARY].cursor() as cursor:
            # The ledger row first: if another transaction has inserted it, this waits for that
            # one to end, then inserts nothing (it committed) or its own row (it rolled back).
            cursor.execute(
                f"INSERT INTO {ViewCountFlush._meta.db_table} "
                "(flush_id, products, views, applied_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (flush_id) DO NOTHING",
                [flush_id, len(ids), sum(views), timezone.now()],
            )
            first = cursor.rowcount == 1
            if first:
                # Every product of the batch in one statement, locked in id order (sorted
                # above) so two writers of the same rows cannot deadlock. bulk_update() cannot
                # say "+ n": it writes values read earlier, losing the views counted since.
                cursor.execute(
                    f"UPDATE {Product._meta.db_table} AS p "
                    "SET view_count = p.view_count + v.views "
                    "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, views) WHERE p.id = v.id",
                    [ids, views],
                )
            _checkpoint("applied")
        _checkpoint("committed")
    redis_client.eval(_DROP, 2, batch, keys.pending, flush_id)
    if not counts:
        return Flushed()
    if not first:
        logger.info("write_behind: batch %s was already applied; dropped it", flush_id)
        return Flushed(already_applied=1)
    return Flushed(applied=1, views=sum(views), products=len(ids))


def _prune() -> int:
    """Delete ledger rows older than WRITE_BEHIND_LEDGER_KEEP_DAYS. A batch is dropped from
    Redis seconds after its row commits, so a row that old has no batch left to guard."""
    from catalog.models import ViewCountFlush

    cutoff = timezone.now() - timedelta(days=settings.WRITE_BEHIND_LEDGER_KEEP_DAYS)
    deleted, _ = ViewCountFlush.objects.using(PRIMARY).filter(applied_at__lt=cutoff).delete()
    return deleted


def _checkpoint(point: str) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        sys.stderr.write(f"write_behind: paused at {point}\n")
        sys.stderr.flush()
        time.sleep(3600)
