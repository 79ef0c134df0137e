"""Keep the hottest, rarely changing lookups in the process itself, for a few seconds, in front
of Redis.

Some lookups are made by nearly every request and almost never change: which user a token
belongs to (every authenticated request), the category tree (every product list filtered by a
category), the tax and shipping rate tables (every shipping estimate). Redis already spares
PostgreSQL the query, but a Redis GET is still a network round trip, a pickle to load, and a
connection to share between threads: a few hundred microseconds a request, for an answer that
was the same a second ago.

Off: every hot lookup goes to Redis (L2, shop/cache.py), and to PostgreSQL on a miss, whose
answer it stores in Redis for the lookup's `l2_ttl_s`. The Redis layer is cache_aside's: with
that technique off too, every lookup is a query, the code before any cache.

On: a small in-process cache (L1) answers first: a dict in the worker's memory, bounded in
entries (LRU eviction past `maxsize`) and in age (each entry is dropped `ttl` seconds after it
was stored). A miss there asks Redis, then PostgreSQL, and keeps the answer in L1 too.

    lookup ─▶ L1 (this process, ~1 µs) ─▶ L2 Redis (every process, ~0.3 ms) ─▶ PostgreSQL

**The staleness bound.** L1 is not shared, so a write in one process cannot evict another
process's L1. A write evicts its own process's L1 and drops the Redis entry, at once and
again after its transaction commits (`evict`); every other process keeps serving what its L1 holds until that
entry's `ttl` runs out. The Redis entry is overwritten with a marker, not deleted, and a fill
stores only over what it read (`cache.set_if_unchanged`): a request that read the row before
the write's commit cannot store it after the eviction, in Redis (for every process, for
`l2_ttl_s`) or in its L1. So each lookup's `ttl` is the longest another process can answer with
the old value, and it is chosen per lookup (LOCAL_CACHE_*_TTL_S settings): 5 s for a token,
where it is how long a revoked token keeps working on the other workers.

**Threads.** A gunicorn worker serves several requests at once in threads, and they share L1.
`cachetools.TTLCache` is not thread-safe (a lookup reorders its LRU links, an insert may evict
another entry), so every access to it holds the L1's lock. The lock is held for a dict
operation only, never while Redis or PostgreSQL is asked: two threads that miss at once both
ask L2, and the second store wins with the same value.

**What is kept.** Plain values (tuples, dicts, ints), never model instances: a thread that
changed an attribute of a cached instance would change it for every later request. The token
lookup keeps the user's columns and builds a new User from them on each hit. Unknown keys are
never cached: a client sending random tokens would otherwise fill the LRU and evict the real
ones, and a token created a moment ago must work at once.

**Shared fills bypass L1** (`bypassed()`). A page stored in Redis is served to every process
for its own TTL (minutes), so it must not be built from this process's L1, which may be up to
a lookup's `ttl` behind another process's write: that old tree would then outlive the L1 bound
by the page's whole TTL. cache_aside's fill, stampede_protection's recompute and
write_through's read-back build their pages inside `bypassed()`, where every lookup is read as
with local_cache off (Redis, then PostgreSQL) and L1 is neither read nor written.

**Memory.** Bounded by `maxsize` entries per lookup; docs/techniques/local_cache.md has the
measured size of a full token L1 (`python manage.py local_cache_memory`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from cachetools import TTLCache
from django.conf import settings
from django.db import transaction

from shop import cache, toggles
from shop.techniques import read_replica

TOGGLE = toggles.register(
    "local_cache",
    group="caching",
    description="a small in-process LRU with a short TTL (L1) in front of Redis, for hot lookups",
)

T = TypeVar("T")

# The layer behind L1 is cache-aside's: Redis while that technique is on, else PostgreSQL.
L2_TOGGLE = "cache_aside"

# The clock L1's TTLs are measured with. Tests replace it (`clock_set`) to step time
# deterministically; nothing else should.
_clock: Callable[[], float] = time.monotonic


def _now() -> float:
    return _clock()


@contextmanager
def clock_set(clock: Callable[[], float]) -> Iterator[None]:
    """Measure L1's TTLs with `clock` inside the block (tests), on a fresh L1: entries timed
    with one clock are never compared with another's readings."""
    global _clock
    previous = _clock
    clear()
    _clock = clock
    try:
        yield
    finally:
        _clock = previous
        clear()


