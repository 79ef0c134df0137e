"""A placed order's confirmation goes through the real broker to a real Celery worker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from config.celery_app import app as celery_app
from orders import services
from orders.models import OrderEvent
from tests.factories import UserFactory, VariantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    """A real worker process on the test broker and the test database."""
    celery_app.control.purge()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--queues",
            f"default{settings.TEST_QUEUE_SUFFIX},email{settings.TEST_QUEUE_SUFFIX}",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process, tmp_path / "mail"
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_for(predicate, *, seconds: float, process) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process.poll() is not None:
            break
        time.sleep(0.2)
    return predicate()


def test_confirmation_email_is_sent_by_a_worker(worker):
    process, mail_dir = worker
    user = UserFactory(email="buyer@example.com")
    variant = VariantFactory()
    client = APIClient()
    client.force_authenticate(user)

    response = client.post(
        "/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json"
    )
    assert response.status_code == 201
    order_id = response.json()["id"]

    sent = _wait_for(
        lambda: OrderEvent.objects.filter(order_id=order_id, kind="confirmation_sent").exists(),
        seconds=60,
        process=process,
    )
    if not sent:
        process.terminate()
        pytest.fail(
            "no confirmation within 60 s; worker output:\n" + process.communicate(timeout=15)[0]
        )
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
