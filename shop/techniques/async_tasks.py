"""Take the work the customer need not wait for out of the request: the payment capture, the
stock ledger and the confirmation email run on Celery workers, enqueued when the order commits.

Placing an order does four things. Only the first decides the answer: (1) take the stock
(inventory_locking: 409 when it runs out, never an oversold unit). The others are slow, or
talk to other companies' servers: (2) charge the card at the payment gateway (100-300 ms),
(3) write the stock ledger and warn the stock team of a variant running low, (4) email the
customer through the SMTP server (tens of ms, seconds when it is busy).

Off: the code a team writes first. The request does all four, one after another
(short_transactions decides the transactions around the charge), and answers 201 with the order
`confirmed`, or 402/502/504 when the charge failed. The customer waits for the gateway and the
mail server; a mail server that is down loses the email (logged), with nobody to retry it.

On: the request takes the stock and writes the order `placed` with a `pending` payment, and
enqueues two tasks that are published once it commits (`enqueue()`): the capture (queue `payment`) and the stock
ledger (queue `inventory`). It answers 201 with the order `placed`; the customer polls
`GET /api/orders/{id}/`. The capture charges the card and moves the order to `paid`, then
enqueues the confirmation email (queue `email`), which moves it to `confirmed`; a charge the
gateway refuses moves it to `payment_failed` and gives the stock back, with an event saying
why, and runs the ledger again so it records the return.

Why on commit: a task published inside the transaction can reach a worker before the commit
(the worker finds no order) or after a rollback (an order that never was gets charged). After
the commit, no task ever runs for an order that does not exist. The price: a crash between the
commit and the publish, or a broker that is down at the commit, loses the task; the
transactional_outbox technique closes that gap, and `enqueue()` publishes through it.

Every task is safe to run twice (workers ack late, so a task whose worker died runs again):
the capture charges by the payment's idempotency key and records only from `pending`, the
ledger writes a (line, kind) row once, the email checks the event log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from smtplib import SMTPException
from typing import Any, Protocol, TypeVar

from django.db import transaction

from shop import toggles
from shop.errors import DomainError
from shop.techniques import transactional_outbox

logger = logging.getLogger(__name__)

TOGGLE = toggles.register(
    "async_tasks",
    group="queues",
    description="capture the payment, write the stock ledger and send the email on Celery "
    "workers, enqueued on commit, instead of in the request",
)


class Task(Protocol):
    name: str

    def __call__(self, *args: Any) -> Any: ...

    def apply_async(self, args: tuple | None = None, **options: Any) -> Any: ...


class Placed(Protocol):
    created: bool

    @property
    def order(self) -> Any: ...


Placement = TypeVar("Placement", bound=Placed)


def enqueue(task: Task, *args: Any) -> None:
    """Publish `task(*args)` once the current transaction commits, and never for one that rolls
    back. The one place an order's tasks are published from; how they reach the broker is the
    transactional_outbox technique's: sent after the commit (a broker that is down then costs
    the task, logged with its name and arguments, never the write's answer), or written as an
    outbox row in this transaction and sent by the relay."""
    transactional_outbox.publish(task, *args)


def run(task: Task, *args: Any) -> None:
    """Follow-up work of a write: in this process now (off), or on a worker once the write
    commits (on)."""
    if not toggles.is_enabled(TOGGLE.name):
        task(*args)  # naive: the request waits for it
        return
    enqueue(task, *args)


def place(
    *,
    reserve: Callable[[], tuple[Placement, Any]],
    pay_inline: Callable[[], Placement],
    capture: Task,
    stock: Task,
    confirm: Task,
    atomic: Callable[[], AbstractContextManager] = transaction.atomic,
) -> Placement:
    """Place an order. `pay_inline` reserves, charges and records in the request (off);
    `reserve` only takes the stock and writes the order and its pending payment, returning
    (placement, payment or None for an idempotent replay). The tasks take an order id."""
    if not toggles.is_enabled(TOGGLE.name):
        return _naive(pay_inline=pay_inline, stock=stock, confirm=confirm)
    return _optimized(reserve=reserve, capture=capture, stock=stock, atomic=atomic)


def _naive(*, pay_inline, stock, confirm):
    try:
        placement = pay_inline()  # reserve, charge at the gateway, record: the customer waits
    except DomainError as exc:
        # A refused charge: the order (when short_transactions wrote one) gave its stock back;
        # the ledger records the sale and the return before the customer hears of it.
        if "order_id" in exc.details:
            stock(exc.details["order_id"])
        raise
    if not placement.created:
        return placement  # an Idempotency-Key replay: the first request did the work
    order_id = placement.order.pk
    stock(order_id)  # the stock ledger, and the low-stock email
    try:
        confirm(order_id)  # through the mail server: the customer waits for it too
    except (SMTPException, OSError):
        # Nobody will retry it: the order stays `paid`, its email unsent.
        logger.exception("order %s: the confirmation email could not be sent", order_id)
    return placement


def _optimized(*, reserve, capture, stock, atomic):
    with atomic():
        placement, payment = reserve()  # stock taken, order `placed`, payment `pending`
        if payment is not None:
            order_id = placement.order.pk
            enqueue(capture, order_id)  # published after the commit, never after a rollback
            enqueue(stock, order_id)
    return placement