class LocalCache:
    """One lookup's L1: a `cachetools.TTLCache` (LRU past `maxsize`, each entry dropped `ttl`
    seconds after it was stored) behind a lock."""

    def __init__(self, *, maxsize: int, ttl: float) -> None:
        self.maxsize, self.ttl = maxsize, ttl
        self._lock = threading.Lock()
        self._entries: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl, timer=_now)

    def get(self, key: Hashable) -> Any:
        with self._lock:
            return self._entries.get(key, cache.MISS)

    def set(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = value

    def evict(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            self._entries.expire()
            return len(self._entries)


@dataclass(frozen=True)
class Lookup:
    """A hot lookup: its Redis key name and payload version, its TTLs, its L1 size."""

    name: str  # in its cache keys: "token"
    version: int  # of the payload's shape: bump it when the shape changes (shop/cache.py)
    ttl_setting: str  # the setting of L1's TTL: the staleness bound in other processes
    l2_ttl_s: float  # Redis: bounds what a lost invalidation (Redis down, a race) can cost
    maxsize: int  # entries in L1, per process

    def key(self, *parts: object) -> str:
        return cache.key(self.name, *parts, version=self.version)

    @property
    def ttl_s(self) -> float:
        return float(getattr(settings, self.ttl_setting))


# Per entry of the token L1: a few hundred bytes (the user's columns and the key), so 10 000
# tokens are a few MB per worker; more active tokens than that evict the least recent.
# Version 2 of each: an eviction's marker is now shop.cache's (`invalidate`), which version 1's
# code would take for a value.
TOKENS = Lookup("token", 2, "LOCAL_CACHE_TOKEN_TTL_S", l2_ttl_s=60, maxsize=10_000)
# One entry each: the whole table (tens of rows), as the code that uses it walks all of it.
CATEGORY_TREE = Lookup("category-parents", 2, "LOCAL_CACHE_CATEGORY_TTL_S", 300, maxsize=1)
TAX_RATES = Lookup("tax-rates", 2, "LOCAL_CACHE_RATES_TTL_S", l2_ttl_s=300, maxsize=1)
SHIPPING_RATES = Lookup("shipping-rates", 2, "LOCAL_CACHE_RATES_TTL_S", l2_ttl_s=300, maxsize=1)
LOOKUPS = (TOKENS, CATEGORY_TREE, TAX_RATES, SHIPPING_RATES)

_l1: dict[str, LocalCache] = {}
_l1_lock = threading.Lock()


def l1(lookup: Lookup) -> LocalCache:
    """This process's L1 for `lookup`, made on first use with the TTL the settings give then."""
    local = _l1.get(lookup.name)
    if local is None:
        with _l1_lock:
            local = _l1.setdefault(
                lookup.name, LocalCache(maxsize=lookup.maxsize, ttl=lookup.ttl_s)
            )
    return local


def clear() -> None:
    """Empty every L1 of this process (tests, before each one; the bench's cold runs)."""
    with _l1_lock:
        _l1.clear()


_bypassed: ContextVar[bool] = ContextVar("local_cache_bypassed", default=False)


@contextmanager
def bypassed() -> Iterator[None]:
    """Inside the block (this thread or task only), every lookup skips L1, as with local_cache
    off: read from Redis, else PostgreSQL, and L1 left as it was (neither read nor refilled).
    For code that builds a value stored in a shared cache: it must not carry this process's
    L1, which may be older than what other processes already see."""
    token = _bypassed.set(True)
    try:
        yield
    finally:
        _bypassed.reset(token)


def fetch(lookup: Lookup, key: str, compute: Callable[[], T | None]) -> T | None:
    """The value of `key`: from L1 (local_cache on), else Redis (cache_aside on: the shared
    layer is cache-aside's), else `compute()`, PostgreSQL, whose answer is stored on the way
    back in each layer that is on. A None from `compute` (nothing found) is returned and never
    stored. Inside `bypassed()`, L1 counts as off.

    A value about to be stored is read on the primary: a replica a second behind could
    answer the row as it was before the write whose eviction just ran, and that old row
    would then be served for a whole TTL with no write left to evict it.
    """
    on = toggles.is_enabled(TOGGLE.name) and not _bypassed.get()
    local = l1(lookup) if on else None
    if local is not None:
        value = local.get(key)
        if value is not cache.MISS:
            return value
    shared = toggles.is_enabled(L2_TOGGLE)
    value, seen = cache.get_seen(key) if shared else (cache.MISS, cache.ABSENT)
    if value is cache.MISS:
        if not shared and local is None:
            return compute()  # nothing to store: read as the request reads
        with read_replica.on_primary():
            value = compute()
        if value is None:
            return None
        if shared:
            stored = cache.set_if_unchanged(key, value, seen=seen, timeout=lookup.l2_ttl_s)
            if stored is False:
                # An eviction ran since the GET above (or another fill stored first): what
                # compute() read may be the row before that write. This request's answer,
                # kept in neither layer.
                return value
    if local is not None:
        local.set(key, value)
    return value


def evict(lookup: Lookup, *keys: str, using: str = "default") -> None:
    """Drop `keys` from this process's L1 and from Redis: at once, and inside a transaction
    once more after it commits. At once, so the rest of the writing transaction (a test's, a
    request's) never reads the old value; after the commit, because until then a concurrent
    reader still reads the old row and may have cached it again. Other processes' L1 keep
    them until their TTL."""
    if not keys:
        return

    def drop() -> None:
        local = _l1.get(lookup.name)
        if local is not None:
            for key in keys:
                local.evict(key)
        # A marker of this drop, not a DEL: a fill that read the key before it (and so maybe
        # the row before the write) finds it changed and does not store (`fetch`).
        cache.invalidate(*keys, timeout=lookup.l2_ttl_s)

    drop()
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(drop, using=using)


# ---------------------------------------------------------------------------------------------
# The token → user lookup (shop/authentication.py).

# The user's columns kept for a token: what authorization reads. Not the password hash (a
# credential has no business in a cache), nor last_login (written by session logins, read by
# nobody here): left deferred, read from PostgreSQL if anything ever asks.
USER_FIELDS = (
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
)


def token_key(key: str) -> str:
    """The cache key of a token: its SHA-256, never the token itself, so the credential does
    not appear in Redis's key space (SCAN, MONITOR, a dump)."""
    return TOKENS.key(hashlib.sha256(key.encode()).hexdigest())


def token_user(key: str, lookup: Callable[[str], tuple[Any, Any]]) -> tuple[Any, Any]:
    """`(user, token)` for a token key, as DRF's `authenticate_credentials` answers: through
    L1 (on) and Redis. `lookup(key)` is the PostgreSQL lookup, which raises for an unknown key
    or an inactive user (nothing is cached then)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    found: list[tuple[Any, Any]] = []

    def compute() -> tuple:
        user, token = lookup(key)
        found.append((user, token))
        return ({name: getattr(user, name) for name in USER_FIELDS}, token.created)

    columns, created = fetch(TOKENS, token_key(key), compute)
    if found:  # computed here: the instances PostgreSQL answered
        return found[0]
    user_model = get_user_model()
    # from_db takes the values in the model's column order; the others are left deferred.
    names = [f.attname for f in user_model._meta.concrete_fields if f.attname in columns]
    user = user_model.from_db("default", names, [columns[name] for name in names])
    token = Token.from_db("default", ("key", "user_id", "created"), (key, user.pk, created))
    token.user = user
    return user, token


def full_l1_bytes(lookup: Lookup = TOKENS) -> int:
    """The memory of a token L1 filled to `maxsize` with entries shaped as the token lookup
    keeps them (its keys, the user's columns, the token's date): what one process holds at
    most, measured with tracemalloc. A separate L1, so the serving one is untouched."""
    import tracemalloc
    from datetime import UTC, datetime

    joined = datetime(2026, 1, 1, tzinfo=UTC)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        local = LocalCache(maxsize=lookup.maxsize, ttl=3600)
        for n in range(lookup.maxsize):
            columns = {
                "id": 100_000 + n,
                "username": f"customer{100_000 + n}",
                "email": f"customer{100_000 + n}@example.com",
                "first_name": f"First{n}",
                "last_name": f"Last{n}",
                "is_active": True,
                "is_staff": False,
                "is_superuser": False,
                "date_joined": joined.replace(microsecond=n % 1_000_000),
            }
            local.set(token_key(f"{n:040x}"), (columns, joined.replace(second=n % 60)))
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _token_deleted(sender, instance, using, **kwargs) -> None:
    evict(TOKENS, token_key(instance.key), using=using)


# Saves that change nothing the token lookup keeps (a session login's last_login).
_USER_FIELDS_NOT_KEPT = frozenset({"last_login", "password"})


def _user_saved(sender, instance, created, using, update_fields=None, **kwargs) -> None:
    from rest_framework.authtoken.models import Token

    if created or (update_fields is not None and set(update_fields) <= _USER_FIELDS_NOT_KEPT):
        return
    keys = Token.objects.using(using).filter(user_id=instance.pk).values_list("key", flat=True)
    evict(TOKENS, *(token_key(key) for key in keys), using=using)


# ---------------------------------------------------------------------------------------------
# The category tree (catalog/selectors.py): every (id, parent_id) pair. The tax and shipping
# rate tables are read in orders/rates.py, with TAX_RATES and SHIPPING_RATES.


def category_parents() -> dict[int, int | None]:
    from catalog.models import Category

    def compute() -> dict[int, int | None]:
        return dict(Category.objects.values_list("id", "parent_id"))

    return fetch(CATEGORY_TREE, CATEGORY_TREE.key(), compute)


def _category_changed(sender, instance, using, **kwargs) -> None:
    evict(CATEGORY_TREE, CATEGORY_TREE.key(), using=using)


def _rates_changed(sender, instance, using, **kwargs) -> None:
    from orders.models import TaxRate

    lookup = TAX_RATES if sender is TaxRate else SHIPPING_RATES
    evict(lookup, lookup.key(), using=using)


def connect_signals() -> None:
    """Evict on every ORM write to what the lookups keep (shop.apps, at start-up). Writes that
    send no signal (`QuerySet.update`, raw SQL, the seed's COPY) are bounded by the TTLs, or
    call `evict` themselves."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save
    from rest_framework.authtoken.models import Token

    from catalog.models import Category
    from orders.models import ShippingRate, TaxRate

    post_delete.connect(_token_deleted, sender=Token, dispatch_uid="local_cache.token")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="local_cache.user")
    for signal in (post_save, post_delete):
        signal.connect(_category_changed, sender=Category, dispatch_uid="local_cache.category")
        for model in (TaxRate, ShippingRate):
            signal.connect(_rates_changed, sender=model, dispatch_uid=f"local_cache.{model._meta}")
