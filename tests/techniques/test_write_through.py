"""write_through: a write stores the new cached value with the row instead of deleting it.

The mechanism (shop/techniques/write_through.py) on a value built from real rows: a product's
variant prices, cached in this run's Redis. The writers are real transactions, each on a
thread and so a connection of its own, committed.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from catalog import payloads
from catalog.models import Category, Variant
from catalog.selectors import category_with_descendant_ids
from shop import cache, toggles
from shop.perf_headers import parse_cache_ops, parse_query_counts
from shop.private_broker import PrivateBroker
from shop.techniques import local_cache, write_through
from shop.techniques.stampede_protection import Entry
from tests.concurrency import run_concurrently
from tests.factories import CategoryFactory, UserFactory, VariantFactory

STATES = [pytest.param(False, id="off"), pytest.param(True, id="on")]
KEY = cache.key("write-through-test", version=1)
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def variant():
    return VariantFactory(price=Decimal("5.00"))


def prices(product_id: int):
    return lambda: [
        str(p)
        for p in Variant.objects.filter(product_id=product_id).values_list("price", flat=True)
    ]


def lock_rows(product_id: int):
    return lambda: list(
        Variant.objects.select_for_update(no_key=True).filter(product_id=product_id)
    )


def write_price(variant, price: str, *, on: bool, build=None, lock=None) -> None:
    with toggles.override(write_through=on, stampede_protection=False), transaction.atomic():
        Variant.objects.filter(pk=variant.pk).update(price=Decimal(price))
        write_through.changed_on_commit(
            KEY,
            build=build or prices(variant.product_id),
            lock=lock or lock_rows(variant.product_id),
            ttl=60,
        )


@pytest.mark.parametrize("on", STATES)
def test_off_deletes_the_entry_on_stores_the_committed_value(variant, on):
    cache.set(KEY, ["5.00"], timeout=60)
    write_price(variant, "7.00", on=on)
    assert cache.get(KEY) == (["7.00"] if on else cache.MISS)


def test_nothing_is_stored_before_the_commit_nor_after_a_rollback(variant):
    cache.set(KEY, ["5.00"], timeout=60)
    with (
        pytest.raises(RuntimeError),
        toggles.override(write_through=True),
        transaction.atomic(),
    ):
        Variant.objects.filter(pk=variant.pk).update(price=Decimal("9.00"))
        write_through.changed_on_commit(
            KEY, build=prices(variant.product_id), lock=lock_rows(variant.product_id), ttl=60
        )
        assert cache.get(KEY) == ["5.00"]
        raise RuntimeError("rolled back")
    assert cache.get(KEY) == ["5.00"]


def test_with_stampede_protection_on_the_value_is_stored_as_its_entry(variant):
    with toggles.override(write_through=True, stampede_protection=True), transaction.atomic():
        Variant.objects.filter(pk=variant.pk).update(price=Decimal("8.00"))
        write_through.changed_on_commit(
            KEY, build=prices(variant.product_id), lock=lock_rows(variant.product_id), ttl=60
        )
    entry = cache.get(KEY)
    assert isinstance(entry, Entry) and entry.payload == ["8.00"]
    assert entry.fresh_until > time.time()


def test_a_failed_read_back_deletes_the_entry_and_the_write_stands(variant):
    cache.set(KEY, ["5.00"], timeout=60)

    def broken():
        raise RuntimeError("the rebuild failed")

    write_price(variant, "6.00", on=True, build=broken)
    assert cache.get(KEY) is cache.MISS
    variant.refresh_from_db()
    assert variant.price == Decimal("6.00")


def test_the_read_back_reads_past_this_process_local_cache(variant):
    """The entry written through is read by every process: it is not built from this
    process's L1, which may be behind a write another process committed."""
    root = CategoryFactory()
    child = CategoryFactory(parent=root)

    def subtree():
        return category_with_descendant_ids(category_id=root.pk)

    with toggles.override(local_cache=True, cache_aside=True):
        assert category_with_descendant_ids(category_id=root.pk) == sorted([root.pk, child.pk])
        Category.objects.filter(pk=child.pk).update(parent=None)  # another process's write,
        cache.delete(local_cache.CATEGORY_TREE.key())  # whose eviction reaches Redis only
        write_price(variant, "6.00", on=True, build=subtree)
    assert cache.get(KEY) == [root.pk]


def test_the_value_stored_is_the_row_read_back_not_the_writers_own(variant):
    """A's store comes after B's commit (A's process paused between its commit and its
    store): A stores what the row holds then, B's 20, not its own 10."""
    a_committed, b_done = threading.Event(), threading.Event()

    def a_lock():  # runs after A's commit, before its read-back
        a_committed.set()
        assert b_done.wait(30)
        lock_rows(variant.product_id)()

    def writer(i):
        if i == 0:
            write_price(variant, "10.00", on=True, lock=a_lock)
        else:
            assert a_committed.wait(30)
            write_price(variant, "20.00", on=True)
            b_done.set()

    run_concurrently(writer, count=2)
    assert cache.get(KEY) == ["20.00"]


