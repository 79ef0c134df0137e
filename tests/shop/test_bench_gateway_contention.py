"""The contention runner (shop/bench/gateway_contention.py): concurrent buyers whose orders commit for
real, off and on, and a database left exactly as it was found."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from catalog.models import Variant
from orders.models import Order, OrderEvent, Payment
from shop.bench import gateway_contention
from shop.models import OutboxMessage
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot():
    return (
        get_user_model().objects.count(),
        Order.objects.count(),
        Payment.objects.count(),
        OrderEvent.objects.count(),
        OutboxMessage.objects.count(),  # the orders' confirmations (transactional_outbox)
        list(Variant.objects.order_by("id").values_list("id", "stock")),
    )


def test_every_order_commits_on_both_sides_and_the_run_cleans_up_after_itself():
    VariantFactory.create_batch(2, stock=3)
    before = snapshot()
    result = gateway_contention.run(buyers=3, orders=2, latency_ms=20, rounds=1, lines=2)
    assert result.same_work, result.problems
    assert [(r.side, r.orders, len(r.latencies_s)) for r in result.rounds] == [
        ("off", 6, 6),
        ("on", 6, 6),
    ]
    summary = result.summary()
    assert summary["variants"] == list(Variant.objects.order_by("id").values_list("sku", flat=True))
    assert snapshot() == before


def test_an_empty_catalog_is_a_clear_error():
    with pytest.raises(CommandError, match="seed the database first"):
        call_command("bench_contention", "--buyers", "2", "--orders", "1")
