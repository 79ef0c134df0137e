"""An order placed while the payment gateway takes 200 ms and the mail server 50 ms: the charge,
the stock ledger and the confirmation email in the request (off), or on Celery workers once the
order commits (on).

Each run commits, as a customer's order does: a rolled-back order would never publish its tasks
(on_commit), and the on side would measure nothing but the answer. The answer compared is the
order's final state, read once it has settled (`confirmed`, with its ledger rows), off and on:
the status, its events, its payment and its ledger; the placing response itself differs by
design (off answers `confirmed`, on `placed`). Then, untimed, `tasks_done_s` is read from the
database: from the order's `created_at` to the last of its events and ledger rows, the time
its last task finished; `max` over the runs is the figure "every task finished within N s".
The order is then cancelled (its stock comes back) and deleted.

`prepare` starts a stub gateway of its own (GATEWAY_LATENCY_MS), an SMTP server that answers
each message after SMTP_DELAY_MS (shop/smtp_sink.py, on a thread of this process, keeping the
messages in a temporary folder), and a Celery worker per
queue (payment, inventory, email) on the bench's database and broker; `after` stops them. A
worker of the local stack on the same broker would take tasks too: stop it, or give the bench a
broker database of its own (CELERY_BROKER_URL).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Max
from django.http import HttpResponse

from orders.models import Order, StockMovement
from orders.services import order_cancel
from shop import payment_gateway_stub, smtp_sink, toggles
from shop.bench import holds, metrics, placed_orders, task_stack
from shop.bench.scenario import Call, Scenario
from shop.bench.targets import Target

GATEWAY_LATENCY_MS = 200
SMTP_DELAY_MS = 50
CUSTOMER = "user1"
LINES = 2
SETTLE_S = 30  # how long a run waits for its order's tasks before it reports a difference
# Per queue: enough for the runs' tasks, which the answer waits for, one order at a time.
QUEUES = {"payment": 2, "inventory": 1, "email": 1}
# Units above the low-stock threshold the lines' variants must have: the ledger's low-stock
# email never fires (each run takes one unit and gives it back).
STOCK_MARGIN = 50

_state: dict = {}


def _prepare() -> None:
    from catalog.models import Variant

    after()
    least = settings.LOW_STOCK_THRESHOLD + STOCK_MARGIN
    variants = Variant.objects.filter(product__is_active=True, stock__gte=least).order_by("id")
    _state["skus"] = list(variants.values_list("sku", flat=True)[:LINES])
    if len(_state["skus"]) < LINES:
        raise RuntimeError(f"async_tasks needs {LINES} variants with {least}+ units in stock")
    if not get_user_model().objects.filter(username=CUSTOMER).exclude(email="").exists():
        raise RuntimeError(f"async_tasks needs the seeded {CUSTOMER} with an email address")
    stub = payment_gateway_stub.GatewayStub(latency_s=GATEWAY_LATENCY_MS / 1000)
    gateway = payment_gateway_stub.running(stub)
    url = gateway.__enter__()
    _state["gateway"] = gateway
    folder = Path(tempfile.mkdtemp(prefix="perfshop-bench-mail-"))
    sink = smtp_sink.running(folder, delay_ms=SMTP_DELAY_MS)
    smtp = sink.__enter__()
    _state["smtp"] = (sink, folder)
    mail = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": smtp.port,
    }
    _state["previous"] = {name: getattr(settings, name) for name in ["PAYMENT_GATEWAY_URL", *mail]}
    # Off sends from this process; on, the workers send, with the same settings.
    settings.PAYMENT_GATEWAY_URL = url
    for name, value in mail.items():
        setattr(settings, name, value)
    _state["workers"] = task_stack.start_workers(
        QUEUES,
        env={
            "PAYMENT_GATEWAY_URL": url,
            # The tasks a worker publishes (the email after a capture) go as the request's do.
            "PERF_TOGGLES": toggles.format_flags(dict(holds.ASYNC_TASKS)),
            **{name: str(value) for name, value in mail.items()},
        },
    )


def _call() -> Call:
    items = [{"sku": sku, "quantity": 1} for sku in _state["skus"]]
    return Call("POST", "/api/orders/", data={"items": items}, user=CUSTOMER)


def _settled(order_id: int) -> bool:
    status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
    rows = StockMovement.objects.filter(order_id=order_id).count()
    if status == Order.Status.CONFIRMED:
        return rows == LINES
    return status == Order.Status.PAYMENT_FAILED and rows == 2 * LINES


def _answer(response: HttpResponse) -> dict:
    """The order's final state once its tasks are done (waited for, untimed)."""
    if response.status_code != 201:
        return {"status": response.status_code, "body": response.json()}
    order_id = response.json()["id"]
    deadline = time.monotonic() + SETTLE_S
    while not _settled(order_id) and time.monotonic() < deadline:
        time.sleep(0.005)
    order = Order.objects.get(pk=order_id)
    return {
        "status": response.status_code,
        "final": order.status,
        "events": list(order.events.order_by("id").values_list("kind", flat=True)),
        "payments": list(order.payments.values_list("status", flat=True)),
        "ledger": sorted(order.stock_movements.values_list("variant__sku", "kind", "quantity")),
    }


