"""transactional_outbox: a broker outage in the middle of a burst of orders loses confirmations
when the task is published on commit (off), and none when it is written to the outbox and
relayed (on).

Everything is real: orders placed through the API on real connections, a private redis-server
as the broker (shop/private_broker.py; stopped and started without touching anyone else's), a
real Celery worker and the relay as `manage.py outbox_relay`, a process of its own.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import redis
from django.db import connection, transaction
from django.utils import timezone

from orders.models import Order, OrderEvent
from shop import toggles
from shop.models import OutboxMessage
from shop.private_broker import PrivateBroker, celery_pointed_at
from shop.techniques import transactional_outbox
from tests import workers
from tests.concurrency import run_concurrently
from tests.factories import AddressFactory, UserFactory, VariantFactory
from tests.workers import ROOT, queue_names

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "orders.tasks.send_order_confirmation"
BURST = 30  # orders, the middle third of them placed while the broker is down


@pytest.fixture
def broker(tmp_path, settings):
    """A broker of this test's own, this process's Celery app pointed at it, and the workers
    and relay this test starts too (tests/workers.py passes settings.CELERY_BROKER_URL)."""
    with PrivateBroker(tmp_path / "broker") as private, celery_pointed_at(private.url):
        settings.CELERY_BROKER_URL = private.url
        yield private


def queued(broker: PrivateBroker) -> list[dict]:
    """The messages waiting in the email queue, oldest first (kombu LPUSHes, workers BRPOP)."""
    client = redis.Redis(port=broker.port)
    (queue,) = queue_names("email")
    return [json.loads(raw)["headers"] for raw in reversed(client.lrange(queue, 0, -1))]


class Relay:
    """`manage.py outbox_relay` as a subprocess, on the test database and the private broker."""

    def __init__(self, log: Path, broker_url: str) -> None:
        from django.conf import settings

        self.log = log
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": workers.test_database_url(),
            "TEST_CELERY_BROKER_URL": broker_url,
            "TEST_QUEUE_SUFFIX": settings.TEST_QUEUE_SUFFIX,
            "TRANSACTIONAL_OUTBOX_BACKOFF_MAX_S": "1",
        }
        env.pop("CELERY_BROKER_URL", None)
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "outbox_relay", "--poll", "0.5"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, *, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.output():
            assert self.process.poll() is None, f"the relay exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} from the relay:\n{self.output()}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


@pytest.fixture
def relay_process(tmp_path, broker):
    started = []

    def start() -> Relay:
        started.append(Relay(tmp_path / f"relay-{len(started)}.log", broker.url))
        return started[-1]

    yield start
    for relay in started:
        relay.stop()


def _buyer():
    user = UserFactory(email="buyer@example.com")
    AddressFactory(user=user)
    return user


def _place_burst(
    client, variant, broker, on: bool, before_the_broker_is_back=lambda: None
) -> tuple[list[int], list[int]]:
    """BURST orders through the API, the broker stopped for the middle third. Returns every
    order's id and the ids of those placed during the outage."""
    ids, during = [], []
    header = f"transactional_outbox={'on' if on else 'off'}"
    for index in range(BURST):
        if index == BURST // 3:
            broker.stop()
        if index == 2 * BURST // 3:
            before_the_broker_is_back()
            broker.start()
        response = client.post(
            "/api/orders/",
            {"items": [{"sku": variant.sku, "quantity": 1}]},
            format="json",
            HTTP_X_PERF_TOGGLES=header,
        )
        # A broker outage never fails an order, either way.
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
        if not broker.up():
            during.append(ids[-1])
    return ids, during


def _confirmed() -> dict[int, int]:
    """Order id → confirmation_sent events: what the worker delivered, each counted."""
    counts: dict[int, int] = {}
    for order_id in OrderEvent.objects.filter(kind="confirmation_sent").values_list(
        "order_id", flat=True
    ):
        counts[order_id] = counts.get(order_id, 0) + 1
    return counts


