"""A paid order's confirmation goes through the real broker to a real Celery worker, which
sends it over SMTP to a real server (the SMTP sink) that the test reads it back from; the tasks
of placing an order are in tests/techniques/test_async_tasks.py."""

import pytest

from orders import services, tasks
from orders.models import Order, OrderEvent
from tests.factories import OrderFactory, UserFactory, VariantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_confirmation_email_is_sent_by_a_worker_through_smtp(celery_worker, smtp_server):
    worker = celery_worker("default", "email", pool="solo", env=smtp_server.environment())
    user = UserFactory(email="buyer@example.com")
    order = OrderFactory(user=user, lines=[(VariantFactory(), 1)])
    tasks.send_order_confirmation.delay(order.pk)

    sent = worker.wait_for(
        lambda: OrderEvent.objects.filter(order_id=order.pk, kind="confirmation_sent").exists(),
        seconds=60,
    )
    if not sent:
        pytest.fail("no confirmation within 60 s; worker output:\n" + worker.output())
    [mail] = smtp_server.messages()
    assert mail["To"] == "buyer@example.com"
    assert mail["From"] == "orders@perfshop.local"
    assert mail["Subject"] == f"PerfShop order {order.pk} is confirmed"
    assert f"Thank you for your order {order.pk}: 1 items" in mail.get_content()
    assert Order.objects.get(pk=order.pk).status == Order.Status.CONFIRMED


def test_running_the_confirmation_twice_sends_once(mailoutbox):
    user = UserFactory(email="twice@example.com")
    order = OrderFactory(user=user, lines=[(VariantFactory(), 1)])
    assert services.order_confirmation_send(order_id=order.pk) is True
    assert services.order_confirmation_send(order_id=order.pk) is False
    assert OrderEvent.objects.filter(order=order, kind="confirmation_sent").count() == 1
    assert len(mailoutbox) == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.CONFIRMED


def test_an_order_not_paid_gets_no_confirmation(mailoutbox):
    order = OrderFactory(status=Order.Status.PAYMENT_FAILED, lines=[(VariantFactory(), 1)])
    assert services.order_confirmation_send(order_id=order.pk) is False
    assert mailoutbox == []
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAYMENT_FAILED
