"""Take stock so that two buyers can never both get the last unit.

Off: the code a team writes first. Read the variants' stock, check that there is enough, save
the new stock. Between the read and the save another order can read the same stock; both
save "one less", both orders are placed, and one unit is sold twice (a lost update). Nothing
fails: the stock is simply wrong, by as many units as orders raced.

On: one of five strategies, chosen by `settings.INVENTORY_LOCKING_STRATEGY`:

- `conditional_update`: `UPDATE ... SET stock = stock - n WHERE stock >= n`. The check and the
  write are one statement, so there is no window. bulk_writes decides whether that is one
  UPDATE per line or one for all of them (shop/techniques/bulk_writes.py).
- `select_for_update`: the naive read, with `FOR UPDATE`: the rows stay locked from the read to
  the commit, so the next order reads them only after this one's write.
- `optimistic`: no lock at the read; the write says `WHERE version = <the version read>`. If
  another order wrote in between, no row matches and the attempt starts over, up to
  INVENTORY_LOCKING_ATTEMPTS.
- `serializable`: the naive code itself, in a SERIALIZABLE transaction. PostgreSQL aborts one
  of two orders that read and wrote the same stock; `retried` runs the whole order again.
- `redis_lock`: a lock per variant in Redis, held to the commit, around the naive code. The
  lock expires, so the write also checks the version read under it (`GUARD_WRITES`): a holder
  whose lock expired mid-transaction cannot overwrite the next holder's write.

Every strategy that locks takes its locks in primary-key order, so two orders for the same SKUs
queue in the same order and cannot deadlock. An order that cannot be served answers 409: not
enough stock, or (optimistic, serializable, redis_lock) too much contention to finish in time.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, transaction

from catalog.models import Variant
from shop import redis_lock, toggles
from shop.errors import Conflict
from shop.techniques import bulk_writes

logger = logging.getLogger(__name__)

TOGGLE = toggles.register(
    "inventory_locking",
    group="replicas",
    description="stock taken with a lock, a condition or a version instead of read-modify-write",
)

# False only to show the failure it prevents (tests/techniques/test_inventory_locking.py).
GUARD_WRITES = True

P = ParamSpec("P")
R = TypeVar("R")


def strategy() -> str:
    """The strategy the setting names: what "on" means."""
    name = settings.INVENTORY_LOCKING_STRATEGY
    if name not in _STRATEGIES:
        raise ImproperlyConfigured(
            f"INVENTORY_LOCKING_STRATEGY={name!r} is not one of {', '.join(_STRATEGIES)}"
        )
    return name


def take(*, quantities: Mapping[int, int]) -> set[int]:
    """Take `quantities[variant_id]` units of each variant, inside the caller's transaction
    (opened with `atomic()`), if every one of them has that many.

    Returns the ids of the variants that did not have enough; the caller raises and its
    transaction rolls back whatever was taken. Raises Conflict (409) when contention kept the
    strategy from finishing.
    """
    if not toggles.is_enabled(TOGGLE.name):
        return _take_naive(quantities)
    return _STRATEGIES[strategy()](quantities)


# --- off: read, check, save -----------------------------------------------------------------


def _take_naive(quantities: Mapping[int, int]) -> set[int]:
    variants = list(Variant.objects.filter(pk__in=quantities).order_by("pk").only("pk", "stock"))
    short = {v.pk for v in variants if v.stock < quantities[v.pk]}
    if short:
        return short
    _after_read()
    for variant in variants:
        # The stock read above, minus the order's: whatever another order took meanwhile is
        # overwritten.
        variant.stock -= quantities[variant.pk]
        variant.save(update_fields=["stock"])
    return set()


# --- on -------------------------------------------------------------------------------------


def _take_conditional_update(quantities: Mapping[int, int]) -> set[int]:
    return bulk_writes.stock_take(quantities=quantities)


def _take_select_for_update(quantities: Mapping[int, int]) -> set[int]:
    # ORDER BY under FOR UPDATE: PostgreSQL sorts, then locks each row as it hands it over, so
    # rows are locked in id order. A locked row is waited for, then read as committed.
    variants = list(
        Variant.objects.filter(pk__in=quantities)
        .order_by("pk")
        .select_for_update()
        .only("pk", "stock")
    )
    short = {v.pk for v in variants if v.stock < quantities[v.pk]}
    if short:
        return short
    _after_read()
    for variant in variants:
        variant.stock -= quantities[variant.pk]  # nobody can write it until we commit
        variant.save(update_fields=["stock"])
    return set()


class _Stale(Exception):
    """Another order wrote a row between this attempt's read and its write."""


def _take_optimistic(quantities: Mapping[int, int]) -> set[int]:
    attempts = settings.INVENTORY_LOCKING_ATTEMPTS
    for attempt in range(attempts):
        try:
            # A savepoint per attempt: a stale attempt undoes the lines it already wrote.
            with transaction.atomic():
                return _versioned_write(quantities)
        except _Stale:
            _count_retry()
            _backoff(attempt)
    raise _contention(f"the stock changed under {attempts} attempts in a row")


def _versioned_write(quantities: Mapping[int, int]) -> set[int]:
    rows, short = _read_versions(quantities)
    if short:
        return short
    _after_read()
    # Written in id order: the row locks the UPDATEs take queue every order the same way.
    for pk, stock, version in rows:
        written = Variant.objects.filter(pk=pk, version=version).update(
            stock=stock - quantities[pk], version=version + 1
        )
        if not written:
            raise _Stale(pk)
    return set()


