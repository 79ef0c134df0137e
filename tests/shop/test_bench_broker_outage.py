"""The broker-outage runner (shop/bench/broker_outage.py): orders committed for real while a
private broker is stopped and started, a real worker and relay, off and on, and a database left
exactly as it was found.

The runner holds async_tasks on (the suite's default is off): each order publishes its capture
and its stock ledger task, and the capture, on the worker, the confirmation. What the worker did
(`paid` events, ledger rows, `confirmation_sent` events) is what was delivered."""

import re
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from catalog.models import Variant
from orders import tasks
from orders.models import Order, OrderEvent, Payment, StockMovement
from shop.bench import broker_outage
from shop.bench.broker_outage import CAPTURE, CONFIRMATION, LEDGER
from shop.models import OutboxMessage
from shop.private_broker import PrivateBroker, aof_commands, celery_pointed_at
from tests.factories import VariantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SMALL = {"placements": 15, "rate": 10.0, "outage_start_s": 0.3, "outage_s": 0.8, "buyers": 3}


def snapshot():
    return (
        get_user_model().objects.count(),
        Order.objects.count(),
        Payment.objects.count(),
        OrderEvent.objects.count(),
        StockMovement.objects.count(),
        OutboxMessage.objects.count(),
        list(Variant.objects.order_by("id").values_list("id", "stock")),
    )


def test_off_loses_and_logs_the_tasks_of_the_outage_on_loses_none_and_both_clean_up():
    VariantFactory(stock=3)
    before = snapshot()
    workdirs = set(Path(tempfile.gettempdir()).glob("perfshop-outage-*"))
    off = broker_outage.run(on=False, **SMALL)
    assert snapshot() == before
    on = broker_outage.run(on=True, **SMALL)
    assert snapshot() == before
    assert set(Path(tempfile.gettempdir()).glob("perfshop-outage-*")) == workdirs

    for outcome in (off, on):
        assert (outcome.placed, outcome.failures, outcome.settle_timed_out) == (15, [], False)
        assert outcome.duplicates == 0
        assert len(outcome.latencies_ms) == 15 and outcome.outage_latencies_ms
    # Off: tasks published during the outage (a capture or a ledger task of an order placed
    # then, or a confirmation the worker published then) never reach the broker, and each is
    # logged.
    # (A publish that failed as the broker shut down may still have reached it: logged, and
    # then done. So every task the broker never took was logged, not each logged one lost.)
    assert off.lost_publishing >= 1 and off.lost_publishing <= off.lost_logged
    # On: the broker took every task, the confirmations the worker wrote to the outbox included.
    assert on.pushed == {CAPTURE: 15, LEDGER: 15, CONFIRMATION: on.paid}
    assert (on.lost_publishing, on.lost_logged) == (0, 0)
    for outcome in (off, on):
        # What the broker took and the worker never did, it never received: a message popped
        # as the broker went down (Celery's Redis transport), not a task that ran and failed.
        assert outcome.lost_in_delivery_by_task == outcome.unreceived
    # Nothing else lost on: usually every task done (the delivery window is an instant).
    assert (on.paid, on.ledgered) == (15 - on.unreceived[CAPTURE], 15 - on.unreceived[LEDGER])
    assert on.confirmed == on.paid - on.unreceived[CONFIRMATION]


def test_what_the_broker_took_is_read_from_its_file_and_a_cut_short_command_is_left_out(tmp_path):
    with PrivateBroker(tmp_path) as broker, celery_pointed_at(broker.url):
        ledger = tasks.record_stock_movements.delay(1)
        capture = tasks.capture_payment.delay(2)
    assert broker.pushed() == {ledger.id: LEDGER, capture.id: CAPTURE}

    (aof,) = tmp_path.glob("appendonlydir/*.incr.aof")
    whole = aof.read_bytes()

    def pushes(data: bytes) -> list[list[bytes]]:
        return [c for c in aof_commands(data) if c[0].upper() == b"LPUSH"]

    assert len(pushes(whole)) == 2
    # The file cut anywhere inside the last LPUSH, as a crash mid-write leaves it: that
    # command is left out, the one before it is read.
    last = max(m.start() for m in re.finditer(rb"\*3\r\n\$5\r\nLPUSH", whole, re.IGNORECASE))
    for cut in (last + 1, last + 4, last + 20, len(whole) - 3):
        assert pushes(whole[:cut]) == pushes(whole)[:1]
    # Annotation lines (aof-timestamp-enabled) are skipped; bytes that are no command are an
    # error, not a quiet end of the reading.
    assert pushes(b"#TS:1796327956\r\n" + whole) == pushes(whole)
    with pytest.raises(ValueError, match="not an append-only file"):
        list(aof_commands(whole[:last] + b"garbage\r\n" + whole[last:]))


def test_an_empty_catalog_is_a_clear_error():
    with pytest.raises(ValueError, match="seed the database first"):
        broker_outage.run(on=True, **SMALL)
