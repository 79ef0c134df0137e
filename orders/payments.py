"""Charging an order: at the gateway, then recording the answer. The same three steps serve
both ways of placing an order (async_tasks): in the request, where short_transactions decides
the transactions around them, and on the `payment` queue, where `order_payment_capture` runs
them for an order the request left `placed`.

Each step is safe to run twice: the gateway charges a payment's idempotency key once, and the
answer is recorded only by the run that moves the payment out of `pending` (a conditional
UPDATE), so a task redelivered after a crash, or run twice at once, charges and records once.
"""

import logging

from django.db import transaction
from django.utils import timezone

from orders.models import Order, OrderEvent, Payment
from orders.stock import OrderGone, restock
from shop import payment_gateway
from shop.errors import DomainError
from shop.techniques import async_tasks

logger = logging.getLogger(__name__)


def charge(payment: Payment) -> payment_gateway.Charge:
    """Charge the payment at the gateway. After a timeout nobody knows whether the charge was
    taken, so it is voided by its key before the order gives its stock back."""
    try:
        return payment_gateway.charge(
            idempotency_key=payment.idempotency_key, amount=payment.amount
        )
    except payment_gateway.GatewayTimeout:
        payment_gateway.void(idempotency_key=payment.idempotency_key)
        raise


def record(payment: Payment, charge: payment_gateway.Charge) -> bool:
    """The charge was taken: the payment is captured and the order paid. Returns whether the
    order became paid by this call (False: another run recorded it first, or the customer
    cancelled while the charge was on its way, and the money went back)."""
    order, now = payment.order, timezone.now()
    claimed = Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
        status=Payment.Status.CAPTURED, provider_reference=charge.reference, updated_at=now
    )
    if not claimed:
        return False  # a second run of the same capture: the first one recorded it
    payment.provider_reference, payment.status = charge.reference, Payment.Status.CAPTURED
    paid = Order.objects.filter(pk=order.pk, status=Order.Status.PLACED).update(
        status=Order.Status.PAID, paid_at=now, updated_at=now
    )
    if not paid:
        # Cancelled by the customer while the charge was on its way: the money goes back.
        payment_gateway.void(idempotency_key=payment.idempotency_key)
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.REFUNDED, updated_at=now)
        payment.status = Payment.Status.REFUNDED
        return False
    order.status, order.paid_at = Order.Status.PAID, now
    OrderEvent.objects.create(
        order=order, kind=OrderEvent.Kind.PAID, created_at=now, data={"amount": str(payment.amount)}
    )
    return True


def undo(payment: Payment, error: Exception) -> bool:
    """The charge was not taken: fail the payment, give the stock back, mark the order
    `payment_failed` and log why. The customer's answer (a DomainError) names the order and
    its state. Returns whether this call did it (False: another run had already)."""
    order, now = payment.order, timezone.now()
    reason = getattr(error, "code", "error")
    claimed = Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
        status=Payment.Status.FAILED, updated_at=now
    )
    if not claimed:
        return False
    payment.status = Payment.Status.FAILED
    failed = Order.objects.filter(pk=order.pk, status=Order.Status.PLACED).update(
        status=Order.Status.PAYMENT_FAILED, updated_at=now
    )
    restocked = restock(order=order) if failed else 0
    if failed:
        order.status = Order.Status.PAYMENT_FAILED
    OrderEvent.objects.create(
        order=order,
        kind=OrderEvent.Kind.PAYMENT_FAILED,
        created_at=now,
        data={"reason": reason, "restocked_units": restocked},
    )
    if isinstance(error, DomainError):
        error.details.update(order_id=order.pk, order_status=order.status)
    return True


# Errors that leave no charge behind (refused connection, an open breaker): worth a retry of the
# capture with the same key. A timeout is not among them: the charge was voided by its key.
RETRIED = (payment_gateway.GatewayUnavailable, payment_gateway.GatewayCircuitOpen)


def order_payment_capture(*, order_id: int, final_attempt: bool = True) -> str:
    """The payment task's work: charge a `placed` order's pending payment and record the
    answer, with no transaction open during the gateway's round trip. Returns the order's
    state afterwards. A run that finds the payment no longer pending does nothing (the
    capture ran already); an order cancelled before its capture is never charged; a missing
    order raises OrderGone, an error no retry can mend."""
    payment = (
        Payment.objects.select_related("order").filter(order_id=order_id).order_by("-id").first()
    )
    if payment is None:
        if not Order.objects.filter(pk=order_id).exists():
            raise OrderGone(f"No order with id {order_id}.")
        return Order.objects.get(pk=order_id).status
    if payment.status != Payment.Status.PENDING:
        return payment.order.status  # the capture ran already
    if payment.order.status != Order.Status.PLACED:
        # Cancelled before this run: possibly after an earlier run of this task took the charge
        # and died before recording it. Voiding the key makes sure no money stays taken (a key
        # never charged voids harmlessly), and the payment is settled as failed.
        payment_gateway.void(idempotency_key=payment.idempotency_key)
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
            status=Payment.Status.FAILED, updated_at=timezone.now()
        )
        return payment.order.status
    from orders import tasks  # tasks import this module

    try:
        taken = charge(payment)  # no transaction open, no row locked
    except RETRIED as exc:
        if not final_attempt:
            # Nothing was sent or taken: the payment queue's task runs again after a backoff
            # (shop/celery_tasks.py), the order stays placed with its stock held.
            raise
        _fail(payment, exc, order_id)
        return Order.objects.get(pk=order_id).status
    except payment_gateway.PaymentError as exc:
        _fail(payment, exc, order_id)
        return Order.objects.get(pk=order_id).status
    with transaction.atomic():
        if record(payment, taken):
            async_tasks.enqueue(tasks.send_order_confirmation, order_id)
    return Order.objects.get(pk=order_id).status


def _fail(payment: Payment, exc: payment_gateway.PaymentError, order_id: int) -> None:
    """No money was taken: the order is payment_failed and its stock goes back."""
    from orders import tasks  # tasks import this module

    with transaction.atomic():
        if undo(payment, exc):
            # The ledger records the return the stock just got.
            async_tasks.enqueue(tasks.record_stock_movements, order_id)
    logger.info("order %s: payment failed (%s)", order_id, exc.code)
