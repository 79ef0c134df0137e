"""A broker outage in the middle of a stream of orders, for real: orders commit, a Celery worker
and the outbox relay run as processes of their own, and the broker is a private redis-server
(shop/private_broker.py) that is stopped and started again. The in-process bench cannot show
this: its writing scenarios roll back, so no task is ever published.

One run is one side (transactional_outbox off or on):

1. a private broker, a worker on the confirmation's queue and the relay (`manage.py
   outbox_relay`), all pointed at it; this process's Celery app too;
2. `placements` orders placed on an open-loop schedule (`rate` a second, from `buyers`
   threads, each on a database connection of its own), each timed from when it was due (a
   stalled placement delays the ones behind it, and that shows);
3. the broker stopped `outage_start_s` into the schedule and started `outage_s` later;
4. then a wait until the worker has nothing left to do (the queue empty, no unsent outbox row,
   no new confirmation for `settle_s`), and a count of the orders confirmed: each order
   not confirmed is a task lost; a second confirmation of one order would be a duplicate.

The run deletes its buyer, its orders and their events and outbox rows, and puts the stock
back: the database is left as it was found.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from catalog.models import Variant
from orders import services
from orders.models import Order, OrderEvent
from shop import payment_gateway_stub, toggles
from shop.bench import placed_orders
from shop.models import OutboxMessage
from shop.private_broker import PrivateBroker, celery_pointed_at

ROOT = Path(__file__).resolve().parents[2]
TASK = services.CONFIRMATION_TASK
STOCK = 1_000_000  # while the run lasts, so no order is refused for stock
BUYER_PREFIX = "outage-buyer-"


@dataclass
class Outcome:
    on: bool
    placed: int
    confirmed: int  # orders with a confirmation_sent event
    duplicates: int  # confirmation events beyond one per order
    latencies_ms: list[float]  # each placement, from when it was due
    outage_latencies_ms: list[float]  # those due while the broker was down
    lost_logged: int  # "task lost" lines logged (off)
    failures: list[str] = field(default_factory=list)
    settle_timed_out: bool = False

    @property
    def lost(self) -> int:
        return self.placed - self.confirmed

    def percentile(self, values: list[float], fraction: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def run(
    *,
    on: bool,
    placements: int = 200,
    rate: float = 10.0,
    outage_start_s: float = 5.0,
    outage_s: float = 10.0,
    buyers: int = 8,
    settle_s: float = 3.0,
    timeout_s: float = 120.0,
    progress: Callable[[str], None] = lambda line: None,
) -> Outcome:
    variant = Variant.objects.filter(product__is_active=True, stock__gte=1).order_by("id").first()
    if variant is None:
        raise ValueError("no active variant in stock: seed the database first (manage.py seed)")
    stock = variant.stock
    outbox_before = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first() or 0
    user = get_user_model().objects.create(
        username=f"{BUYER_PREFIX}{uuid.uuid4().hex[:8]}", email="outage@example.com"
    )
    workdir = Path(tempfile.mkdtemp(prefix="perfshop-outage-"))
    processes: list[subprocess.Popen] = []
    gateway = payment_gateway_stub.running(payment_gateway_stub.GatewayStub())
    previous_gateway = settings.PAYMENT_GATEWAY_URL
    try:
        Variant.objects.filter(pk=variant.pk).update(stock=STOCK)
        settings.PAYMENT_GATEWAY_URL = gateway.__enter__()
        with PrivateBroker(workdir / "broker") as broker, celery_pointed_at(broker.url):
            processes.append(_worker(broker.url, workdir))
            if on:
                processes.append(_relay(broker.url, workdir))
            _wait_ready(processes, workdir)
            outcome = _placements(
                on=on, user=user, sku=variant.sku, broker=broker, placements=placements,
                rate=rate, outage_start_s=outage_start_s, outage_s=outage_s, buyers=buyers,
            )  # fmt: skip
            progress(f"{'on' if on else 'off'}: {outcome.placed} placed, waiting for the worker")
            outcome.settle_timed_out = not _settle(
                user, broker, outbox_before, settle_s=settle_s, timeout_s=timeout_s
            )
            confirmed = list(
                OrderEvent.objects.using("default")
                .filter(order__user=user, kind="confirmation_sent")
                .values_list("order_id", flat=True)
            )
            outcome.confirmed = len(set(confirmed))
            outcome.duplicates = len(confirmed) - len(set(confirmed))
        return outcome
    finally:
        for process in processes:
            _stop(process)
        gateway.__exit__(None, None, None)
        settings.PAYMENT_GATEWAY_URL = previous_gateway
        _clean_up(user, variant.pk, stock, outbox_before)


class _LostCounter:
    """Counts the "task lost" error lines the off side logs (transactional_outbox._send_now)."""

    def __init__(self) -> None:
        import logging

        self.count = 0
        self._logger = logging.getLogger("shop.techniques.transactional_outbox")
        counter = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage().startswith("task lost"):
                    counter.count += 1

        self._handler = Handler(level=logging.ERROR)

    def __enter__(self) -> _LostCounter:
        self._logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self._handler)


def _placements(
    *, on, user, sku, broker, placements, rate, outage_start_s, outage_s, buyers
) -> Outcome:
    lines = [services.OrderLine(sku=sku, quantity=1)]
    start = time.perf_counter() + 0.2
    due = [start + index / rate for index in range(placements)]
    outage = (start + outage_start_s, start + outage_start_s + outage_s)
    latencies: list[float] = [0.0] * placements
    failures: list[str] = []
    placed = [0]
    lock = threading.Lock()
    next_index = [0]

    def buyer(_thread: int) -> None:
        try:
            with toggles.override(transactional_outbox=on):
                while True:
                    with lock:
                        index = next_index[0]
                        next_index[0] += 1
                    if index >= placements:
                        return
                    time.sleep(max(0.0, due[index] - time.perf_counter()))
                    try:
                        services.order_place(user=user, lines=lines)
                        with lock:
                            placed[0] += 1
                    except Exception as exc:  # counted: every order must be placed
                        failures.append(f"{type(exc).__name__}: {exc}")
                    latencies[index] = (time.perf_counter() - due[index]) * 1000
        finally:
            connection.close()

    def outage_clock() -> None:
        time.sleep(max(0.0, outage[0] - time.perf_counter()))
        broker.stop()
        time.sleep(max(0.0, outage[1] - time.perf_counter()))
        broker.start()

    clock = threading.Thread(target=outage_clock)
    with _LostCounter() as lost, ThreadPoolExecutor(max_workers=buyers) as pool:
        clock.start()
        list(pool.map(buyer, range(buyers)))
        clock.join()
    during = [ms for index, ms in enumerate(latencies) if outage[0] <= due[index] < outage[1]]
    return Outcome(
        on=on,
        placed=placed[0],
        confirmed=0,
        duplicates=0,
        latencies_ms=latencies,
        outage_latencies_ms=during,
        lost_logged=lost.count,
        failures=failures,
    )


def _settle(
    user, broker: PrivateBroker, outbox_before: int, *, settle_s: float, timeout_s: float
) -> bool:
    """Until nothing is left to deliver: the broker's queue empty, no unsent outbox row of the
    run, and no new confirmation for `settle_s`. False when `timeout_s` passed first."""
    client = redis.Redis(port=broker.port)
    queue = settings.CELERY_TASK_ROUTES[TASK]["queue"]
    deadline = time.monotonic() + timeout_s
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        confirmed = (
            OrderEvent.objects.using("default")
            .filter(order__user=user, kind="confirmation_sent")
            .count()
        )
        unsent = (
            OutboxMessage.objects.using("default")
            .filter(pk__gt=outbox_before, sent_at__isnull=True, task=TASK)
            .count()
        )
        if confirmed != last:
            last, stable_since = confirmed, time.monotonic()
        idle = client.llen(queue) == 0 and unsent == 0
        if idle and time.monotonic() - stable_since >= settle_s:
            return True
        time.sleep(0.2)
    return False


def _environment(broker_url: str) -> dict[str, str]:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        # Celery reads the environment's broker before its settings; the test settings read
        # TEST_CELERY_BROKER_URL.
        "CELERY_BROKER_URL": broker_url,
        "TEST_CELERY_BROKER_URL": broker_url,
        "TRANSACTIONAL_OUTBOX_BACKOFF_MAX_S": "1",
    }
    if hasattr(settings, "TEST_QUEUE_SUFFIX"):
        env["TEST_QUEUE_SUFFIX"] = settings.TEST_QUEUE_SUFFIX
    return env


def _spawn(command: list[str], broker_url: str, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=_environment(broker_url), stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _worker(broker_url: str, workdir: Path) -> subprocess.Popen:
    queue = settings.CELERY_TASK_ROUTES[TASK]["queue"]
    return _spawn(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
         "--queues", queue, "--loglevel", "INFO", "--without-heartbeat", "--without-gossip",
         "--without-mingle"],
        broker_url, workdir / "worker.log",
    )  # fmt: skip


def _relay(broker_url: str, workdir: Path) -> subprocess.Popen:
    return _spawn(
        [sys.executable, "manage.py", "outbox_relay", "--poll", "0.5"],
        broker_url,
        workdir / "relay.log",
    )


def _wait_ready(processes: list[subprocess.Popen], workdir: Path, seconds: float = 60) -> None:
    """Until the worker says it is ready and the relay (when there is one) that it runs."""
    wanted = {"worker.log": "ready."} | (
        {"relay.log": "outbox relay:"} if len(processes) > 1 else {}
    )
    deadline = time.monotonic() + seconds
    while True:
        logs = {name: (workdir / name).read_text(errors="replace") for name in wanted}
        if all(text in logs[name] for name, text in wanted.items()):
            return
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            raise RuntimeError(f"the worker or the relay did not start: {logs}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=5)


def _clean_up(user, variant_id: int, stock: int, outbox_before: int) -> None:
    placed_orders.delete(Order.objects.filter(user=user))
    OutboxMessage.objects.filter(pk__gt=outbox_before, task=TASK).delete()  # the run's rows
    get_user_model().objects.filter(pk=user.pk).delete()
    Variant.objects.filter(pk=variant_id).update(stock=stock)


def summary(outcome: Outcome) -> dict[str, float]:
    return {
        "placed": outcome.placed,
        "lost": outcome.lost,
        "p50_ms": statistics.median(outcome.latencies_ms) if outcome.latencies_ms else 0.0,
        "p95_ms": outcome.percentile(outcome.latencies_ms, 0.95),
        "outage_p50_ms": (
            statistics.median(outcome.outage_latencies_ms) if outcome.outage_latencies_ms else 0.0
        ),
    }