def _read_versions(quantities: Mapping[int, int]) -> tuple[list[tuple[int, int, int]], set[int]]:
    """Each variant's (pk, stock, version), in pk order, and the pks short of their quantity."""
    rows = list(
        Variant.objects.filter(pk__in=quantities)
        .order_by("pk")
        .values_list("pk", "stock", "version")
    )
    return rows, {pk for pk, stock, _ in rows if stock < quantities[pk]}


def _take_serializable(quantities: Mapping[int, int]) -> set[int]:
    # The naive code: SERIALIZABLE, set by atomic(), makes it safe, and retried() reruns it.
    if not _isolation_is_serializable():
        raise RuntimeError(
            "the serializable strategy takes stock only in a transaction begun by "
            "inventory_locking.atomic()"
        )
    return _take_naive(quantities)


def _take_redis_lock(quantities: Mapping[int, int]) -> set[int]:
    held = _held.get()
    if held is None:
        raise RuntimeError(
            "the redis_lock strategy takes stock only inside inventory_locking.atomic(), "
            "which releases its locks after the commit"
        )
    for pk in sorted(quantities):  # id order: waiters queue the same way, no lock cycle
        try:
            held.append(
                redis_lock.acquire(
                    f"inventory:variant:{pk}",
                    ttl_ms=settings.INVENTORY_LOCKING_LOCK_TTL_MS,
                    wait_ms=settings.INVENTORY_LOCKING_LOCK_WAIT_MS,
                )
            )
        except redis_lock.LockTimeout as exc:
            raise _contention(str(exc)) from exc
    rows, short = _read_versions(quantities)
    if short:
        return short
    _after_read()
    for pk, stock, version in rows:
        rows_to_write = Variant.objects.filter(pk=pk)
        if GUARD_WRITES:
            # Our lock may have expired and another holder written since we read: then the
            # version moved, nothing matches, and this order is refused instead of
            # overwriting theirs.
            rows_to_write = rows_to_write.filter(version=version)
        if not rows_to_write.update(stock=stock - quantities[pk], version=version + 1):
            logger.warning("inventory lock on variant %s expired before its write", pk)
            raise _contention("the stock's lock expired before the order was written")
    return set()


_STRATEGIES: dict[str, Callable[[Mapping[int, int]], set[int]]] = {
    "conditional_update": _take_conditional_update,
    "select_for_update": _take_select_for_update,
    "optimistic": _take_optimistic,
    "serializable": _take_serializable,
    "redis_lock": _take_redis_lock,
}


# --- the transaction around an order --------------------------------------------------------

# The Redis locks taken in the current atomic() block, released when it ends.
_held: ContextVar[list[redis_lock.Lock] | None] = ContextVar("inventory_locks", default=None)


@contextmanager
def atomic() -> Iterator[None]:
    """`transaction.atomic()`, as the strategy in use needs it: SERIALIZABLE for
    `serializable` (set as the transaction's first statement, so before any read), and the
    Redis locks of `redis_lock` released once it has committed or rolled back."""
    serializable = toggles.is_enabled(TOGGLE.name) and strategy() == "serializable"
    outermost = not connection.in_atomic_block
    locks: list[redis_lock.Lock] = []
    token = _held.set(locks)
    try:
        with transaction.atomic():
            if serializable and outermost:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            yield
    finally:
        _held.reset(token)
        for lock in reversed(locks):
            if not redis_lock.release(lock):
                logger.warning("inventory lock %s had expired before its release", lock.key)


def retried(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` (which opens its own transaction) again when PostgreSQL aborted it with a
    serialization failure, as SERIALIZABLE does to all but one of the orders that raced; up to
    INVENTORY_LOCKING_ATTEMPTS times, then 409. Inside an outer transaction it does not retry:
    that transaction is the one aborted, and only its owner can run it again."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if connection.in_atomic_block:
            return func(*args, **kwargs)
        attempts = settings.INVENTORY_LOCKING_ATTEMPTS
        for attempt in range(attempts):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if getattr(exc.__cause__, "sqlstate", None) != _SERIALIZATION_FAILURE:
                    raise
                _count_retry()
                _backoff(attempt)
        raise _contention(f"{attempts} serializable attempts in a row were aborted")

    return run


_SERIALIZATION_FAILURE = "40001"


def _isolation_is_serializable() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        return cursor.fetchone()[0] == "serializable"


def _contention(reason: str) -> Conflict:
    logger.info("order refused under stock contention: %s", reason)
    return Conflict(
        "Too many orders for these items at once; nothing was ordered. Try again.",
        code="stock_contention",
    )


def _backoff(attempt: int) -> None:
    # Random and growing, so the orders that collided do not collide again in step: up to
    # 2, 4, 8 ... ms, capped at 50 ms.
    time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))


# --- what the tests and the bench observe ---------------------------------------------------

_retries = 0
_retries_lock = threading.Lock()


def _count_retry() -> None:
    global _retries
    with _retries_lock:
        _retries += 1


def retries() -> int:
    """Attempts started over in this process so far (optimistic and serializable): the cost
    of their contention that the bench reports."""
    return _retries


# A seam for the concurrency test: called between reading the stock and writing it. Unset in
# production. The race it widens is real: any two requests that read before either writes hit
# it. A test sets it to a barrier, so every buyer reads before any writes, every time.
_after_read_hook: Callable[[], None] | None = None


def _after_read() -> None:
    if _after_read_hook is not None:
        _after_read_hook()


@contextmanager
def after_read(hook: Callable[[], None]) -> Iterator[None]:
    """Call `hook` in every order between its read of the stock and its write, in every
    thread, for the duration of the block."""
    global _after_read_hook
    _after_read_hook = hook
    try:
        yield
    finally:
        _after_read_hook = None
