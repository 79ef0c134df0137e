"""Orders arriving at twice what the payment workers can capture, for DURATION_S, over real HTTP:
the payment queue without a bound (off) and with one (on).

Each side is a job of its own (`Scenario.run`), in processes of its own: a gunicorn of the
Procfile's `web` line, with async_tasks on (an order's capture goes to the `payment` queue) and
the bound BOUND; a `celery worker` on the payment queue with PAYMENT_CONCURRENCY processes; and a
stub gateway answering each charge after GATEWAY_LATENCY_MS. The workers' capacity is at most
PAYMENT_CONCURRENCY / latency captures a second (CAPACITY_PER_S); the open-loop driver
(shop/bench/open_loop.py) posts orders at twice that, on a fixed schedule, so a slow answer
delays no later request. A sampler reads the queue's depth from the broker every SAMPLE_S.

When the load stops, the side waits (untimed) until every accepted order has left `placed`, so
each one's wait for its capture is known: from its `created_at` to its `paid_at`. That is what
the queue does to a customer, and what the response time of an asynchronous order hides.

Reported per side: the response p50/p99 of the accepted orders; the time to payment of the
accepted orders (p50, p99); the queue's largest and last depth under the load; the orders
accepted and refused (503). Off, the queue grows by about (rate - capacity) x duration and
the last accepted order waits the whole backlog; on, the depth stays at the bound (plus the
orders already past the check when it was reached, at most the web processes' count) and the
wait stays about BOUND / capacity.

The run leaves the data as it found it: the orders it placed are deleted and the stock it took
is put back; the queues it filled are purged (the inventory and email tasks of the paid orders,
which no worker of this run takes).
"""

from __future__ import annotations

import json
import statistics
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model

from catalog.models import Variant
from config.celery_app import app as celery_app
from orders.models import Order
from shop import payment_gateway_stub, toggles
from shop.bench import holds, open_loop, placed_orders, server, task_stack
from shop.bench.measure import Requester
from shop.bench.samples import Sample, percentile
from shop.bench.scenario import Scenario
from shop.bench.targets import Target
from shop.perf_headers import TOGGLE_HEADER
from shop.techniques import backpressure

GATEWAY_LATENCY_MS = 100
PAYMENT_CONCURRENCY = 2
CAPACITY_PER_S = PAYMENT_CONCURRENCY * 1000 / GATEWAY_LATENCY_MS  # an upper bound: 20/s
RATE_PER_S = 2 * CAPACITY_PER_S
DURATION_S = 30.0
# Captures waiting before new orders are refused: at most BOUND / CAPACITY_PER_S = 0.4 s of
# backlog. With 10 the workers (about 14 captures a second here, not 20: they share 2 cores with
# the web processes and the database) paid the accepted orders within 1018 ms at p99.
BOUND = 8
WEB_WORKERS = 4
SAMPLE_S = 0.1
DRAIN_TIMEOUT_S = 180.0  # off leaves (rate - capacity) x duration captures: about 30 s of them
CUSTOMER = "user1"
STOCK = 1_000_000  # while the run lasts, so no order is refused for stock

QUEUE_DEPTH_MAX = "queue_depth_max"
QUEUE_DEPTH_LAST = "queue_depth_last"
ACCEPTED = "accepted"
REFUSED = "refused"
OTHER_ERRORS = "other_errors"
RESPONSE_P99_MS = "response_p99_ms"
PAID_P50_MS = "time_to_paid_p50_ms"
PAID_P99_MS = "time_to_paid_p99_ms"

_state: dict = {}


def _prepare() -> None:
    after()
    variant = Variant.objects.filter(product__is_active=True, stock__gt=0).order_by("id").first()
    if variant is None:
        raise RuntimeError("backpressure needs a variant in stock: seed the database")
    if not get_user_model().objects.filter(username=CUSTOMER).exists():
        raise RuntimeError(f"backpressure needs the seeded customer {CUSTOMER}")
    _state["variant"] = (variant.pk, variant.sku, variant.stock)
    stub = payment_gateway_stub.GatewayStub(latency_s=GATEWAY_LATENCY_MS / 1000)
    gateway = payment_gateway_stub.running(stub)
    _state["gateway_url"] = gateway.__enter__()
    _state["gateway"] = gateway


def _environment() -> dict[str, str]:
    """What the side's processes share with this one: its database, its broker, the gateway."""
    return {
        "DATABASE_URL": task_stack.database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PAYMENT_GATEWAY_URL": _state["gateway_url"],
        "BACKPRESSURE_MAX_DEPTH": str(BOUND),
        "BACKPRESSURE_DRAIN_PER_S": str(CAPACITY_PER_S),
        # The workers' own tasks (the email after a capture) published as the requests' are.
        "PERF_TOGGLES": toggles.format_flags(dict(holds.BACKPRESSURE)),
    }


def _purge(*queues: str) -> None:
    with celery_app.pool.acquire(block=True) as conn:
        for queue in queues:
            conn.default_channel.queue_declare(queue=queue)
            conn.default_channel.queue_purge(queue)


