"""async_tasks: the charge, the stock ledger and the confirmation email in the request (off) or
on real Celery workers, enqueued on commit (on).

Everything runs on the real parts: orders commit on real connections (transaction=True), tasks
go through the test run's Redis broker to worker subprocesses (tests/workers.py), the charges
to a stub gateway on loopback whose own record (`GatewayStub.charges`, `captured_count`) says
how often a card was charged, and the workers' emails to files (locmem does not cross
processes).
"""

import contextlib
import socket
import threading
import time

import pytest
import redis
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection, transaction
from rest_framework.test import APIClient

from catalog.models import Variant
from orders import payments, services, stock, tasks
from orders.models import Order, OrderEvent, Payment, StockMovement
from shop import payment_gateway, payment_gateway_stub, toggles
from shop.models import FailedTask
from shop.payment_gateway_stub import GatewayStub
from tests.factories import AddressFactory, UserFactory, VariantFactory
from tests.workers import queue_names

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT_S = 60  # a worker's start and its tasks, on a loaded machine
# Published on commit, straight to the broker: the outbox and its relay are
# tests/techniques/test_transactional_outbox.py's.
NO_OUTBOX = "transactional_outbox=off"


@contextlib.contextmanager
def gateway(settings, **stub_options):
    stub = GatewayStub(**stub_options)
    with payment_gateway_stub.running(stub) as url:
        settings.PAYMENT_GATEWAY_URL = url
        yield stub


@pytest.fixture(autouse=True)
def _empty_queues():
    """Each test counts what it published: this run's queues start empty."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.delete(*queue_names("default", "payment", "inventory", "email"))


@pytest.fixture
def buyer():
    user = UserFactory(email="buyer@example.com")
    AddressFactory(user=user)
    client = APIClient()
    client.force_authenticate(user)
    return client


def start_workers(celery_worker, tmp_path, **env):
    """One worker on the three queues, sending its emails to files in tmp_path/mail."""
    return celery_worker(
        "payment",
        "inventory",
        "email",
        concurrency=2,
        env={
            "PAYMENT_GATEWAY_URL": django_settings.PAYMENT_GATEWAY_URL,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "mail"),
            # The tasks a worker publishes (the email after a capture) go on commit too.
            "PERF_TOGGLES": NO_OUTBOX,
            **env,
        },
    )


def post_order(client, variants, *, on: bool):
    return client.post(
        "/api/orders/",
        {"items": [{"sku": v.sku, "quantity": n + 1} for n, v in enumerate(variants)]},
        format="json",
        HTTP_X_PERF_TOGGLES=f"async_tasks={'on' if on else 'off'},{NO_OUTBOX}",
    )


def poll(client, order_id, *, until, worker, seconds=WAIT_S):
    """What a customer does after a 201 `placed`: GET the order until its state settles."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(f"/api/orders/{order_id}/").json()
        if body["status"] in until:
            return body
        if not worker.alive():
            break
        time.sleep(0.1)
    pytest.fail(f"order {order_id} never reached {until}; worker output:\n{worker.output()}")


