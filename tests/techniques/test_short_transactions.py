"""short_transactions: the payment call outside the transaction that holds the stock locks.

Everything here runs on real connections (transaction=True) against real stub gateways on
loopback (shop/payment_gateway_stub.py): a slow one, a declining one, one that times out.
"""

import contextlib
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from django.db import connection

from catalog.models import Variant
from orders import services
from orders.models import Order, OrderEvent, Payment
from shop import payment_gateway, payment_gateway_stub, toggles
from shop.payment_gateway_stub import GatewayStub
from tests.factories import AddressFactory, UserFactory, VariantFactory

pytestmark = pytest.mark.django_db(transaction=True)

STATES = [pytest.param(False, id="off"), pytest.param(True, id="on")]


@contextlib.contextmanager
def gateway(settings, **stub_options):
    stub = GatewayStub(**stub_options)
    with payment_gateway_stub.running(stub) as url:
        settings.PAYMENT_GATEWAY_URL = url
        yield stub


def other_connection() -> psycopg.Connection:
    """A connection of its own, outside Django: what another buyer, or a DBA, sees."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def locks_held_by_others() -> list[tuple]:
    """Locks any other session holds on the tables an order writes: an open transaction that
    touched them (a row lock comes with a lock on its table, held to commit or rollback)."""
    with other_connection() as conn:
        return conn.execute(
            """
            SELECT l.pid, c.relname, l.mode
            FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND c.relname IN ('catalog_variant', 'orders_order', 'orders_payment')
              AND l.pid <> pg_backend_pid()
            """
        ).fetchall()


@pytest.fixture
def buyer():
    user = UserFactory()
    AddressFactory(user=user)
    return user


def place(user, variant, *, on: bool, quantity: int = 1):
    with toggles.override(short_transactions=on):
        return services.order_place(
            user=user, lines=[services.OrderLine(sku=variant.sku, quantity=quantity)]
        )


def answer(client, variant, on: bool):
    response = client.post(
        "/api/orders/",
        {"items": [{"sku": variant.sku, "quantity": 2}]},
        format="json",
        HTTP_X_PERF_TOGGLES=f"short_transactions={'on' if on else 'off'}",
    )
    return response.status_code, response.json()


def test_the_stub_charges_a_key_once_and_refuses_it_with_another_amount(settings):
    with gateway(settings) as stub:
        first = payment_gateway.charge(idempotency_key="k-1", amount=Decimal("12.50"))
        again = payment_gateway.charge(idempotency_key="k-1", amount=Decimal("12.50"))
        assert (first.reference, first.replayed) == (again.reference, False) and again.replayed
        assert stub.captured_count == 1
        with pytest.raises(payment_gateway.GatewayUnavailable):
            payment_gateway.charge(idempotency_key="k-1", amount=Decimal("13.00"))
        assert stub.captured_count == 1


@pytest.mark.parametrize("on", STATES)
def test_a_paid_order_is_the_same_off_and_on(on, buyer, api_client):
    """Same answer: status, body (ids and times aside) and the rows, both ways."""
    api_client.force_authenticate(buyer)
    variant = VariantFactory(stock=10)
    status, body = answer(api_client, variant, on)
    assert status == 201
    order = Order.objects.get(pk=body["id"])
    # Paid, then confirmed by its email, before the answer (async_tasks off, as the suite holds it).
    assert (body["status"], body["item_count"], body["paid_at"] is not None) == (
        "confirmed",
        2,
        True,
    )
    assert order.status == Order.Status.CONFIRMED
    assert list(order.payments.values_list("status", flat=True)) == [Payment.Status.CAPTURED]
    assert list(order.events.values_list("kind", flat=True)) == [
        "placed",
        "paid",
        "confirmation_sent",
    ]
    assert Variant.objects.get(pk=variant.pk).stock == 8
    assert order.payments.get().provider_reference.startswith("ch_")
    assert locks_held_by_others() == []


def test_the_paid_answer_is_identical_off_and_on(buyer, api_client):
    api_client.force_authenticate(buyer)
    variant = VariantFactory(stock=10)
    answers = {}
    for on in (False, True):
        status, body = answer(api_client, variant, on)
        for key in ("id", "created_at", "paid_at"):
            body.pop(key)
        body["items"] = [{k: v for k, v in item.items() if k != "id"} for item in body["items"]]
        answers[on] = (status, body)
    assert answers[False] == answers[True]


@pytest.mark.parametrize("on", STATES)
def test_off_holds_the_stock_row_locked_during_the_gateway_call(on, settings, buyer):
    """A second buyer of the same item, on a connection of its own, asks for the row's lock
    without waiting while the first order is inside the gateway's 2 s: off, it is taken; on,
    it is free."""
    variant = VariantFactory(stock=10)
    with gateway(settings, latency_s=2.0) as stub:
        first = threading.Thread(target=lambda: _place_and_close(buyer, variant, on))
        first.start()
        deadline = time.monotonic() + 10
        while stub.in_flight == 0:
            assert time.monotonic() < deadline, "the order never reached the gateway"
            time.sleep(0.01)
        with other_connection() as conn:
            try:
                conn.execute(
                    "SELECT stock FROM catalog_variant WHERE id = %s FOR UPDATE NOWAIT",
                    [variant.pk],
                )
                blocked = False
            except psycopg.errors.LockNotAvailable:
                blocked = True
        first.join()
    assert blocked is (not on)
    assert Order.objects.get().status == Order.Status.CONFIRMED


def _place_and_close(user, variant, on):
    try:
        place(user, variant, on=on)
    finally:
        connection.close()


@pytest.mark.parametrize("on", STATES)
def test_a_declined_payment_is_a_402_and_leaves_no_lock_and_no_half_order(
    on, settings, buyer, api_client
):
    api_client.force_authenticate(buyer)
    variant = VariantFactory(stock=10)
    with gateway(settings, failure_rate=1.0) as stub:
        status, body = answer(api_client, variant, on)
    assert status == 402
    assert body["code"] == "payment_declined" and "declined" in body["detail"]
    assert stub.captured_count == 0
    assert Variant.objects.get(pk=variant.pk).stock == 10
    assert locks_held_by_others() == []
    _assert_nothing_half_written(body, on, reason="payment_declined")


@pytest.mark.parametrize("on", STATES)
def test_a_gateway_timeout_is_a_504_voids_the_charge_and_leaves_no_lock(
    on, settings, buyer, api_client
):
    api_client.force_authenticate(buyer)
    variant = VariantFactory(stock=10)
    settings.PAYMENT_GATEWAY_TIMEOUT_S = 0.3
    with gateway(settings, latency_s=1.5) as stub:
        status, body = answer(api_client, variant, on)
        assert status == 504
        assert body["code"] == "payment_gateway_timeout"
        assert Variant.objects.get(pk=variant.pk).stock == 10
        assert locks_held_by_others() == []
        # The charge the client gave up on arrives late at the gateway, already voided.
        assert len(stub.voided) == 1
    assert stub.captured_count == 0
    _assert_nothing_half_written(body, on, reason="payment_gateway_timeout")


@pytest.mark.parametrize("on", STATES)
def test_an_unreachable_gateway_is_a_502(on, settings, buyer, api_client):
    api_client.force_authenticate(buyer)
    variant = VariantFactory(stock=10)
    with gateway(settings):
        pass  # its port is closed now
    status, body = answer(api_client, variant, on)
    assert (status, body["code"]) == (502, "payment_gateway_unavailable")
    assert Variant.objects.get(pk=variant.pk).stock == 10
    _assert_nothing_half_written(body, on, reason="payment_gateway_unavailable")


def _assert_nothing_half_written(body, on, *, reason):
    """Off, the one transaction rolled back: no order at all. On, the order was written before
    the call and is now payment_failed, its payment failed, and its last event says why."""
    if not on:
        assert Order.objects.count() == 0 and Payment.objects.count() == 0
        assert "order_id" not in body
        return
    order = Order.objects.get()
    assert (body["order_id"], body["order_status"]) == (order.pk, "payment_failed")
    assert order.status == Order.Status.PAYMENT_FAILED
    assert list(order.payments.values_list("status", flat=True)) == [Payment.Status.FAILED]
    last = order.events.order_by("id").last()
    assert (last.kind, last.data) == (
        OrderEvent.Kind.PAYMENT_FAILED,
        {"reason": reason, "restocked_units": 2},
    )


def test_sessions_carry_the_statement_and_idle_in_transaction_timeouts():
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        statement = cursor.fetchone()[0]
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        idle = cursor.fetchone()[0]
    assert (statement, idle) == ("30s", "10s")
