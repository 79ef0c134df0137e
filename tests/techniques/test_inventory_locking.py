"""inventory_locking: 50 buyers racing for 10 units through the order API, on real PostgreSQL
transactions on separate connections. Off sells more than there is; every strategy sells
exactly the 10, and every other buyer gets a clear 409. Crossing multi-line orders never
deadlock, because every strategy locks in primary-key order.
"""

import threading

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.models import Variant
from orders import services as order_services
from orders.models import Order, OrderItem
from shop import toggles
from shop.techniques import inventory_locking
from tests.concurrency import THREADS, run_concurrently
from tests.factories import UserFactory, VariantFactory

pytestmark = pytest.mark.django_db(transaction=True)

STRATEGIES = settings.INVENTORY_LOCKING_STRATEGIES
BUYERS = 50
STOCK = 10
SHORT = {
    "detail": "Not enough stock for some items; nothing was ordered.",
    "code": "insufficient_stock",
}
CONTENTION = {
    "detail": "Too many orders for these items at once; nothing was ordered. Try again.",
    "code": "stock_contention",
}


def buy(user, sku, *, state="on", quantity=1):
    """One order through the API, as the user, with the technique `state`."""
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(
        "/api/orders/",
        {"items": [{"sku": sku, "quantity": quantity}]},
        format="json",
        headers={"X-Perf-Toggles": f"inventory_locking={state}"},
    )
    return response.status_code, response.json()


def race(variant, *, buyers=BUYERS, state="on"):
    """`buyers` customers each buying one unit of `variant` at the same instant, each on its
    own thread and connection; their (status, body) in order."""
    users = [UserFactory() for _ in range(buyers)]
    return run_concurrently(lambda i: buy(users[i], variant.sku, state=state), buyers)


def units_sold(variant):
    return sum(OrderItem.objects.filter(variant=variant).values_list("quantity", flat=True))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_50_buyers_for_10_units_get_exactly_10_orders_and_40_clear_conflicts(strategy):
    variant = VariantFactory(stock=STOCK)
    with override_settings(INVENTORY_LOCKING_STRATEGY=strategy):
        outcomes = race(variant)
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [201] * STOCK + [409] * (BUYERS - STOCK)
    for status, body in outcomes:
        if status == 409:
            assert body == {
                **SHORT,
                "items": [{"sku": variant.sku, "requested": 1, "available": 0}],
            }
    variant.refresh_from_db()
    assert variant.stock == 0
    assert Order.objects.count() == units_sold(variant) == STOCK


def test_off_the_read_modify_write_sells_units_that_do_not_exist():
    variant = VariantFactory(stock=STOCK)
    # Every buyer reads the stock before any writes it: the interleaving that concurrent
    # requests reach by chance, every time.
    with inventory_locking.after_read(threading.Barrier(BUYERS, timeout=60).wait):
        outcomes = race(variant, state="off")
    assert [status for status, _ in outcomes] == [201] * BUYERS
    variant.refresh_from_db()
    assert units_sold(variant) == BUYERS
    assert variant.stock == STOCK - 1  # 50 saves of "10 - 1": 40 units sold that never existed


def test_off_and_every_strategy_answer_the_same_and_leave_the_same_stock():
    user, variant = UserFactory(), VariantFactory(stock=5)
    volatile = {"id", "created_at", "paid_at"}
    results = {}
    for state, strategy in [("off", "conditional_update")] + [("on", s) for s in STRATEGIES]:
        Variant.objects.filter(pk=variant.pk).update(stock=5)
        with override_settings(INVENTORY_LOCKING_STRATEGY=strategy):
            status, body = buy(user, variant.sku, state=state, quantity=2)
            refused = buy(user, variant.sku, state=state, quantity=4)
        body = {key: value for key, value in body.items() if key not in volatile}
        body["items"] = [{k: v for k, v in item.items() if k != "id"} for item in body["items"]]
        variant.refresh_from_db()
        results[f"{state} {strategy}"] = (status, body, refused, variant.stock)
    expected = results.pop("off conditional_update")
    assert expected[0] == 201 and expected[3] == 3
    assert expected[2] == (
        409,
        {**SHORT, "items": [{"sku": variant.sku, "requested": 4, "available": 3}]},
    )
    assert results == dict.fromkeys(results, expected)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_crossing_orders_of_many_lines_never_deadlock(strategy):
    variants = VariantFactory.create_batch(20, stock=100)
    user = UserFactory()

    def place(i):
        # Half the orders list the SKUs one way, half the other: locks taken in line order
        # would cross. Each thread sets the toggle itself: overrides are per thread.
        ordered = variants if i % 2 else list(reversed(variants))
        lines = [order_services.OrderLine(sku=v.sku, quantity=1) for v in ordered]
        with toggles.override(inventory_locking=True):
            return order_services.order_place(user=user, lines=lines).created

    with override_settings(INVENTORY_LOCKING_STRATEGY=strategy):
        assert run_concurrently(place, THREADS) == [True] * THREADS
    assert set(Variant.objects.values_list("stock", flat=True)) == {100 - THREADS}


def test_the_deadlock_test_can_see_one_locks_taken_in_line_order_do_deadlock():
    # The control for the test above: the same two rows locked in opposite orders by two
    # transactions, each waiting for the other's first lock, is a deadlock PostgreSQL reports.
    a, b = VariantFactory(), VariantFactory()
    both_hold_one = threading.Barrier(2, timeout=30)

    def lock_crossing(i):
        first, second = (a, b) if i else (b, a)
        try:
            with transaction.atomic():
                list(Variant.objects.select_for_update().filter(pk=first.pk))
                both_hold_one.wait()
                list(Variant.objects.select_for_update().filter(pk=second.pk))
            return "locked"
        except Exception as exc:
            if isinstance(exc.__cause__, psycopg.errors.DeadlockDetected):
                return "deadlock"
            raise

    assert sorted(run_concurrently(lock_crossing, 2)) == ["deadlock", "locked"]