@pytest.mark.slow
def test_off_loses_the_tasks_published_during_the_outage_and_logs_each(
    broker, celery_worker, api_client, caplog
):
    api_client.force_authenticate(_buyer())
    variant = VariantFactory(stock=1000)
    with caplog.at_level("ERROR", logger="shop.techniques.transactional_outbox"):
        ids, during = _place_burst(api_client, variant, broker, on=False)
    assert len(during) == BURST // 3
    assert Order.objects.filter(pk__in=ids, status="paid").count() == BURST  # all committed
    assert OutboxMessage.objects.count() == 0

    worker = celery_worker("default", "email", pool="solo")
    delivered_all = worker.wait_for(lambda: len(_confirmed()) >= BURST - len(during), seconds=60)
    assert delivered_all, worker.output()
    time.sleep(1)  # nothing else is coming: the lost tasks were never in the broker
    confirmed = _confirmed()
    assert sorted(confirmed) == sorted(set(ids) - set(during))
    assert set(confirmed.values()) == {1}
    # Each lost task is in the log, by name and arguments: what is needed to send it again.
    lost = [r.getMessage() for r in caplog.records if r.getMessage().startswith("task lost")]
    assert [line.split(" was not published: ")[0] for line in lost] == [
        f"task lost: {TASK} args=[{order_id}] kwargs={{}}" for order_id in during
    ]


@pytest.mark.slow
def test_on_delivers_every_task_once_through_the_outage(
    broker, celery_worker, relay_process, api_client
):
    api_client.force_authenticate(_buyer())
    variant = VariantFactory(stock=1000)
    relay = relay_process()
    relay.wait_for("outbox relay:", seconds=30)
    # The broker comes back only once the relay has tried it and been refused.
    ids, during = _place_burst(
        api_client,
        variant,
        broker,
        on=True,
        before_the_broker_is_back=lambda: relay.wait_for("broker refused", seconds=30),
    )
    assert len(during) == BURST // 3
    # Every order wrote its row with it; none is lost, at most some are still waiting.
    assert OutboxMessage.objects.count() == BURST
    assert sorted(OutboxMessage.objects.values_list("args", flat=True)) == sorted(
        [[order_id] for order_id in ids]
    )

    worker = celery_worker("default", "email", pool="solo")
    delivered_all = worker.wait_for(lambda: len(_confirmed()) >= BURST, seconds=90)
    assert delivered_all, f"relay:\n{relay.output()}\nworker:\n{worker.output()}"
    confirmed = _confirmed()
    assert sorted(confirmed) == sorted(ids)
    assert set(confirmed.values()) == {1}  # each once
    assert transactional_outbox.unsent() == 0
    # The relay was refused during the outage, and the row it tried says so.
    assert OutboxMessage.objects.filter(attempts__gt=0).exists()


def test_a_rolled_back_transaction_publishes_nothing_either_way(broker):
    for on in (False, True):
        with (
            toggles.override(transactional_outbox=on),
            pytest.raises(RuntimeError),
            transaction.atomic(),
        ):
            transactional_outbox.publish(TASK, 1)
            raise RuntimeError("the order failed")
    assert OutboxMessage.objects.count() == 0
    assert queued(broker) == []


def test_a_committed_publish_is_a_row_on_and_a_message_off(broker):
    with toggles.override(transactional_outbox=True), transaction.atomic():
        transactional_outbox.publish(TASK, 7)
        assert queued(broker) == []  # the request never talks to the broker
    row = OutboxMessage.objects.get()
    assert (row.task, row.args, row.kwargs, row.sent_at) == (TASK, [7], {}, None)
    with toggles.override(transactional_outbox=False), transaction.atomic():
        transactional_outbox.publish(TASK, 8)
        assert queued(broker) == []  # off publishes at the commit, not before
    assert [message["argsrepr"] for message in queued(broker)] == ["[8]"]


