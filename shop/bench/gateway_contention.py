"""Concurrent buyers of the same item, for real: every order commits, as in production, so the
row locks one order holds really make the others wait. The in-process bench cannot show this:
its writing scenarios run one request at a time inside a transaction it rolls back.

One round is `buyers` threads, each on a database connection of its own, each placing `orders`
orders of the same variants one after another (a closed loop) through `orders.services`, while
a stub payment gateway of the given latency (shop/payment_gateway_stub.py, on loopback) answers
the charges. Rounds alternate off and on (ABBA). Measured per round:

- throughput: orders placed per second of wall time;
- each order's latency (p50, p95);
- lock wait: PostgreSQL's own view of it. A monitor connection samples `pg_stat_activity`
  every SAMPLE_S and counts this database's sessions waiting for a lock; the count times the
  interval, summed, is the seconds sessions spent waiting for locks (a sampled estimate).

Both sides must do the same work: every order placed and paid, the gateway charged once per
order, the stock down by exactly the units ordered. The run then deletes what it wrote (its own
buyers, their orders, payments and events) and puts the stock back: the database is left as it
was found.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from threading import Barrier

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from catalog.models import Variant
from orders import services
from orders.models import Order, OrderEvent, OrderItem, Payment
from shop import payment_gateway_stub, toggles
from shop.bench import placed_orders
from shop.bench.metrics import _DJANGO_ONLY_PARAMS
from shop.models import OutboxMessage

SAMPLE_S = 0.005  # every 5 ms: a 200 ms wait is seen about 40 times
STOCK = 1_000_000  # while the run lasts, so no buyer is ever refused for stock
BUYER_PREFIX = "contention-buyer-"


@dataclass
class Round:
    side: str  # "off" or "on"
    wall_s: float
    orders: int
    latencies_s: list[float] = field(default_factory=list)
    lock_wait_s: float = 0.0
    max_waiting: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.orders / self.wall_s if self.wall_s else 0.0


@dataclass
class Result:
    buyers: int
    orders_per_buyer: int
    latency_ms: int
    variants: list[str]
    rounds: list[Round]
    same_work: bool
    problems: list[str]

    def side(self, name: str) -> dict:
        rounds = [r for r in self.rounds if r.side == name]
        latencies = sorted(s for r in rounds for s in r.latencies_s)
        return {
            "throughput_per_s": statistics.median(r.throughput for r in rounds),
            "lock_wait_s": statistics.median(r.lock_wait_s for r in rounds),
            "max_waiting": max(r.max_waiting for r in rounds),
            "p50_ms": _percentile(latencies, 50) * 1000,
            "p95_ms": _percentile(latencies, 95) * 1000,
            "rounds": len(rounds),
        }

    def summary(self) -> dict:
        off, on = self.side("off"), self.side("on")
        return {
            "buyers": self.buyers,
            "orders_per_buyer": self.orders_per_buyer,
            "gateway_latency_ms": self.latency_ms,
            "variants": self.variants,
            "off": off,
            "on": on,
            "throughput_ratio": on["throughput_per_s"] / off["throughput_per_s"],
            "same_work": self.same_work,
            "problems": self.problems,
            "rounds": [asdict(r) | {"throughput": r.throughput} for r in self.rounds],
        }


def run(
    *,
    buyers: int = 8,
    orders: int = 5,
    latency_ms: int = 200,
    rounds: int = 2,
    lines: int = 1,
    progress: Callable[[str], None] = lambda line: None,
) -> Result:
    """`rounds` rounds a side, ABBA; see the module's docstring."""
    variants = list(
        Variant.objects.filter(product__is_active=True).order_by("id")[:lines].values("id", "sku")
    )
    if len(variants) < lines:
        raise ValueError(f"need {lines} active variants; seed the database first (manage.py seed)")
    ids = [v["id"] for v in variants]
    skus = [v["sku"] for v in variants]
    run_id = uuid.uuid4().hex[:8]
    stub = payment_gateway_stub.GatewayStub(latency_s=latency_ms / 1000)
    stock = dict(Variant.objects.filter(pk__in=ids).values_list("id", "stock"))
    users = _buyers(run_id, buyers)
    result = Result(buyers, orders, latency_ms, skus, [], True, [])
    previous_url = settings.PAYMENT_GATEWAY_URL
    try:
        Variant.objects.filter(pk__in=ids).update(stock=STOCK)
        with payment_gateway_stub.running(stub) as url:
            settings.PAYMENT_GATEWAY_URL = url
            order = ["off", "on", "on", "off"] * rounds
            for side in order[: 2 * rounds]:
                captured_before = stub.captured_count
                placed = _round(side, users, skus, orders)
                result.rounds.append(placed)
                expected = buyers * orders
                charged = stub.captured_count - captured_before
                if placed.orders != expected or charged != expected or placed.failures:
                    result.same_work = False
                    result.problems.append(
                        f"{side}: {placed.orders} of {expected} orders, {charged} charges, "
                        f"failures: {placed.failures[:3]}"
                    )
                progress(
                    f"{side}: {placed.orders} orders in {placed.wall_s:.2f} s "
                    f"({placed.throughput:.1f}/s), lock wait {placed.lock_wait_s:.2f} s"
                )
        left = Variant.objects.filter(pk__in=ids).values_list("stock", flat=True)
        units = sum(r.orders for r in result.rounds)
        if any(value != STOCK - units for value in left):
            result.same_work = False
            result.problems.append(f"stock moved by other than {units} units: {list(left)}")
    finally:
        settings.PAYMENT_GATEWAY_URL = previous_url
        _clean_up(users, stock)
    return result


