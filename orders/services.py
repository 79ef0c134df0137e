"""Writes to orders: placing, cancelling, confirming. Every rule that keeps stock and the
denormalized totals right lives here, and each write is one transaction, except placing an
order, whose payment call the short_transactions technique may put between two, and which
async_tasks may leave to workers (orders/payments.py, orders/stock.py)."""

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from catalog import payloads
from catalog.models import Variant
from orders import payments, stock
from orders.models import Address, Order, OrderEvent, OrderItem, Payment
from shop.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from shop.techniques import (
    algorithmic_complexity,
    async_tasks,
    bulk_writes,
    inventory_locking,
    short_transactions,
)

logger = logging.getLogger(__name__)

CANCELLABLE = (Order.Status.PLACED, Order.Status.PAID, Order.Status.CONFIRMED)
# The largest total the columns hold (numeric(12, 2)); a bigger order is refused, not a 500.
MAX_ORDER_TOTAL = Decimal("9999999999.99")
# By name: orders.tasks imports this module.


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class OrderPlacement:
    order: Order
    created: bool  # False when an Idempotency-Key replay returned the earlier order


@inventory_locking.retried  # a SERIALIZABLE order aborted by a concurrent one runs again
def order_place(
    *,
    user: AbstractBaseUser,
    lines: Sequence[OrderLine],
    shipping_address_id: int | None = None,
    idempotency_key: str | None = None,
) -> OrderPlacement:
    """Validate, reserve stock, write the order with its items and events; then charge it at
    the payment gateway, write the stock ledger and send the confirmation, in the request or
    on workers (async_tasks).

    With an idempotency key, a retry of the same request returns the order it created, even
    while the first attempt is still running, and the same key with a different request is
    refused. When the charge in the request fails or times out, a PaymentError (402/502/504)
    is raised and nothing stays half-written: either nothing was written, or the order is
    `payment_failed` with its stock given back and an event saying why. On workers, the same
    happens to the order after the answer (201, `placed`).
    """
    lines_validate(lines=lines)
    fingerprint = request_fingerprint(lines=lines, shipping_address_id=shipping_address_id)

    def reserve() -> tuple[OrderPlacement, Payment | None]:
        if idempotency_key:
            # Claim the key before taking stock: a retry racing the first attempt waits here,
            # then replays its order, instead of finding the stock gone and answering 409.
            _idempotency_key_lock(user=user, key=idempotency_key)
            earlier = _idempotent_replay(user=user, key=idempotency_key, fingerprint=fingerprint)
            if earlier is not None:
                return OrderPlacement(order=earlier, created=False), None
        payment = _order_write(
            user=user,
            lines=lines,
            shipping_address_id=shipping_address_id,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        return OrderPlacement(order=payment.order, created=True), payment

    def pay_inline() -> OrderPlacement:
        # Where the transactions begin and end around the gateway call is the
        # short_transactions technique: one around everything, or one before and one after.
        return short_transactions.place(
            reserve=reserve,
            charge=payments.charge,
            record=payments.record,
            give_back=payments.undo,
            atomic=inventory_locking.atomic,
        )

    tasks = _tasks()
    # Whether the charge, the stock ledger and the email happen in the request or on workers
    # is the async_tasks technique. The transaction that takes the stock is inventory_locking's
    # (SERIALIZABLE under that strategy, which the decorator above retries).
    return async_tasks.place(
        reserve=reserve,
        pay_inline=pay_inline,
        capture=tasks.capture_payment,
        stock=tasks.record_stock_movements,
        confirm=tasks.send_order_confirmation,
        atomic=inventory_locking.atomic,
    )


def lines_validate(*, lines: Sequence[OrderLine]) -> None:
    """Limits on one order, checked before any query. Errors are keyed by line, as DRF does."""
    max_lines = settings.ORDER_MAX_LINES
    max_quantity = settings.ORDER_MAX_QUANTITY_PER_LINE
    if not lines:
        raise InvalidInput({"items": ["An order needs at least one item."]})
    if len(lines) > max_lines:
        raise InvalidInput(
            {"items": [f"An order can have at most {max_lines} items, got {len(lines)}."]}
        )
    repeated = algorithmic_complexity.repeats([line.sku for line in lines])
    errors: dict[int, dict] = {}
    for index, line in enumerate(lines):
        if not 1 <= line.quantity <= max_quantity:
            errors.setdefault(index, {})["quantity"] = [f"Must be between 1 and {max_quantity}."]
        if repeated[index]:
            errors.setdefault(index, {})["sku"] = [
                f"SKU {line.sku!r} appears more than once; combine the quantities."
            ]
    if errors:
        raise InvalidInput({"items": errors})


def request_fingerprint(*, lines: Sequence[OrderLine], shipping_address_id: int | None) -> str:
    canonical = json.dumps(
        {"items": [[line.sku, line.quantity] for line in lines], "address": shipping_address_id},
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotent_replay(*, user: AbstractBaseUser, key: str, fingerprint: str) -> Order | None:
    earlier = Order.objects.filter(user=user, idempotency_key=key).first()
    if earlier is not None and earlier.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request."
        )
    return earlier


def _idempotency_key_lock(*, user: AbstractBaseUser, key: str) -> None:
    """A transaction-scoped advisory lock on (customer, key), released at commit or rollback.
    The unique constraint on the pair stays as the last line of defence."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"order:{user.pk}:{key}"]
        )


def _order_write(
    *,
    user: AbstractBaseUser,
    lines: Sequence[OrderLine],
    shipping_address_id: int | None,
    idempotency_key: str | None,
    fingerprint: str,
) -> Payment:
    """Take the stock and write the order (`placed`), its items and its `pending` payment:
    what the gateway is then asked to charge."""
    address = _shipping_address(user=user, address_id=shipping_address_id)
    variants = _variants_by_sku(lines=lines)
    _stock_reserve(lines=lines, variants=variants)

    now = timezone.now()
    total = sum((variants[line.sku].price * line.quantity for line in lines), Decimal("0.00"))
    if total > MAX_ORDER_TOTAL:
        raise InvalidInput({"items": [f"The order total {total} exceeds {MAX_ORDER_TOTAL}."]})
    order = Order.objects.create(
        user=user,
        shipping_address=address,
        status=Order.Status.PLACED,
        created_at=now,
        item_count=sum(line.quantity for line in lines),
        total_amount=total,
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint,
    )
    bulk_writes.insert(
        OrderItem,
        [
            OrderItem(
                order=order,
                variant=variants[line.sku],
                product_name=variants[line.sku].product.name,
                sku=line.sku,
                unit_price=variants[line.sku].price,
                quantity=line.quantity,
            )
            for line in lines
        ],
    )
    payment = Payment.objects.create(
        order=order,
        amount=total,
        status=Payment.Status.PENDING,
        # The gateway charges a key once. Unique beyond this database (its ids start over on a
        # restored or a test database, the gateway's memory does not).
        idempotency_key=f"order-{order.pk}-{uuid.uuid4().hex[:16]}",
        created_at=now,
    )
    OrderEvent.objects.create(
        order=order, kind=OrderEvent.Kind.PLACED, created_at=now, data={"lines": len(lines)}
    )
    return payment


def _shipping_address(*, user: AbstractBaseUser, address_id: int | None) -> Address | None:
    addresses = Address.objects.filter(user=user)
    if address_id is None:
        return addresses.order_by("-is_default", "id").first()
    address = addresses.filter(pk=address_id).first()
    if address is None:
        raise InvalidInput({"shipping_address_id": [f"You have no address with id {address_id}."]})
    return address


def _variants_by_sku(*, lines: Sequence[OrderLine]) -> dict[str, Variant]:
    skus = [line.sku for line in lines]
    fetched = list(
        Variant.objects.filter(sku__in=skus, product__is_active=True).select_related("product")
    )
    matched = algorithmic_complexity.match(skus, fetched)
    errors = {
        index: {"sku": [f"Unknown SKU {sku!r}."]}
        for index, (sku, variant) in enumerate(zip(skus, matched, strict=True))
        if variant is None
    }
    if errors:
        raise InvalidInput({"items": errors})
    return dict(zip(skus, matched, strict=True))


def _stock_reserve(*, lines: Sequence[OrderLine], variants: dict[str, Variant]) -> None:
    """Take the stock of every line, or none: inventory_locking decides how concurrent orders
    are kept from selling the same units (a conditional UPDATE, row locks, a version, ...)."""
    short_ids = inventory_locking.take(
        quantities={variants[line.sku].pk: line.quantity for line in lines}
    )
    short = sorted(
        (line for line in lines if variants[line.sku].pk in short_ids),
        key=lambda line: variants[line.sku].pk,
    )
    if not short:
        # The product pages show the stock (the lists do not): theirs go once the order commits.
        product_ids = sorted({variant.product_id for variant in variants.values()})
        payloads.products_changed_on_commit(*product_ids, lists=False)
    if short:
        available = dict(
            Variant.objects.filter(sku__in=[line.sku for line in short]).values_list("sku", "stock")
        )
        raise Conflict(
            "Not enough stock for some items; nothing was ordered.",
            code="insufficient_stock",
            items=[
                {"sku": line.sku, "requested": line.quantity, "available": available[line.sku]}
                for line in short
            ],
        )


def order_cancel(*, user: AbstractBaseUser, order_id: int) -> Order:
    """Cancel an order not yet shipped: restock its items, refund its payment, log the event;
    the stock ledger records the return (async_tasks: now, or on a worker after the commit)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id, user=user).first()
        if order is None:
            raise NotFound(f"No order with id {order_id}.")
        if order.status not in CANCELLABLE:
            raise Conflict(f"A {order.status} order cannot be cancelled.", code="not_cancellable")
        restocked = stock.restock(order=order)
        now = timezone.now()
        order.status = Order.Status.CANCELLED
        order.cancelled_at = now
        order.save(update_fields=["status", "cancelled_at", "updated_at"])
        order.payments.filter(status=Payment.Status.CAPTURED).update(
            status=Payment.Status.REFUNDED, updated_at=now
        )
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.CANCELLED,
            created_at=now,
            data={"restocked_units": restocked},
        )
        async_tasks.run(_tasks().record_stock_movements, order.pk)
    return order


def _tasks():
    from orders import tasks  # tasks import this module

    return tasks


def order_confirmation_send(*, order_id: int) -> bool:
    """Email the customer that their paid order is confirmed, and move it to `confirmed`.
    Safe to run twice (tasks ack late): the event log says whether it was already sent.
    Returns whether an email went out."""
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("user").filter(pk=order_id).first()
        if order is None:
            logger.warning("order %s vanished before its confirmation was sent", order_id)
            return False
        if order.status != Order.Status.PAID:
            return False  # not paid (yet, or ever), or confirmed already
        if order.events.filter(kind=OrderEvent.Kind.CONFIRMATION_SENT).exists():
            return False
        recipient = order.user.email
        if recipient:
            send_mail(
                subject=f"PerfShop order {order.pk} is confirmed",
                message=(
                    f"Thank you for your order {order.pk}: {order.item_count} items, "
                    f"{order.total_amount} in total."
                ),
                from_email=None,
                recipient_list=[recipient],
            )
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.CONFIRMATION_SENT,
            created_at=timezone.now(),
            data={"to": recipient},
        )
        order.status = Order.Status.CONFIRMED
        order.save(update_fields=["status", "updated_at"])
    return bool(recipient)