class FirstReadOnly:
    """A hook that holds each thread at a barrier the first time it reads, and never again
    (a retry reads again, alone)."""

    def __init__(self, parties):
        self.barrier = threading.Barrier(parties, timeout=30)
        self.seen = threading.local()

    def __call__(self):
        if not getattr(self.seen, "read", False):
            self.seen.read = True
            self.barrier.wait()


@override_settings(INVENTORY_LOCKING_STRATEGY="optimistic")
def test_optimistic_writes_only_over_the_version_it_read_and_retries_a_stale_one():
    variant = VariantFactory(stock=STOCK)
    retries = inventory_locking.retries()
    with inventory_locking.after_read(FirstReadOnly(2)):
        outcomes = race(variant, buyers=2)
    assert [status for status, _ in outcomes] == [201, 201]
    variant.refresh_from_db()
    assert variant.stock == STOCK - 2  # not the lost update's STOCK - 1
    assert inventory_locking.retries() - retries == 1


@override_settings(INVENTORY_LOCKING_STRATEGY="optimistic", INVENTORY_LOCKING_ATTEMPTS=1)
def test_optimistic_out_of_attempts_is_a_clear_409_that_takes_nothing():
    variant = VariantFactory(stock=STOCK)
    with inventory_locking.after_read(FirstReadOnly(2)):
        outcomes = race(variant, buyers=2)
    assert sorted(status for status, _ in outcomes) == [201, 409]
    assert (409, CONTENTION) in outcomes
    variant.refresh_from_db()
    assert variant.stock == STOCK - 1
    assert Order.objects.count() == 1


@override_settings(INVENTORY_LOCKING_STRATEGY="serializable")
def test_serializable_aborts_one_of_two_racing_orders_and_runs_it_again():
    variant = VariantFactory(stock=STOCK)
    retries = inventory_locking.retries()
    with inventory_locking.after_read(FirstReadOnly(2)):
        outcomes = race(variant, buyers=2)
    assert [status for status, _ in outcomes] == [201, 201]
    variant.refresh_from_db()
    assert variant.stock == STOCK - 2
    assert inventory_locking.retries() - retries == 1


def test_serializable_refuses_to_run_in_a_transaction_it_did_not_begin(customer):
    variant = VariantFactory(stock=STOCK)
    lines = [order_services.OrderLine(sku=variant.sku, quantity=1)]
    with (
        override_settings(INVENTORY_LOCKING_STRATEGY="serializable"),
        toggles.override(inventory_locking=True),
        transaction.atomic(),
        pytest.raises(RuntimeError, match="inventory_locking.atomic"),
    ):
        order_services.order_place(user=customer, lines=lines)


@pytest.mark.parametrize(
    ("guarded", "orders"), [(False, 2), (True, 1)], ids=["unguarded", "guarded"]
)
def test_a_redis_lock_that_expires_mid_transaction_oversells_unless_the_write_is_guarded(
    guarded, orders, monkeypatch
):
    # A takes the lock and reads the last unit, then stalls past the lock's TTL. B gets the
    # expired lock, reads the same unit (A has written nothing), sells it and commits. Then A
    # wakes up and writes. Unguarded, A overwrites B's write: two orders for one unit. Guarded,
    # A's write names the version it read, B has moved it, and A is refused with a 409.
    monkeypatch.setattr(inventory_locking, "GUARD_WRITES", guarded)
    variant = VariantFactory(stock=1)
    users = [UserFactory(), UserFactory()]
    a_read, b_done = threading.Event(), threading.Event()
    roles = threading.local()

    def stall_a():
        if getattr(roles, "name", "") == "A":
            a_read.set()
            assert b_done.wait(30)

    def buyer(i):
        roles.name = "AB"[i]
        if roles.name == "B":
            assert a_read.wait(30)
        try:
            return buy(users[i], variant.sku)
        finally:
            if roles.name == "B":
                b_done.set()

    with (
        override_settings(
            INVENTORY_LOCKING_STRATEGY="redis_lock", INVENTORY_LOCKING_LOCK_TTL_MS=200
        ),
        inventory_locking.after_read(stall_a),
    ):
        a, b = run_concurrently(buyer, 2)
    assert b[0] == 201
    assert a == ((201, a[1]) if not guarded else (409, CONTENTION))
    variant.refresh_from_db()
    assert (Order.objects.count(), variant.stock) == (orders, 0)


def test_every_change_of_stock_moves_the_version():
    variant = VariantFactory(stock=5)
    Variant.objects.filter(pk=variant.pk).update(stock=4)  # a writer that ignores the version
    Variant.objects.filter(pk=variant.pk).update(stock=3, version=10)  # one that sets it
    Variant.objects.filter(pk=variant.pk).update(price="9.99")  # no change of stock
    variant.refresh_from_db()
    assert (variant.stock, variant.version) == (3, 10)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_variant SET stock = stock + 1 WHERE id = %s", [variant.pk])
    variant.refresh_from_db()
    assert variant.version == 11


def test_the_settings_and_the_module_know_the_same_strategies():
    assert tuple(inventory_locking._STRATEGIES) == settings.INVENTORY_LOCKING_STRATEGIES
