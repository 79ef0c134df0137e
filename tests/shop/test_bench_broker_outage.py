"""The broker-outage runner (shop/bench/broker_outage.py): orders committed for real while a
private broker is stopped and started, a real worker and relay, off and on, and a database left
exactly as it was found."""

import pytest
from django.contrib.auth import get_user_model

from catalog.models import Variant
from orders.models import Order, OrderEvent, Payment
from shop.bench import broker_outage
from shop.models import OutboxMessage
from tests.factories import VariantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SMALL = {"placements": 15, "rate": 10.0, "outage_start_s": 0.3, "outage_s": 0.8, "buyers": 3}


def snapshot():
    return (
        get_user_model().objects.count(),
        Order.objects.count(),
        Payment.objects.count(),
        OrderEvent.objects.count(),
        OutboxMessage.objects.count(),
        list(Variant.objects.order_by("id").values_list("id", "stock")),
    )


def test_off_loses_and_logs_the_tasks_of_the_outage_on_loses_none_and_both_clean_up():
    VariantFactory(stock=3)
    before = snapshot()
    off = broker_outage.run(on=False, **SMALL)
    assert snapshot() == before
    on = broker_outage.run(on=True, **SMALL)
    assert snapshot() == before

    for outcome in (off, on):
        assert (outcome.placed, outcome.failures, outcome.settle_timed_out) == (15, [], False)
        assert outcome.duplicates == 0
        assert len(outcome.latencies_ms) == 15 and outcome.outage_latencies_ms
    assert off.lost >= 1 and off.lost == off.lost_logged
    assert (on.lost, on.lost_logged) == (0, 0)


def test_an_empty_catalog_is_a_clear_error():
    with pytest.raises(ValueError, match="seed the database first"):
        broker_outage.run(on=True, **SMALL)