def queued(*queues: str) -> int:
    """Messages waiting on this run's queues, read from the broker itself."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    return sum(client.llen(name) for name in queue_names(*queues))


def final_state(order_id: int) -> dict:
    order = Order.objects.get(pk=order_id)
    return {
        "status": order.status,
        "events": list(order.events.order_by("id").values_list("kind", flat=True)),
        "payments": list(order.payments.values_list("status", flat=True)),
        "ledger": sorted(order.stock_movements.values_list("variant__sku", "kind", "quantity")),
    }


def mails_in(tmp_path) -> list[str]:
    return [path.read_text() for path in sorted((tmp_path / "mail").glob("*.log"))]


def test_off_and_on_end_in_the_same_state_off_before_the_answer(
    settings, buyer, celery_worker, tmp_path
):
    variants = [VariantFactory(stock=100), VariantFactory(stock=100)]
    with gateway(settings) as stub:
        # Off: everything is done when the answer arrives.
        off = post_order(buyer, variants, on=False)
        assert off.status_code == 201
        assert off.json()["status"] == "confirmed"
        off_state = final_state(off.json()["id"])
        assert [m.subject for m in mail.outbox] == [
            f"PerfShop order {off.json()['id']} is confirmed"
        ]
        assert stub.captured_count == 1

        # On: the answer comes at once with the order placed; the workers do the rest.
        worker = start_workers(celery_worker, tmp_path)
        on = post_order(buyer, variants, on=True)
        assert on.status_code == 201
        assert on.json()["status"] == "placed" and on.json()["paid_at"] is None
        order_id = on.json()["id"]
        polled = poll(buyer, order_id, until={"confirmed", "payment_failed"}, worker=worker)
        assert polled["status"] == "confirmed"
        # The ledger is another task: it may finish just after the email.
        assert worker.wait_for(
            lambda: StockMovement.objects.filter(order_id=order_id).count() == 2, seconds=WAIT_S
        ), worker.output()
        on_state = final_state(order_id)

    assert off_state == on_state
    assert on_state == {
        "status": "confirmed",
        "events": ["placed", "paid", "confirmation_sent"],
        "payments": ["captured"],
        "ledger": sorted([(variants[0].sku, "sale", -1), (variants[1].sku, "sale", -2)]),
    }
    assert stub.captured_count == 2 and len(stub.charges) == 2  # one charge per order
    sent = mails_in(tmp_path)
    assert len(sent) == 1 and f"order {order_id} is confirmed" in sent[0]
    assert list(
        Variant.objects.filter(pk__in=[v.pk for v in variants])
        .values_list("stock", flat=True)
        .order_by("id")
    ) == [98, 96]


def test_a_rolled_back_order_publishes_no_task(settings, buyer):
    """on_commit: the tasks of an order whose transaction rolls back never reach the broker.
    No worker runs, so the queues hold whatever was published; a committed order shows the
    count would see them."""
    variant = VariantFactory(stock=10)
    user = UserFactory()
    lines = [services.OrderLine(sku=variant.sku, quantity=1)]
    assert queued("payment", "inventory") == 0
    with toggles.override(async_tasks=True, transactional_outbox=False):
        with contextlib.suppress(RuntimeError), transaction.atomic():
            services.order_place(user=user, lines=lines)
            raise RuntimeError("the caller's transaction fails after the order was written")
        assert Order.objects.count() == 0
        assert queued("payment", "inventory") == 0

        services.order_place(user=user, lines=lines)  # committed
    assert queued("payment") == 1 and queued("inventory") == 1


def test_a_declined_charge_on_a_worker_fails_the_payment_and_gives_the_stock_back(
    settings, buyer, celery_worker, tmp_path
):
    variants = [VariantFactory(stock=10), VariantFactory(stock=10)]
    with gateway(settings, failure_rate=1.0) as stub:
        worker = start_workers(celery_worker, tmp_path)
        response = post_order(buyer, variants, on=True)
        assert response.status_code == 201 and response.json()["status"] == "placed"
        order_id = response.json()["id"]
        assert Variant.objects.get(pk=variants[1].pk).stock == 8  # taken in the request
        polled = poll(buyer, order_id, until={"payment_failed", "paid", "confirmed"}, worker=worker)
        assert worker.wait_for(
            lambda: StockMovement.objects.filter(order_id=order_id).count() == 4, seconds=WAIT_S
        ), worker.output()

    assert polled["status"] == "payment_failed"
    assert stub.captured_count == 0
    assert [v.stock for v in Variant.objects.filter(pk__in=[v.pk for v in variants])] == [10, 10]
    failed = OrderEvent.objects.get(order_id=order_id, kind=OrderEvent.Kind.PAYMENT_FAILED)
    assert failed.data == {"reason": "payment_declined", "restocked_units": 3}
    state = final_state(order_id)
    assert state["events"] == ["placed", "payment_failed"]
    assert state["payments"] == ["failed"]
    assert state["ledger"] == sorted(
        [
            (variants[0].sku, "sale", -1),
            (variants[0].sku, "return", 1),
            (variants[1].sku, "sale", -2),
            (variants[1].sku, "return", 2),
        ]
    )
    assert mails_in(tmp_path) == []


def _placed_order(*, quantity=1, variant=None):
    """An order written as the request leaves it with async_tasks on: `placed`, its payment
    `pending`, its tasks not run (this commit publishes them, and no worker takes them)."""
    user = UserFactory(email="twice@example.com")
    variant = variant or VariantFactory(stock=10)
    with toggles.override(async_tasks=True, transactional_outbox=False):
        placement = services.order_place(
            user=user, lines=[services.OrderLine(sku=variant.sku, quantity=quantity)]
        )
    return placement.order


def test_the_capture_run_twice_charges_once(settings):
    with gateway(settings) as stub:
        order = _placed_order()
        with toggles.override(transactional_outbox=False):
            assert payments.order_payment_capture(order_id=order.pk) == Order.Status.PAID
            assert payments.order_payment_capture(order_id=order.pk) == Order.Status.PAID
    assert (stub.captured_count, len(stub.charges)) == (1, 1)
    assert OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAID).count() == 1
    assert queued("email") == 1  # one confirmation enqueued, by the run that recorded


def test_two_captures_at_once_charge_once(settings):
    """Two deliveries of the same task race, each on its own database connection, both
    inside the gateway's 0.5 s at the same time: one charge, one record, one email."""
    with gateway(settings, latency_s=0.5) as stub:
        order = _placed_order()
        barrier = threading.Barrier(2)
        results = []

        def capture():
            try:
                barrier.wait()
                with toggles.override(transactional_outbox=False):  # a thread's own
                    results.append(payments.order_payment_capture(order_id=order.pk))
            finally:
                connection.close()

        threads = [threading.Thread(target=capture) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [Order.Status.PAID, Order.Status.PAID]
    assert (stub.captured_count, len(stub.charges)) == (1, 1)
    assert list(order.payments.values_list("status", flat=True)) == [Payment.Status.CAPTURED]
    assert OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAID).count() == 1
    assert queued("email") == 1


