"""A placed order's confirmation goes through the real broker to a real Celery worker, which
sends it over SMTP to a real server (the SMTP sink) that the test reads it back from."""

import pytest
from rest_framework.test import APIClient

from orders import services
from orders.models import OrderEvent
from tests.factories import UserFactory, VariantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_confirmation_email_is_sent_by_a_worker_through_smtp(celery_worker, smtp_server):
    worker = celery_worker("default", "email", pool="solo", env=smtp_server.environment())
    user = UserFactory(email="buyer@example.com")
    variant = VariantFactory()
    client = APIClient()
    client.force_authenticate(user)

    response = client.post(
        "/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json"
    )
    assert response.status_code == 201
    order_id = response.json()["id"]

    sent = worker.wait_for(
        lambda: OrderEvent.objects.filter(order_id=order_id, kind="confirmation_sent").exists(),
        seconds=60,
    )
    if not sent:
        pytest.fail("no confirmation within 60 s; worker output:\n" + worker.output())
    [mail] = smtp_server.messages()
    assert mail["To"] == "buyer@example.com"
    assert mail["From"] == "orders@perfshop.local"
    assert mail["Subject"] == f"PerfShop order {order_id} is confirmed"
    assert f"Thank you for your order {order_id}: 1 items" in mail.get_content()


def test_running_the_confirmation_twice_sends_once(db):
    user = UserFactory(email="twice@example.com")
    order = services.order_place(
        user=user, lines=[services.OrderLine(sku=VariantFactory().sku, quantity=1)]
    ).order
    assert services.order_confirmation_send(order_id=order.pk) is True
    assert services.order_confirmation_send(order_id=order.pk) is False
    assert OrderEvent.objects.filter(order=order, kind="confirmation_sent").count() == 1
