"""shop/celery_tasks.py and the Celery settings: which errors are retried, the backoff, and
the queues every task is routed to. No worker here (tests/shop/test_failed_tasks.py has them)."""

import random
import smtplib
import socket

import pytest
from celery import Task
from django import db
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError
from redis import exceptions as redis_errors

from config.celery_app import app
from shop.celery_tasks import ShopTask, backoff_seconds, is_transient
from shop.payment_gateway import GatewayTimeout, GatewayUnavailable, PaymentDeclined


@pytest.mark.parametrize(
    "exc",
    [
        db.OperationalError("server closed the connection unexpectedly"),
        db.InterfaceError("connection already closed"),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
        socket.gaierror(-3, "Temporary failure in name resolution"),
        redis_errors.ConnectionError("Error 111 connecting"),
        BrokerError("[Errno 111] Connection refused"),
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        smtplib.SMTPConnectError(421, b"busy"),
        smtplib.SMTPResponseException(451, b"4.3.0 try again later"),
        smtplib.SMTPSenderRefused(452, b"4.3.1 insufficient storage", "orders@perfshop.local"),
        smtplib.SMTPRecipientsRefused({"a@example.com": (450, b"4.2.1 mailbox busy")}),
        GatewayTimeout("the gateway did not answer in 3 s"),
        GatewayUnavailable("the gateway answered 503"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_errors_that_may_pass_are_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad input"),
        KeyError("sku"),
        db.IntegrityError("duplicate key"),
        db.DataError("value too long"),
        FileNotFoundError(2, "No such file"),  # an OSError, but not a connection's
        smtplib.SMTPResponseException(550, b"5.1.1 no such user"),
        smtplib.SMTPDataError(554, b"5.7.1 rejected as spam"),
        smtplib.SMTPRecipientsRefused(
            {"a@example.com": (450, b"busy"), "b@example.com": (550, b"no such user")}
        ),
        smtplib.SMTPRecipientsRefused({}),
        PaymentDeclined("card declined"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_other_errors_are_permanent(exc):
    assert not is_transient(exc)


def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter_in_the_upper_half():
    rng = random.Random(7)
    for retries, ceiling in [(0, 2), (1, 4), (2, 8), (3, 16), (8, 300), (30, 300)]:
        waits = [backoff_seconds(retries, base=2, maximum=300, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), retries
        assert len(set(waits)) == len(waits)  # jittered: no two alike


def test_every_task_of_the_project_is_a_shop_task():
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert "orders.tasks.send_order_confirmation" in ours
    for name, task in ours.items():
        assert isinstance(task, ShopTask), name
        assert isinstance(task, Task)


def test_max_retries_come_from_the_settings_unless_the_task_sets_them(settings):
    from tests.task_probes import probe

    settings.TASK_MAX_RETRIES = 3
    assert probe.max_retries == 3
    assert app.tasks["orders.tasks.send_order_confirmation"].max_retries == 8


def test_a_task_called_directly_raises_instead_of_retrying():
    from tests.task_probes import probe

    with pytest.raises(db.OperationalError):
        probe("/dev/null", "transient")


def test_the_queues_are_declared_and_every_route_names_one():
    names = [queue.name for queue in app.amqp.queues.values()]
    suffix = settings.TEST_QUEUE_SUFFIX
    assert sorted(names) == sorted(f"{name}{suffix}" for name in settings.CELERY_QUEUE_NAMES)
    assert app.conf.task_create_missing_queues is False
    assert app.conf.task_default_queue in names
    for task, route in settings.CELERY_TASK_ROUTES.items():
        assert route["queue"] in names, task
    routed = app.amqp.router.route({}, "orders.tasks.send_order_confirmation")
    assert routed["queue"].name == f"email{suffix}"


def test_a_route_to_an_undeclared_queue_is_refused_when_sent():
    from celery.exceptions import QueueNotFound

    with pytest.raises(QueueNotFound):
        app.amqp.router.route({"queue": "emial"}, "orders.tasks.send_order_confirmation")


def test_acks_limits_and_the_visibility_timeout_are_set():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_retry_on_worker_lost is True
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    options = conf.broker_transport_options
    visibility = options["visibility_timeout"]
    assert visibility > conf.task_time_limit + settings.TASK_RETRY_BACKOFF_MAX_S
    # Overdue messages are looked for often enough to matter: not kombu's ~100 s.
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 60


def test_email_tasks_are_rate_limited():
    task = app.tasks["orders.tasks.send_order_confirmation"]
    assert settings.EMAIL_TASK_RATE_LIMIT
    assert task.rate_limit == settings.EMAIL_TASK_RATE_LIMIT


def test_celery_uses_the_broker_of_the_settings():
    # Celery reads CELERY_BROKER_URL from the environment before its setting; the test settings
    # drop it, so an exported development broker never takes the suite's tasks.
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