def _sample_depth(stop: threading.Event, into: list[int]) -> None:
    while not stop.is_set():
        depth = backpressure.queue_depth(settings.BACKPRESSURE_QUEUE)
        if depth is not None:
            into.append(depth)
        stop.wait(SAMPLE_S)


def _overload(enabled: bool) -> Sample:
    """One side: the load, then the wait for every accepted order's capture, then clean-up."""
    variant_id, sku, _stock = _state["variant"]
    Variant.objects.filter(pk=variant_id).update(stock=STOCK)
    _purge("payment", "inventory", "email")
    started = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
    requester = Requester()
    flags = {**holds.BACKPRESSURE, "backpressure": enabled}
    headers = {
        **requester.auth_headers(CUSTOMER),
        "Content-Type": "application/json",
        TOGGLE_HEADER: toggles.format_flags(flags),
    }
    body = json.dumps({"items": [{"sku": sku, "quantity": 1}]}).encode()
    depths: list[int] = []
    env = _environment()
    workers = task_stack.start_workers({"payment": PAYMENT_CONCURRENCY}, env=env)
    try:
        with server.gunicorn(workers=WEB_WORKERS, env=env) as url:
            stop = threading.Event()
            sampler = threading.Thread(target=_sample_depth, args=(stop, depths), daemon=True)
            sampler.start()
            try:
                result = open_loop.run(
                    url + "/api/orders/",
                    rate=RATE_PER_S,
                    duration_s=DURATION_S,
                    headers=headers,
                    method="POST",
                    body=body,
                    warmup_s=0,
                )
            finally:
                stop.set()
                sampler.join()
        placed = Order.objects.filter(pk__gt=started)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while placed.filter(status=Order.Status.PLACED).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"backpressure: accepted orders still unpaid {DRAIN_TIMEOUT_S:g} s after "
                    f"the load; worker output:\n{workers.output()[-3000:]}"
                )
            time.sleep(0.2)
        waits_ms = [
            (paid_at - created_at).total_seconds() * 1000
            for created_at, paid_at in placed.exclude(paid_at=None).values_list(
                "created_at", "paid_at"
            )
        ]
        accepted = [o for o in result.outcomes if o.status == 201]
        refused = [o for o in result.outcomes if o.status == 503]
        response_ms = [o.latency_s * 1000 for o in accepted]
        unpaid = placed.count() - len(waits_ms)
    finally:
        workers.stop()
        _purge("payment", "inventory", "email")
        _forget(started)
    if unpaid or not waits_ms:
        raise RuntimeError(f"backpressure: {unpaid} accepted orders were not paid")
    return Sample(
        ms=statistics.median(response_ms),
        queries={},
        bytes=0,
        status=200,
        answer={"every accepted order paid": True},
        metrics={
            ACCEPTED: len(accepted),
            REFUSED: len(refused),
            OTHER_ERRORS: len(result.outcomes) - len(accepted) - len(refused),
            RESPONSE_P99_MS: round(percentile(response_ms, 0.99), 2),
            PAID_P50_MS: round(statistics.median(waits_ms), 1),
            PAID_P99_MS: round(percentile(waits_ms, 0.99), 1),
            QUEUE_DEPTH_MAX: max(depths, default=0),
            QUEUE_DEPTH_LAST: depths[-1] if depths else 0,
        },
    )


def _forget(started: int) -> None:
    """Delete the run's orders and put the variant's stock back as it was."""
    variant_id, _sku, stock = _state["variant"]
    placed_orders.delete(Order.objects.filter(pk__gt=started))
    Variant.objects.filter(pk=variant_id).update(stock=stock)


def after() -> list[str]:
    restored = []
    gateway = _state.pop("gateway", None)
    if gateway is not None:
        gateway.__exit__(None, None, None)
        restored.append(f"stopped the {GATEWAY_LATENCY_MS} ms stub gateway")
    return restored


SCENARIO = Scenario(
    name="backpressure",
    title=f"orders at {RATE_PER_S:g}/s for {DURATION_S:g} s, 2x the payment workers' capacity",
    path=f"JOB POST /api/orders/ open loop at {RATE_PER_S:g}/s over HTTP",
    prepare=_prepare,
    run=_overload,
    repeat=1,
    hold=holds.BACKPRESSURE,
    targets=(
        Target(
            f"on.metrics.{QUEUE_DEPTH_MAX}.max",
            at_most=BOUND + WEB_WORKERS,
            label=f"payment queue at most its bound ({BOUND}) plus the web processes in flight",
        ),
        Target(
            f"on.metrics.{RESPONSE_P99_MS}.max",
            at_most=1000,
            label="accepted orders answered within 1 s (p99)",
        ),
    ),
    notes=(
        f"A gunicorn ({WEB_WORKERS} workers), a payment worker ({PAYMENT_CONCURRENCY} "
        f"processes) and a {GATEWAY_LATENCY_MS} ms gateway of the run's own; async_tasks held "
        "on. p50 is the accepted orders' response; time_to_paid is placement to capture, "
        "what the queue makes a customer wait."
    ),
)
