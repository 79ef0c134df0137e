"""stampede_protection: one recomputation per expiry instead of one per concurrent reader.

Real Redis (this run's key prefix) and real PostgreSQL: each concurrent reader is a thread
with its own database connection (tests/concurrency.py). The recomputation is made slow
enough for every reader to overlap it by a gate, not a sleep: it waits until every reader has
read the key (each reader's first `shop.cache.get_seen`, which `get` reads through too), so off, all of them have missed before
any stores, and on, all of them are past their GET while the one fill runs. Nothing here
depends on timing but the generous bounds that keep a broken build from hanging.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client, override_settings

from catalog import selectors
from shop import cache, toggles
from shop.private_broker import PrivateBroker
from shop.techniques import cache_aside, local_cache, stampede_protection
from shop.techniques.stampede_protection import Entry
from tests.concurrency import run_concurrently
from tests.factories import BrandFactory, CategoryFactory, ProductFactory, VariantFactory

READERS = 50
STATES = [pytest.param(False, id="off"), pytest.param(True, id="on")]
KEY = cache.key("stampede-test", "hot", version=1)
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def stampede_settings(settings):
    # Long enough that no waiter gives up while the gated fill runs on a loaded machine: the
    # count below is then exact, never timing-dependent.
    settings.STAMPEDE_WAIT_S = 30.0
    settings.STAMPEDE_LOCK_TTL_S = 30.0
    settings.STAMPEDE_POLL_S = 0.01
    return settings


class Readers:
    """Counts each thread's reads of KEY and the recomputations, and gates the latter."""

    def __init__(self, monkeypatch, *, expected: int) -> None:
        self.expected = expected
        self.readers: set[int] = set()
        self.computes = 0
        self.changed = threading.Condition()
        real_get_seen = cache.get_seen

        def get_seen(cache_key):
            read = real_get_seen(cache_key)
            if cache_key == KEY:
                with self.changed:
                    self.readers.add(threading.get_ident())
                    self.changed.notify_all()
            return read

        monkeypatch.setattr(cache, "get_seen", get_seen)

    def compute(self) -> dict:
        """A real query on this thread's own connection, once every reader has read KEY."""
        with self.changed:
            self.computes += 1
            assert self.changed.wait_for(lambda: len(self.readers) >= self.expected, 60)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 6 * 7")
            (answer,) = cursor.fetchone()
        return {"answer": answer}


def skips_l1(payload: str):
    """A compute that records whether it ran past local_cache's L1 (`local_cache.bypassed()`)."""
    skipped: list[bool] = []

    def compute() -> str:
        skipped.append(local_cache._bypassed.get())
        return payload

    return compute, skipped


def fetch(on: bool, compute, *, ttl: float = 60) -> object:
    with toggles.override(cache_aside=True, stampede_protection=on):
        return cache_aside.fetch(KEY, compute, ttl=ttl)


@pytest.mark.parametrize("on", STATES)
def test_50_concurrent_misses_recompute_once_on_and_50_times_off(on, monkeypatch):
    readers = Readers(monkeypatch, expected=READERS)
    answers = run_concurrently(lambda _i: fetch(on, readers.compute), count=READERS)
    assert answers == [{"answer": 42}] * READERS
    assert readers.computes == (1 if on else READERS)
    stored = cache.get(KEY)
    assert (stored.payload if on else stored) == {"answer": 42}


def test_a_miss_that_takes_the_lock_after_another_fill_finished_does_not_compute(monkeypatch):
    """The miss read the key before the other request's fill stored it, and takes the lock
    after that request released it: it reads the key again under the lock."""
    assert fetch(True, lambda: "filled") == "filled"
    real_get_seen, reads = cache.get_seen, []

    def get_seen(cache_key):
        reads.append(cache_key)
        # The first read: early, before the key was filled.
        return (cache.MISS, cache.ABSENT) if len(reads) == 1 else real_get_seen(cache_key)

    monkeypatch.setattr(cache, "get_seen", get_seen)
    assert fetch(True, lambda: "computed again") == "filled"
    assert reads == [KEY, KEY]


