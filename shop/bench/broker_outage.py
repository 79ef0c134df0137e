"""A broker outage in the middle of a stream of orders, for real: orders commit, a Celery worker
and the outbox relay run as processes of their own, and the broker is a private redis-server
(shop/private_broker.py) that is stopped and started again. The in-process bench cannot show
this: its writing scenarios roll back, so no task is ever published.

One run is one side (transactional_outbox off or on), async_tasks on for both: placing an order
publishes the capture (queue `payment`) and the stock ledger (queue `inventory`), and the
capture, on the worker, publishes the confirmation email (queue `email`), each through
transactional_outbox.publish():

1. a private broker, a worker on those three queues and the relay (`manage.py outbox_relay`),
   all pointed at it; this process's Celery app too. The worker's toggles come from its
   environment (PERF_TOGGLES: async_tasks on, transactional_outbox as the side), so the
   confirmation it publishes goes the side's way, and on, the relay sends its row too;
2. `placements` orders placed on an open-loop schedule (`rate` a second, from `buyers`
   threads, each on a database connection of its own), each timed from when it was due (a
   stalled placement delays the ones behind it, and that shows);
3. the broker stopped `outage_start_s` into the schedule and started `outage_s` later;
4. then a wait until the worker has nothing left to do (the queues empty, no message taken and
   not acknowledged, no unsent outbox row of the run, nothing new done for `settle_s`), and a
   count of what the worker did: an order with no `paid` event is a capture lost, one with no
   stock ledger rows a ledger task lost, a paid one with no `confirmation_sent` event a
   confirmation lost (an order whose capture was lost never publishes its confirmation: that
   is not counted again). A second `paid` or `confirmation_sent` event for one order would be
   a duplicate. The "task lost" lines logged are counted in this process (the placements'
   tasks) and in the worker's log (the confirmations it publishes);
5. then where each lost task was lost, from the broker's append-only file (every message it
   took: `PrivateBroker.pushed()`) and the worker's log (every message it received). A task
   the broker never took was lost publishing: that is what the outbox is for. One the broker
   took and the worker never did was lost in delivery. Celery's Redis transport pops a
   message (BRPOP) and only then records it as taken and not acknowledged, in a second
   command, so a message popped in the instant the broker goes down is in neither place. The
   outbox cannot help there, and either side can lose one now and then.

The run deletes its buyer, its orders and their events and outbox rows, and puts the stock
back: the database is left as it was found. Its working directory (the broker's files, the
logs) goes too.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from catalog.models import Variant
from orders import services, tasks
from orders.models import Order, OrderEvent, StockMovement
from shop import payment_gateway_stub, toggles
from shop.bench import placed_orders
from shop.models import OutboxMessage
from shop.private_broker import PrivateBroker, celery_pointed_at

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = tasks.capture_payment.name
LEDGER = tasks.record_stock_movements.name
CONFIRMATION = tasks.send_order_confirmation.name
TASKS = (CAPTURE, LEDGER, CONFIRMATION)
STOCK = 1_000_000  # while the run lasts, so no order is refused for stock
BUYER_PREFIX = "outage-buyer-"
VISIBILITY_TIMEOUT_S = 10  # the worker's: see _worker
_RECEIVED = re.compile(r"\] Task [\w.]+\[([\w-]+)\] received")  # a line of the worker's log


@dataclass
class Outcome:
    on: bool
    placed: int
    paid: int  # orders with a `paid` event: their capture ran
    ledgered: int  # orders with stock ledger rows: their ledger task ran
    confirmed: int  # orders with a confirmation_sent event
    duplicates: int  # `paid` and confirmation_sent events beyond one per order
    latencies_ms: list[float]  # each placement, from when it was due
    outage_latencies_ms: list[float]  # those due while the broker was down
    lost_logged: int  # "task lost" lines logged (off)
    failures: list[str] = field(default_factory=list)
    settle_timed_out: bool = False
    # By task: the messages the broker took (distinct ids), and those of them the worker
    # never received.
    pushed: dict[str, int] = field(default_factory=dict)
    unreceived: dict[str, int] = field(default_factory=dict)

    @property
    def lost_by_task(self) -> dict[str, int]:
        """Tasks published and never done, by task: the capture and the ledger of each order
        placed, the confirmation of each order paid."""
        return {
            CAPTURE: self.placed - self.paid,
            LEDGER: self.placed - self.ledgered,
            CONFIRMATION: self.paid - self.confirmed,
        }

    @property
    def lost(self) -> int:
        return sum(self.lost_by_task.values())

    @property
    def lost_publishing_by_task(self) -> dict[str, int]:
        """Tasks the broker never took: their publish failed (off, each logged). Never below
        0: a capture that fails publishes a second ledger task (the stock put back)."""
        expected = {CAPTURE: self.placed, LEDGER: self.placed, CONFIRMATION: self.paid}
        return {task: max(0, expected[task] - self.pushed.get(task, 0)) for task in TASKS}

    @property
    def lost_publishing(self) -> int:
        return sum(self.lost_publishing_by_task.values())

    @property
    def lost_in_delivery_by_task(self) -> dict[str, int]:
        """Tasks the broker took and the worker never did."""
        publishing = self.lost_publishing_by_task
        return {task: lost - publishing[task] for task, lost in self.lost_by_task.items()}

    @property
    def lost_in_delivery(self) -> int:
        return sum(self.lost_in_delivery_by_task.values())

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
            processes.append(_worker(broker.url, workdir, on=on))
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
            paid, confirmed = (_events(user, kind) for kind in ("paid", "confirmation_sent"))
            outcome.paid, outcome.confirmed = len(set(paid)), len(set(confirmed))
            outcome.ledgered = (
                StockMovement.objects.using("default")
                .filter(order__user=user, kind=StockMovement.Kind.SALE)
                .values("order_id")
                .distinct()
                .count()
            )
            outcome.duplicates = len(paid) - len(set(paid)) + len(confirmed) - len(set(confirmed))
        # The confirmations the worker could not publish are in its log, and so is every
        # message it received; what the broker took is in its file, complete once it stopped.
        worker_log = (workdir / "worker.log").read_text(errors="replace")
        outcome.lost_logged += _lost_lines(worker_log)
        received = _received(worker_log)
        pushed = broker.pushed()
        took = Counter(pushed.values())
        missed = Counter(name for id_, name in pushed.items() if id_ not in received)
        outcome.pushed = {task: took[task] for task in TASKS}
        outcome.unreceived = {task: missed[task] for task in TASKS}
        return outcome
    finally:
        for process in processes:
            _stop(process)
        gateway.__exit__(None, None, None)
        settings.PAYMENT_GATEWAY_URL = previous_gateway
        _clean_up(user, variant.pk, stock, outbox_before)
        shutil.rmtree(workdir, ignore_errors=True)  # the broker's files and the logs


def _events(user, kind: str) -> list[int]:
    """The order id of each event of this kind on the run's orders."""
    return list(
        OrderEvent.objects.using("default")
        .filter(order__user=user, kind=kind)
        .values_list("order_id", flat=True)
    )