def test_a_later_writer_waits_for_an_earlier_read_back_so_its_store_comes_last(variant):
    """A has read its 10 back and not stored it yet; B's UPDATE waits on A's row lock (seen
    in pg_blocking_pids), so B's commit, read-back and store all come after A's store. Without
    the lock, B would store 20 and A's 10 would land after it."""
    a_read, b_pid, b_was_blocked = threading.Event(), [], threading.Event()

    def a_build():
        value = prices(variant.product_id)()
        a_read.set()
        with connection.cursor() as cursor:
            deadline = time.monotonic() + 30
            while not b_was_blocked.is_set() and time.monotonic() < deadline:
                if b_pid:
                    cursor.execute("SELECT pg_backend_pid() = ANY(pg_blocking_pids(%s))", b_pid)
                    if cursor.fetchone()[0]:
                        b_was_blocked.set()
                time.sleep(0.01)
        return value

    def writer(i):
        if i == 0:
            write_price(variant, "10.00", on=True, build=a_build)
        else:
            assert a_read.wait(30)
            b_pid.append(connection.cursor().connection.info.backend_pid)
            write_price(variant, "20.00", on=True)

    run_concurrently(writer, count=2)
    assert b_was_blocked.is_set()
    assert cache.get(KEY) == ["20.00"]


def test_racing_writers_leave_the_cached_value_equal_to_the_row(variant):
    for round_ in range(10):
        run_concurrently(
            lambda i, r=round_: write_price(variant, f"{10 + 4 * r + i}.00", on=True), count=4
        )
        assert cache.get(KEY) == prices(variant.product_id)()


def test_with_redis_down_the_write_commits_and_nothing_fails(variant, tmp_path, settings):
    with PrivateBroker(tmp_path / "redis") as redis_server:
        caches = {"default": {**settings.CACHES["default"], "LOCATION": redis_server.url}}
        with override_settings(CACHES=caches):
            redis_server.stop()
            write_price(variant, "11.00", on=True)
    variant.refresh_from_db()
    assert variant.price == Decimal("11.00")


# --- through the API: the staff price and stock change, then the product page ---------------------


def toggled(**flags: bool) -> dict[str, str]:
    return {"HTTP_X_PERF_TOGGLES": toggles.format_flags(flags)}


def read_page(product_id: int, on: bool):
    return APIClient().get(
        f"/api/products/{product_id}/",
        **toggled(cache_aside=True, write_through=on, stampede_protection=False),
    )


@pytest.mark.parametrize("on", STATES)
@pytest.mark.parametrize(
    "change", [{"price": "12.34"}, {"stock": 3}, {"price": "7.00", "stock": 0}]
)
def test_after_a_staff_change_the_next_read_shows_it_a_hit_on_a_miss_off(
    variant, staff_client, on, change
):
    product_id = variant.product_id
    assert read_page(product_id, on).status_code == 200  # cached
    response = staff_client.patch(
        f"/api/staff/variants/{variant.pk}/",
        change,
        format="json",
        **toggled(cache_aside=True, write_through=on, stampede_protection=False),
    )
    assert response.status_code == 200
    after = read_page(product_id, on)
    uncached = APIClient().get(f"/api/products/{product_id}/", **toggled(cache_aside=False))
    assert after.json() == uncached.json()  # the same answer, off, on and uncached
    (shown,) = after.json()["variants"]
    assert {key: shown[key] for key in change} == change
    ops = parse_cache_ops(after["X-Cache-Ops"])
    queries = sum(parse_query_counts(after["X-DB-Queries"]).values())
    if on:
        assert (ops["hits"], ops["misses"], ops["sets"], queries) == (1, 0, 0, 0)
    else:
        assert (ops["hits"], ops["misses"], ops["sets"]) == (0, 1, 1) and queries > 0


def test_racing_staff_changes_leave_the_cached_page_equal_to_the_rows(variant):
    """Two staff PATCHes at once, each on its own connection, ten rounds: the page in Redis
    is always the page built from the committed rows."""
    other = VariantFactory(product=variant.product, price=Decimal("6.00"))
    staff = UserFactory(is_staff=True)
    flags = toggled(cache_aside=True, write_through=True, stampede_protection=False)
    key = payloads.product_detail_key(variant.product_id)
    for round_ in range(10):

        def change(i, r=round_):
            target, client = (variant, other)[i], APIClient()  # a client per thread
            client.force_authenticate(staff)
            return client.patch(
                f"/api/staff/variants/{target.pk}/",
                {"price": f"{20 + 2 * r + i}.00", "stock": r},
                format="json",
                **flags,
            ).status_code

        assert run_concurrently(change, count=2) == [200, 200]
        uncached = APIClient().get(
            f"/api/products/{variant.product_id}/", **toggled(cache_aside=False)
        )
        assert cache.get(key) == uncached.json()


@pytest.mark.parametrize("stampede_protection", [False, True])
def test_a_drop_while_the_page_is_built_is_not_overwritten(stampede_protection):
    """A write that the row locks do not order (a category renamed in the admin locks no
    product row) commits and drops the page while the read-back builds it: the page built
    before that drop is not stored over it, and the next read rebuilds the page."""
    key = cache.key("write-through-test", 1, version=1)

    def build() -> dict:
        cache.invalidate(key)  # the other write's on-commit drop, mid-build
        return {"category": "the name before the rename"}

    with toggles.override(write_through=True, stampede_protection=stampede_protection):
        write_through.store_read_back(key, build=build, lock=lambda: None, ttl=60)
    assert cache.get(key) is cache.MISS