def test_a_stale_entry_is_served_at_once_while_one_request_refreshes_it(monkeypatch):
    cache.set(KEY, Entry(payload="old", fresh_until=time.time() - 1), timeout=60)
    served_stale = threading.Semaphore(0)
    computes = []

    def refresh():
        computes.append(threading.get_ident())
        # The refresh finishes only once every other reader has been answered: they were
        # served while it ran, not after it.
        for _ in range(9):
            assert served_stale.acquire(timeout=60)
        return "new"

    def read(_i):
        answer = fetch(True, refresh)
        if answer == "old":
            served_stale.release()
        return answer

    answers = run_concurrently(read, count=10)
    assert Counter(answers) == {"old": 9, "new": 1}
    assert len(computes) == 1
    assert fetch(True, refresh) == "new"  # fresh now: no compute
    assert len(computes) == 1


def test_a_stale_entry_is_refreshed_only_by_the_request_holding_the_lock():
    cache.set(KEY, Entry(payload="old", fresh_until=time.time() - 1), timeout=60)
    held = stampede_protection.Lock(KEY)
    assert held.acquire()
    assert fetch(True, lambda: "new") == "old"  # another request is refreshing it
    held.release()
    assert fetch(True, lambda: "new") == "new"


def test_past_the_hard_ttl_a_waiter_computes_itself_when_the_holder_never_stores(settings):
    settings.STAMPEDE_WAIT_S = 0.2
    dead = stampede_protection.Lock(KEY)
    assert dead.acquire()  # a holder that died with its lock
    compute, skipped_l1 = skips_l1("computed")
    assert fetch(True, compute) == "computed"
    assert cache.get(KEY) is cache.MISS  # the last resort does not store: the fill is the holder's
    assert skipped_l1 == [False]  # so this process's L1 may serve it


def test_a_fill_computes_past_this_processs_l1():
    compute, skipped_l1 = skips_l1("computed")
    assert fetch(True, compute) == "computed"
    assert cache.get(KEY).payload == "computed"  # stored for every process
    assert skipped_l1 == [True]


def test_a_waiter_takes_over_the_fill_when_a_dead_holders_lock_expires(settings):
    cache.add(f"{KEY}:fill-lock", "dead holder", timeout=1)  # Redis TTLs are whole seconds
    assert fetch(True, lambda: "computed") == "computed"
    assert cache.get(KEY).payload == "computed"  # it took the lock and filled


def test_a_failed_fill_releases_the_lock_for_the_next_request():
    def broken():
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        fetch(True, broken)
    assert cache.get(f"{KEY}:fill-lock") is cache.MISS
    assert fetch(True, lambda: "computed") == "computed"


def test_a_lock_is_released_only_by_its_holder():
    mine, theirs = stampede_protection.Lock(KEY), stampede_protection.Lock(KEY)
    assert mine.acquire() is True
    assert theirs.acquire() is False
    theirs.release()  # not its lock: nothing happens
    assert cache.get(f"{KEY}:fill-lock") == mine.token
    mine.release()
    assert cache.get(f"{KEY}:fill-lock") is cache.MISS


def test_jittered_ttls_differ_and_never_exceed_the_ttl_asked():
    keys = [cache.key("stampede-test", i, version=1) for i in range(20)]
    before = time.time()
    for key in keys:
        assert stampede_protection.store(key, "payload", ttl=1000, seen=cache.ABSENT)
    fresh_for = [cache.get(key).fresh_until - before for key in keys]
    assert len({round(seconds) for seconds in fresh_for}) > 1
    assert all(900 - 1 <= seconds <= 1000 + 1 for seconds in fresh_for)
    backend = cache.backend()
    redis_ttls = [
        backend._cache.get_client(key).ttl(backend.make_and_validate_key(key)) for key in keys
    ]
    assert len(set(redis_ttls)) > 1  # the hard expiries are spread too
    assert all(900 + 30 - 1 <= ttl <= 1000 + 30 for ttl in redis_ttls)


def test_the_plain_path_and_the_protected_path_read_each_others_entries():
    assert fetch(True, lambda: "filled on") == "filled on"
    assert fetch(False, lambda: "recomputed") == "filled on"  # the Entry unwrapped
    cache.delete(KEY)
    assert fetch(False, lambda: "filled off") == "filled off"
    assert fetch(True, lambda: "recomputed") == "filled off"  # a plain entry is a hit


