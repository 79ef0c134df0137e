"""A placed order's confirmation goes through the real broker to a real Celery worker."""

import pytest
from rest_framework.test import APIClient

from orders import services
from orders.models import OrderEvent
from shop.techniques import transactional_outbox
from tests.factories import UserFactory, VariantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.mark.parametrize("outbox", [False, True], ids=["published-on-commit", "outbox"])
def test_confirmation_email_is_sent_by_a_worker(celery_worker, tmp_path, outbox):
    mail_dir = tmp_path / "mail"
    worker = celery_worker(
        "default",
        "email",
        pool="solo",
        env={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
        },
    )
    user = UserFactory(email="buyer@example.com")
    variant = VariantFactory()
    client = APIClient()
    client.force_authenticate(user)

    response = client.post(
        "/api/orders/",
        {"items": [{"sku": variant.sku, "quantity": 1}]},
        format="json",
        HTTP_X_PERF_TOGGLES=f"transactional_outbox={'on' if outbox else 'off'}",
    )
    assert response.status_code == 201
    order_id = response.json()["id"]
    if outbox:  # the relay's loop body (shop/techniques/transactional_outbox.py) publishes it
        assert transactional_outbox.relay_once().sent == 1

    sent = worker.wait_for(
        lambda: OrderEvent.objects.filter(order_id=order_id, kind="confirmation_sent").exists(),
        seconds=60,
    )
    if not sent:
        pytest.fail("no confirmation within 60 s; worker output:\n" + worker.output())
    mails = list(mail_dir.glob("*.log"))
    assert len(mails) == 1
    text = mails[0].read_text()
    assert f"order {order_id} is confirmed" in text
    assert "buyer@example.com" in text


def test_running_the_confirmation_twice_sends_once(db):
    user = UserFactory(email="twice@example.com")
    order = services.order_place(
        user=user, lines=[services.OrderLine(sku=VariantFactory().sku, quantity=1)]
    ).order
    assert services.order_confirmation_send(order_id=order.pk) is True
    assert services.order_confirmation_send(order_id=order.pk) is False
    assert OrderEvent.objects.filter(order=order, kind="confirmation_sent").count() == 1