def test_the_relay_publishes_in_order_with_the_row_id_as_task_id_and_marks_sent(broker):
    with toggles.override(transactional_outbox=True):
        for order_id in range(5):
            transactional_outbox.publish(TASK, order_id)
    done = transactional_outbox.relay_once(batch=3)
    assert (done.claimed, done.sent, done.error) == (3, 3, "")
    assert transactional_outbox.relay_once(batch=3).sent == 2
    rows = list(OutboxMessage.objects.order_by("id"))
    messages = queued(broker)
    assert [m["id"] for m in messages] == [str(row.task_id) for row in rows]
    assert [m["argsrepr"] for m in messages] == [f"[{n}]" for n in range(5)]
    assert {m["task"] for m in messages} == {TASK}
    assert all(row.sent_at is not None for row in rows)
    assert transactional_outbox.relay_once().claimed == 0


def test_with_the_broker_down_the_relay_leaves_the_rows_and_sends_them_when_it_is_back(broker):
    with toggles.override(transactional_outbox=True):
        transactional_outbox.publish(TASK, 1)
        transactional_outbox.publish(TASK, 2)
    broker.stop()
    done = transactional_outbox.relay_once()
    assert (done.claimed, done.sent) == (2, 0) and "Connection refused" in done.error
    assert transactional_outbox.unsent() == 2
    first = OutboxMessage.objects.order_by("id").first()
    assert first.attempts == 1 and "Connection refused" in first.last_error
    broker.start()
    assert transactional_outbox.relay_once().sent == 2
    assert transactional_outbox.unsent() == 0
    assert [m["argsrepr"] for m in queued(broker)] == ["[1]", "[2]"]


def test_a_row_claimed_by_one_relay_is_skipped_by_another_which_does_not_wait(broker):
    """One relay mid-batch (its rows locked, on a connection of its own); the other claims the
    next rows at once, and never the locked ones."""
    with toggles.override(transactional_outbox=True):
        for order_id in range(4):
            transactional_outbox.publish(TASK, order_id)
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context"):
        params.pop(key, None)
    with psycopg.connect(**params) as first_relay:
        held = [
            row[0]
            for row in first_relay.execute(
                "SELECT id FROM shop_outboxmessage WHERE sent_at IS NULL ORDER BY id LIMIT 2 "
                "FOR UPDATE SKIP LOCKED"
            )
        ]
        result: list = []
        other = threading.Thread(target=lambda: result.append(_relay_and_close(batch=10)))
        other.start()
        other.join(timeout=10)
        assert not other.is_alive(), "the second relay waited for the first one's locks"
        first_relay.rollback()
    assert (result[0].claimed, result[0].sent) == (2, 2)
    sent = set(OutboxMessage.objects.filter(sent_at__isnull=False).values_list("id", flat=True))
    assert sent.isdisjoint(held) and len(sent) == 2


def _relay_and_close(**options):
    return _and_close(lambda: transactional_outbox.relay_once(**options))


def test_two_relays_racing_publish_every_row_exactly_once(broker):
    total = 120
    OutboxMessage.objects.bulk_create(
        [OutboxMessage(task=TASK, args=[order_id]) for order_id in range(total)]
    )

    def drain(_index):
        sent = 0
        while (done := transactional_outbox.relay_once(batch=7)).claimed:
            assert not done.error, done.error
            sent += done.sent
        return sent

    per_relay = run_concurrently(drain, count=2)
    assert sum(per_relay) == total
    ids = [message["id"] for message in queued(broker)]
    assert len(ids) == len(set(ids)) == total
    assert transactional_outbox.unsent() == 0