@pytest.mark.parametrize("on", STATES)
def test_with_redis_down_every_request_computes_and_none_fails(on, tmp_path, settings):
    with PrivateBroker(tmp_path / "redis") as redis_server:
        caches = {"default": {**settings.CACHES["default"], "LOCATION": redis_server.url}}
        with override_settings(CACHES=caches):
            assert fetch(on, lambda: "computed") == "computed"  # up: filled
            redis_server.stop()
            computes = []

            def compute():
                computes.append(1)
                return "from PostgreSQL"

            answers = run_concurrently(lambda _i: fetch(on, compute), count=5)
    assert answers == ["from PostgreSQL"] * 5
    assert len(computes) == 5


def test_with_redis_down_the_protected_path_computes_through_l1(tmp_path, settings):
    """Nothing is stored while Redis does not answer, so this process's L1 (the category
    tree, the tokens) still spares PostgreSQL in the compute."""
    with PrivateBroker(tmp_path / "redis") as redis_server:
        caches = {"default": {**settings.CACHES["default"], "LOCATION": redis_server.url}}
        with override_settings(CACHES=caches):
            redis_server.stop()
            compute, skipped_l1 = skips_l1("from PostgreSQL")
            assert fetch(True, compute) == "from PostgreSQL"
    assert skipped_l1 == [False]


# --- through the API: the category page ---------------------------------------------------------


@pytest.fixture
def category_page(db):
    """A category with a subcategory, products of two brands with variants: its page runs the
    facet aggregates the technique protects."""
    home = CategoryFactory(name="Home")
    kitchen = CategoryFactory(name="Kitchen", parent=home)
    brands = [BrandFactory(), BrandFactory()]
    for i in range(6):
        product = ProductFactory(category=(home, kitchen)[i % 2], brand=brands[i % 2])
        VariantFactory(product=product, price=Decimal(f"{5 + 20 * i}.00"))
    return f"/api/categories/{home.pk}/products/"


def header(**flags: bool) -> dict[str, str]:
    return {"HTTP_X_PERF_TOGGLES": toggles.format_flags(flags)}


@pytest.mark.parametrize("on", STATES)
def test_50_concurrent_requests_at_an_expired_category_page_build_it_once_on(
    on, category_page, monkeypatch
):
    uncached = Client().get(category_page, **header(cache_aside=False))
    assert uncached.status_code == 200
    readers, builds = set(), []
    changed = threading.Condition()
    real_get_seen, real_facets = cache.get_seen, selectors.category_facets

    def get_seen(cache_key):
        read = real_get_seen(cache_key)
        if ":category-page:" in cache_key:
            with changed:
                readers.add(threading.get_ident())
                changed.notify_all()
        return read

    def facets(**kwargs):
        """One per build of the page; it waits until every request has read the page's key."""
        with changed:
            builds.append(threading.get_ident())
            assert changed.wait_for(lambda: len(readers) >= READERS, 60)
        return real_facets(**kwargs)

    monkeypatch.setattr(cache, "get_seen", get_seen)
    monkeypatch.setattr(selectors, "category_facets", facets)
    flags = header(cache_aside=True, stampede_protection=on, write_through=False)
    responses = run_concurrently(lambda _i: Client().get(category_page, **flags), count=READERS)
    assert [response.status_code for response in responses] == [200] * READERS
    assert all(response.content == uncached.content for response in responses)
    assert len(builds) == (1 if on else READERS)


def test_with_redis_down_the_category_page_is_served_from_postgresql(
    category_page, tmp_path, settings
):
    uncached = Client().get(category_page, **header(cache_aside=False))
    with PrivateBroker(tmp_path / "redis") as redis_server:
        caches = {"default": {**settings.CACHES["default"], "LOCATION": redis_server.url}}
        with override_settings(CACHES=caches):
            redis_server.stop()
            response = Client().get(
                category_page, **header(cache_aside=True, stampede_protection=True)
            )
    assert response.status_code == 200
    assert response.content == uncached.content
    assert "errors=" in response["X-Cache-Ops"] and "errors=0" not in response["X-Cache-Ops"]
