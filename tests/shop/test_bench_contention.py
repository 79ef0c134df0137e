"""The bench's contention rounds (shop/bench/contention.py): many buyers at once through the
request path, committed; counted right, and gone afterwards."""

import threading

import pytest

from catalog.models import Product, Variant
from orders.models import Order, OrderEvent
from shop.bench import contention, docs, metrics
from shop.bench.scenarios import inventory_locking as scenario
from shop.models import OutboxMessage
from shop.techniques import inventory_locking
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def buyer():
    ProductFactory()  # a category and a brand for the round's own product
    return UserFactory()


def rows():
    # The outbox too: the orders' confirmations, written there (transactional_outbox), go
    # with the orders.
    return (
        Product.objects.count(),
        Variant.objects.count(),
        Order.objects.count(),
        OutboxMessage.objects.count(),
    )


@pytest.mark.parametrize(("on", "oversold"), [(True, 0), (False, 8 - 3)])
def test_a_round_counts_what_was_sold_against_the_stock_then_deletes_it(buyer, on, oversold):
    before = rows()
    flags = {inventory_locking.TOGGLE.name: on}
    # Every buyer reads before any writes, so off oversells every time (as in the technique's
    # test); on, the default conditional UPDATE has no read to wait after.
    hook = (lambda: None) if on else threading.Barrier(8, timeout=60).wait
    with inventory_locking.after_read(hook):
        sample = contention.run_round(flags=flags, username=buyer.username, buyers=8, stock=3)
    counts = sample.metrics
    assert counts[metrics.UNITS_OVERSOLD] == oversold
    assert (counts[contention.ORDERS_PLACED], counts[contention.CONFLICTS]) == (
        (3, 5) if on else (8, 0)
    )
    assert counts[contention.ERRORS] == 0
    assert counts[contention.BUYER_P95_MS] >= counts[contention.BUYER_P50_MS] > 0
    assert rows() == before
    assert not OrderEvent.objects.exists()


def test_after_deletes_what_an_interrupted_round_left(buyer):
    before = rows()
    variant = contention._variant_create(2)
    assert rows() != before
    assert scenario.after() == ["1 contended variants and their 0 orders"]
    assert rows() == before
    assert scenario.after() == []
    assert not Variant.objects.filter(pk=variant.pk).exists()


def test_the_scenario_has_an_arm_and_a_target_per_strategy_and_one_off():
    labels = [arm.label for arm in scenario.SCENARIO.arms]
    assert labels == ["contended_off"] + [
        f"contended_{name}" for name in inventory_locking._STRATEGIES
    ]
    assert [target.metric.split(".")[1] for target in scenario.SCENARIO.targets] == labels


def test_the_chapter_shows_the_rounds_counts_in_a_table_of_their_own():
    block = docs.render("inventory_locking", docs.load())
    assert "| | run p50 | run p95 |" in block and " units oversold |" in block
    rows = [line for line in block.splitlines() if line.startswith("| 50 buyers, ")]
    assert len(rows) == 1 + len(inventory_locking._STRATEGIES)
    # A round answers with counts: no "same answer as on" for it, and no column in the pair.
    assert "Same answer as on from" not in block
    assert "| off ÷ on |\n" in block