def _metrics(response: HttpResponse) -> dict[str, float]:
    if response.status_code != 201:
        return {}
    order_id = response.json()["id"]
    order = Order.objects.get(pk=order_id)
    last = max(
        value
        for value in (
            order.events.aggregate(last=Max("created_at"))["last"],
            order.stock_movements.aggregate(last=Max("created_at"))["last"],
        )
        if value is not None
    )
    done_s = (last - order.created_at).total_seconds()
    _forget(order_id)
    return {metrics.TASKS_DONE_S: round(done_s, 4)}


def _forget(order_id: int) -> None:
    """Cancel the order, so its stock comes back, then delete it: the data is as it was.
    async_tasks off for the cancel: its ledger row is written here, not left to a worker as
    a task for an order about to be deleted."""
    with toggles.override(async_tasks=False):
        order_cancel(user=get_user_model().objects.get(username=CUSTOMER), order_id=order_id)
    placed_orders.delete(Order.objects.filter(pk=order_id))


def after() -> list[str]:
    """Stop the workers, the mail server and the gateway; point the settings back."""
    stopped = []
    workers = _state.pop("workers", None)
    if workers is not None:
        workers.stop()
        stopped.append("stopped the bench's Celery workers")
    smtp = _state.pop("smtp", None)
    if smtp is not None:
        sink, folder = smtp
        sink.__exit__(None, None, None)
        shutil.rmtree(folder, ignore_errors=True)
        stopped.append(f"stopped the {SMTP_DELAY_MS} ms mail server")
    gateway = _state.pop("gateway", None)
    if gateway is not None:
        gateway.__exit__(None, None, None)
        stopped.append(f"stopped the {GATEWAY_LATENCY_MS} ms stub gateway")
    for name, value in _state.pop("previous", {}).items():
        setattr(settings, name, value)
    return stopped


SCENARIO = Scenario(
    name="async_tasks",
    title=f"place an order, {GATEWAY_LATENCY_MS} ms gateway, {SMTP_DELAY_MS} ms mail server",
    prepare=_prepare,
    call=_call,
    commits=True,  # over HTTP nothing would wait for the tasks or clean up: the HTTP modes skip it
    answer=_answer,
    metrics=_metrics,
    hold=holds.ASYNC_TASKS,
    targets=(
        Target("speedup_p50", at_least=5, label="p50 at least 5x lower on"),
        Target(
            f"on.metrics.{metrics.TASKS_DONE_S}.max",
            at_most=5,
            label="every task finished within 5 s of its order",
        ),
    ),
    notes=(
        "Commits for real: each order is waited for (untimed) until it is confirmed with its "
        "ledger, then cancelled and deleted. The answer compared is that final state: the "
        "response differs by design (off `confirmed`, on `placed`). tasks_done_s: from the "
        "order's placement to its last task's end (max: every task finished within it)."
    ),
)
