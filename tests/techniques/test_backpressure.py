"""backpressure: past the payment queue's bound a new order gets a 503 with Retry-After and
nothing is written; off, the order is taken and the queue grows. The queue is the real broker's
(this run's payment queue, filled with messages no worker takes); the bound is small."""

import socket

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Variant
from config.celery_app import app as celery_app
from orders.models import Order
from shop import private_broker, toggles
from shop.techniques import backpressure
from tests.factories import VariantFactory

BOUND = 5


@pytest.fixture(autouse=True)
def small_bound(settings):
    settings.BACKPRESSURE_MAX_DEPTH = BOUND
    settings.BACKPRESSURE_DRAIN_PER_S = 2.0


@pytest.fixture
def payment_queue():
    """This run's payment queue, empty before and after the test. `fill(n)` leaves n messages
    on it that no worker takes (a task name no worker knows)."""

    def purge() -> None:
        with celery_app.pool.acquire(block=True) as conn:
            conn.default_channel.queue_declare(queue=settings.BACKPRESSURE_QUEUE)
            conn.default_channel.queue_purge(settings.BACKPRESSURE_QUEUE)

    def fill(n: int) -> None:
        for _ in range(n):
            celery_app.send_task("tests.backpressure.filler", queue=settings.BACKPRESSURE_QUEUE)

    purge()
    yield fill
    purge()


def _place(client, sku: str, toggle: str):
    return client.post(
        "/api/orders/",
        {"items": [{"sku": sku, "quantity": 1}]},
        format="json",
        HTTP_X_PERF_TOGGLES=f"backpressure={toggle}",
    )


@pytest.mark.django_db
def test_the_depth_is_read_from_the_broker(payment_queue):
    assert backpressure.queue_depth(settings.BACKPRESSURE_QUEUE) == 0
    payment_queue(3)
    assert backpressure.queue_depth(settings.BACKPRESSURE_QUEUE) == 3
    assert backpressure.queue_depth("no-such-queue-ever") == 0


@pytest.mark.django_db
def test_below_the_bound_the_order_is_taken(customer_client, payment_queue):
    payment_queue(BOUND - 1)
    response = _place(customer_client, VariantFactory(stock=3).sku, "on")
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
def test_at_the_bound_the_order_is_refused_and_nothing_is_written(customer_client, payment_queue):
    variant = VariantFactory(stock=3)
    payment_queue(BOUND)
    with CaptureQueriesContext(connection) as queries:
        response = _place(customer_client, variant.sku, "on")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "overloaded" and body["queue_depth"] == BOUND
    # 5 waiting at 2 a second: the queue is back under its bound in 3 s.
    assert response["Retry-After"] == "3"
    assert len(queries) == 0  # refused before sessions, authentication or the view
    assert Order.objects.count() == 0
    assert Variant.objects.get(pk=variant.pk).stock == 3


@pytest.mark.django_db
def test_off_takes_the_order_whatever_the_queue_holds(customer_client, payment_queue):
    payment_queue(BOUND * 2)
    response = _place(customer_client, VariantFactory(stock=3).sku, "off")
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
def test_only_placing_an_order_is_shed(customer_client, payment_queue):
    payment_queue(BOUND)
    with toggles.override(backpressure=True):
        assert customer_client.get("/api/orders/").status_code == 200


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.django_db
def test_a_broker_that_does_not_answer_lets_the_order_through(customer_client, caplog):
    with private_broker.celery_pointed_at(f"redis://127.0.0.1:{_dead_port()}/0"):
        assert backpressure.queue_depth(settings.BACKPRESSURE_QUEUE) is None
        response = _place(customer_client, VariantFactory(stock=3).sku, "on")
    assert response.status_code == 201, response.json()
    assert "the broker did not answer" in caplog.text