def _round(side: str, users: list, skus: list[str], orders: int) -> Round:
    on = side == "on"
    barrier = Barrier(len(users) + 1)
    latencies: list[list[float]] = [[] for _ in users]
    failures: list[str] = []
    lines = [services.OrderLine(sku=sku, quantity=1) for sku in skus]

    def buyer(index: int) -> int:
        placed = 0
        try:
            # async_tasks off: the charge is in the request, where the locks are the point.
            with toggles.override(short_transactions=on, async_tasks=False):
                barrier.wait()
                for _ in range(orders):
                    started = time.perf_counter()
                    try:
                        services.order_place(user=users[index], lines=lines)
                        placed += 1
                    except Exception as exc:  # counted, reported: the sides must match
                        failures.append(f"{type(exc).__name__}: {exc}")
                    latencies[index].append(time.perf_counter() - started)
        finally:
            connection.close()
        return placed

    monitor = _LockMonitor()
    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        futures = [pool.submit(buyer, i) for i in range(len(users))]
        with monitor:
            barrier.wait()
            started = time.perf_counter()
            placed = sum(future.result() for future in futures)
            wall = time.perf_counter() - started
    return Round(side, wall, placed, [s for per in latencies for s in per],
                 monitor.wait_s, monitor.max_waiting, failures)  # fmt: skip


# Sessions of this database waiting for a lock. Not `pg_locks WHERE NOT granted AND database =
# ...`: a wait for a row another transaction holds is a wait on that transaction's id, and a
# transactionid lock belongs to no database.
_WAITING_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""


class _LockMonitor:
    """Samples the sessions waiting for a lock, on a connection of its own, while the block
    runs."""

    def __init__(self) -> None:
        self.wait_s = 0.0
        self.max_waiting = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _LockMonitor:
        params = connection.get_connection_params()
        kwargs = {k: v for k, v in params.items() if k not in _DJANGO_ONLY_PARAMS}
        self._conn = psycopg.connect(**kwargs, autocommit=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _sample(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            (waiting,) = self._conn.execute(_WAITING_SQL).fetchone()
            now = time.perf_counter()
            self.wait_s += waiting * (now - last)
            self.max_waiting = max(self.max_waiting, waiting)
            last = now
            self._stop.wait(SAMPLE_S)


def _buyers(run_id: str, count: int) -> list:
    User = get_user_model()
    return [
        User.objects.create(username=f"{BUYER_PREFIX}{run_id}-{i}", is_active=True)
        for i in range(count)
    ]


def _clean_up(users: list, stock: dict[int, int]) -> None:
    """Delete the run's buyers and everything they ordered, and put the stock back. The event
    log refuses DELETE (a trigger keeps it append-only): the trigger is lifted for this
    transaction only, by the table's owner."""
    user_ids = [user.pk for user in users]
    orders = Order.objects.filter(user_id__in=user_ids)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE orders_orderevent DISABLE TRIGGER orders_orderevent_append_only"
            )
            OrderEvent.objects.filter(order__in=orders).delete()
            cursor.execute(
                "ALTER TABLE orders_orderevent ENABLE TRIGGER orders_orderevent_append_only"
            )
        Payment.objects.filter(order__in=orders).delete()
        OrderItem.objects.filter(order__in=orders).delete()
        # Their tasks, written to the outbox (transactional_outbox) and never relayed.
        OutboxMessage.objects.filter(
            task__startswith=placed_orders.ORDER_TASKS,
            args__0__in=list(orders.values_list("id", flat=True)),
        ).delete()
        orders.delete()
        get_user_model().objects.filter(pk__in=user_ids).delete()
        for variant_id, units in stock.items():
            Variant.objects.filter(pk=variant_id).update(stock=units)


def _percentile(values: list[float], percent: int) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, round(percent / 100 * (len(values) - 1)))
    return values[index]