@pytest.mark.slow
def test_a_row_published_twice_is_confirmed_once(broker, celery_worker):
    """At least once plus an idempotent task: the relay died after the broker took the message
    and before its commit (the row is unsent again), so the same task id goes out twice; the
    customer gets one email."""
    user = _buyer()
    from orders import services

    with toggles.override(transactional_outbox=True):
        order = services.order_place(
            user=user, lines=[services.OrderLine(sku=VariantFactory().sku, quantity=1)]
        ).order
    assert transactional_outbox.relay_once().sent == 1
    OutboxMessage.objects.update(sent_at=None)  # the relay's commit never happened
    assert transactional_outbox.relay_once().sent == 1
    messages = queued(broker)
    assert len(messages) == 2 and messages[0]["id"] == messages[1]["id"]

    worker = celery_worker("default", "email", pool="solo")
    client = redis.Redis(port=broker.port)
    (queue,) = queue_names("email")
    assert worker.wait_for(lambda: client.llen(queue) == 0, seconds=60), worker.output()
    time.sleep(1)  # the second run is the one that finds the confirmation already sent
    assert worker.wait_for(lambda: worker.output().count("succeeded") >= 2, seconds=30)
    assert _confirmed() == {order.pk: 1}


def test_a_commit_wakes_the_relay_long_before_its_poll(broker):
    """The relay's loop, its poll a minute long: the NOTIFY sent in the publishing transaction
    wakes it at the commit, so the task is out within seconds."""
    stop = threading.Event()
    loop = threading.Thread(
        target=lambda: _and_close(lambda: transactional_outbox.relay(stop=stop, poll_s=60))
    )
    loop.start()
    try:
        time.sleep(1)  # the loop has found nothing and waits on its LISTEN connection
        with toggles.override(transactional_outbox=True), transaction.atomic():
            transactional_outbox.publish(TASK, 5)
        deadline = time.monotonic() + 10
        while not queued(broker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [m["argsrepr"] for m in queued(broker)] == ["[5]"]
    finally:
        stop.set()
        loop.join(timeout=10)
    assert not loop.is_alive()


def _and_close(work):
    try:
        return work()
    finally:
        connection.close()


def test_prune_deletes_old_sent_rows_only():
    now = timezone.now()
    old_sent = OutboxMessage.objects.create(task=TASK, args=[1])
    recent_sent = OutboxMessage.objects.create(task=TASK, args=[2])
    unsent = OutboxMessage.objects.create(task=TASK, args=[3])
    OutboxMessage.objects.filter(pk=old_sent.pk).update(sent_at=now - timedelta(days=2))
    OutboxMessage.objects.filter(pk=recent_sent.pk).update(sent_at=now - timedelta(hours=1))
    OutboxMessage.objects.filter(pk=unsent.pk).update(created_at=now - timedelta(days=9))
    assert transactional_outbox.prune(older_than=timedelta(hours=24), chunk=1) == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {recent_sent.pk, unsent.pk}


def test_the_relay_command_once_publishes_the_backlog(broker):
    from io import StringIO

    from django.core.management import call_command

    with toggles.override(transactional_outbox=True):
        for order_id in range(3):
            transactional_outbox.publish(TASK, order_id)
    out = StringIO()
    call_command("outbox_relay", once=True, batch=2, stdout=out)
    assert "published 3" in out.getvalue()
    assert len(queued(broker)) == 3


def test_the_same_order_answer_off_and_on(broker, api_client):
    """The customer's answer does not depend on the toggle: same status and body (ids and times
    aside)."""
    api_client.force_authenticate(_buyer())
    variant = VariantFactory(stock=10)
    answers = {}
    for on in (False, True):
        response = api_client.post(
            "/api/orders/",
            {"items": [{"sku": variant.sku, "quantity": 1}]},
            format="json",
            HTTP_X_PERF_TOGGLES=f"transactional_outbox={'on' if on else 'off'}",
        )
        body = response.json()
        for key in ("id", "created_at", "paid_at"):
            body.pop(key)
        body["items"] = [{k: v for k, v in item.items() if k != "id"} for item in body["items"]]
        answers[on] = (response.status_code, body)
    assert answers[False] == answers[True]
    # One task each: off's in the broker already, on's in the outbox for the relay.
    assert len(queued(broker)) == 1 and transactional_outbox.unsent() == 1