def test_the_stock_ledger_run_twice_writes_once(mailoutbox, settings):
    settings.LOW_STOCK_THRESHOLD = 5
    variant = VariantFactory(stock=7)
    order = _placed_order(quantity=3, variant=variant)  # leaves 4: low
    assert stock.order_stock_record(order_id=order.pk) == 1
    assert stock.order_stock_record(order_id=order.pk) == 0
    assert list(order.stock_movements.values_list("kind", "quantity")) == [("sale", -3)]
    assert [m.subject for m in mailoutbox] == [f"PerfShop low stock: {variant.sku}"]
    services.order_cancel(user=order.user, order_id=order.pk)  # gives the 3 back: a return row
    assert stock.order_stock_record(order_id=order.pk) == 0  # the cancel wrote it, inline (off)
    assert sorted(order.stock_movements.values_list("kind", "quantity")) == [
        ("return", 3),
        ("sale", -3),
    ]
    assert len(mailoutbox) == 1


def test_the_confirmation_run_twice_sends_once(settings, mailoutbox):
    with gateway(settings):
        order = _placed_order()
        payments.order_payment_capture(order_id=order.pk)
    assert services.order_confirmation_send(order_id=order.pk) is True
    assert services.order_confirmation_send(order_id=order.pk) is False
    assert len(mailoutbox) == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.CONFIRMED


def test_an_order_cancelled_before_its_capture_is_never_charged(settings):
    with gateway(settings) as stub:
        order = _placed_order()
        services.order_cancel(user=order.user, order_id=order.pk)
        assert payments.order_payment_capture(order_id=order.pk) == Order.Status.CANCELLED
    assert stub.charges == {}
    assert list(order.payments.values_list("status", flat=True)) == [Payment.Status.FAILED]