def _received(log: str) -> set[str]:
    """The id of each task the worker received (`Task orders.tasks.x[<id>] received`)."""
    return set(_RECEIVED.findall(log))


def _lost_lines(log: str) -> int:
    """ "task lost" lines (transactional_outbox._send_now) in a process's log."""
    return sum(1 for line in log.splitlines() if "task lost: " in line)


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
            with toggles.override(async_tasks=True, transactional_outbox=on):
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
        paid=0,
        ledgered=0,
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
    """Until nothing is left to deliver: the broker's queues empty and no message taken and not
    acknowledged (workers ack late: a running task's message, and so what it publishes on its
    commit, is still there), no unsent outbox row of the run, and nothing new done by the
    worker for `settle_s`. False when `timeout_s` passed first."""
    client = redis.Redis(port=broker.port)
    queues = {settings.CELERY_TASK_ROUTES[task]["queue"] for task in TASKS}
    deadline = time.monotonic() + timeout_s
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        done = (
            OrderEvent.objects.using("default")
            .filter(order__user=user, kind__in=("paid", "confirmation_sent"))
            .count(),
            StockMovement.objects.using("default").filter(order__user=user).count(),
        )
        unsent = (
            OutboxMessage.objects.using("default")
            .filter(pk__gt=outbox_before, sent_at__isnull=True, task__in=TASKS)
            .count()
        )
        if done != last:
            last, stable_since = done, time.monotonic()
        idle = not any(client.llen(queue) for queue in queues) and not client.hlen("unacked")
        if idle and unsent == 0 and time.monotonic() - stable_since >= settle_s:
            return True
        time.sleep(0.2)
    return False


def _environment(broker_url: str, **extra: str) -> dict[str, str]:
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
        **extra,
    }
    if hasattr(settings, "TEST_QUEUE_SUFFIX"):
        env["TEST_QUEUE_SUFFIX"] = settings.TEST_QUEUE_SUFFIX
    return env


def _spawn(command: list[str], broker_url: str, log: Path, **extra: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=_environment(broker_url, **extra), stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _worker(broker_url: str, workdir: Path, *, on: bool) -> subprocess.Popen:
    """One worker on the capture's, the ledger's and the confirmation's queues, charging at
    this run's gateway stub. Its toggles come from its environment: whatever PERF_TOGGLES
    already says, with async_tasks on and transactional_outbox the side's, so the confirmation
    the capture publishes goes the same way as the placements' tasks.

    A message the worker took just before the broker went down, and could not acknowledge
    (workers ack late), waits in the broker's `unacked` set for the visibility timeout (an hour
    by default) before it is delivered again: the worker gets a short one, so the run settles
    in seconds. Every task is safe to run twice, and each takes milliseconds here."""
    queues = sorted({settings.CELERY_TASK_ROUTES[task]["queue"] for task in TASKS})
    perf_toggles = ",".join(
        part
        for part in (
            os.environ.get("PERF_TOGGLES", ""),
            f"async_tasks=on,transactional_outbox={'on' if on else 'off'}",
        )
        if part
    )
    return _spawn(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
         "--queues", ",".join(queues), "--loglevel", "INFO", "--without-heartbeat",
         "--without-gossip", "--without-mingle"],
        broker_url, workdir / "worker.log",
        PERF_TOGGLES=perf_toggles, PAYMENT_GATEWAY_URL=settings.PAYMENT_GATEWAY_URL,
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT_S),
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
    OutboxMessage.objects.filter(pk__gt=outbox_before, task__in=TASKS).delete()  # the run's rows
    get_user_model().objects.filter(pk=user.pk).delete()
    Variant.objects.filter(pk=variant_id).update(stock=stock)


def summary(outcome: Outcome) -> dict[str, float]:
    return {
        "placed": outcome.placed,
        "lost": outcome.lost,
        "lost_publishing": outcome.lost_publishing,
        "lost_in_delivery": outcome.lost_in_delivery,
        "p50_ms": statistics.median(outcome.latencies_ms) if outcome.latencies_ms else 0.0,
        "p95_ms": outcome.percentile(outcome.latencies_ms, 0.95),
        "outage_p50_ms": (
            statistics.median(outcome.outage_latencies_ms) if outcome.outage_latencies_ms else 0.0
        ),
    }