def test_a_capture_after_a_cancel_voids_the_charge_an_earlier_run_took(settings):
    """An earlier run charged the card and died before recording it; the customer cancelled.
    The run that comes back voids the key: no money stays taken for a cancelled order."""
    with gateway(settings) as stub:
        order = _placed_order()
        payment = order.payments.get()
        payment_gateway.charge(idempotency_key=payment.idempotency_key, amount=payment.amount)
        assert stub.captured_count == 1
        services.order_cancel(user=order.user, order_id=order.pk)
        assert payments.order_payment_capture(order_id=order.pk) == Order.Status.CANCELLED
    assert stub.charges[payment.idempotency_key]["status"] == "voided"
    assert stub.captured_count == 0
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.FAILED


def test_an_unreachable_gateway_is_retried_and_the_last_attempt_fails_the_payment(settings):
    """Nothing was charged: before the last attempt the error goes back to the task (which
    retries it with backoff), the order still placed with its stock held."""
    variant = VariantFactory(stock=10)
    order = _placed_order(variant=variant)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    settings.PAYMENT_GATEWAY_URL = f"http://127.0.0.1:{dead}"
    with pytest.raises(payment_gateway.GatewayUnavailable):
        payments.order_payment_capture(order_id=order.pk, final_attempt=False)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PLACED
    assert Variant.objects.get(pk=variant.pk).stock == 9
    with toggles.override(transactional_outbox=False):
        assert payments.order_payment_capture(order_id=order.pk) == Order.Status.PAYMENT_FAILED
    assert Variant.objects.get(pk=variant.pk).stock == 10


def test_a_missing_order_is_a_permanent_error_not_a_retry():
    for run in (
        lambda: payments.order_payment_capture(order_id=987654321),
        lambda: stock.order_stock_record(order_id=987654321),
    ):
        with pytest.raises(stock.OrderGone):
            run()


def test_a_poison_task_fails_once_and_leaves_the_queue(settings, celery_worker, tmp_path):
    """A capture whose order is gone ends with OrderGone on the first run, in the failed-task
    record with its arguments: no retry, nothing left on the queue, no charge."""
    with gateway(settings) as stub:
        worker = start_workers(celery_worker, tmp_path)
        tasks.capture_payment.delay(987654321)
        assert worker.wait_for(
            lambda: FailedTask.objects.filter(task_name="orders.tasks.capture_payment").exists(),
            seconds=WAIT_S,
        ), worker.output()
        time.sleep(1)  # time for a retry, were there one
    [failed] = FailedTask.objects.all()
    assert (failed.args, failed.exception_type, failed.attempts) == ([987654321], "OrderGone", 1)
    assert worker.output().count("raised unexpected: OrderGone") == 1
    assert "Retry" not in worker.output()
    assert queued("payment") == 0
    assert stub.charges == {}


def test_a_worker_killed_mid_capture_loses_no_task_and_charges_once(
    settings, buyer, celery_worker, tmp_path
):
    """SIGKILL the worker while the gateway holds its charge (2 s). The task was not
    acknowledged (acks_late), so once the broker's visibility timeout passes, the next worker
    gets it again; the retried charge carries the same idempotency key, and the stub's record
    shows one charge."""
    visibility = 2
    env = {"CELERY_VISIBILITY_TIMEOUT": str(visibility)}
    variant = VariantFactory(stock=10)
    with gateway(settings, latency_s=2.0) as stub:
        first = start_workers(celery_worker, tmp_path, **env)
        order_id = post_order(buyer, [variant], on=True).json()["id"]
        deadline = time.monotonic() + WAIT_S
        while stub.in_flight == 0:
            assert time.monotonic() < deadline, first.output()
            time.sleep(0.01)
        first.kill()
        assert Order.objects.get(pk=order_id).status == Order.Status.PLACED
        time.sleep(visibility + 0.5)
        second = start_workers(celery_worker, tmp_path, **env)
        polled = poll(buyer, order_id, until={"confirmed", "payment_failed"}, worker=second)

    assert polled["status"] == "confirmed"
    assert (stub.captured_count, len(stub.charges)) == (1, 1)
    assert OrderEvent.objects.filter(order_id=order_id, kind=OrderEvent.Kind.PAID).count() == 1
    assert len(mails_in(tmp_path)) == 1
