"""An order's units and the stock: giving them back, and the stock ledger (the inventory work
that async_tasks runs after the order, inline or on the `inventory` queue).

Stock itself is taken in the request, by inventory_locking, because the request must answer
409 when it runs out; what can wait is the bookkeeping around it: one ledger row per line
(orders.models.StockMovement) and an email to the stock team when a variant runs low.
"""

import logging
from smtplib import SMTPException

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from catalog import payloads
from catalog.models import Variant
from orders.models import Order, OrderItem, StockMovement
from shop.errors import NotFound

logger = logging.getLogger(__name__)

# An order in one of these has given its units back.
RESTOCKED = (Order.Status.PAYMENT_FAILED, Order.Status.CANCELLED)


class OrderGone(NotFound):
    """The task's order does not exist (deleted, or an id from another database): retrying
    cannot help, so the task ends with this error instead of looping."""


def restock(*, order: Order) -> int:
    """Give an order's units back to stock, in variant-id order (the order stock is taken in,
    so this cannot deadlock with an order being placed). Returns the units given back."""
    restocked, product_ids = 0, set()
    for variant_id, quantity, product_id in order.items.order_by("variant_id").values_list(
        "variant_id", "quantity", "variant__product_id"
    ):
        Variant.objects.filter(pk=variant_id).update(stock=F("stock") + quantity)
        restocked += quantity
        product_ids.add(product_id)
    # The product pages show the stock (the lists do not): theirs go once this commits.
    payloads.products_changed_on_commit(*sorted(product_ids), lists=False)
    return restocked


def order_stock_record(*, order_id: int) -> int:
    """Bring the stock ledger up to date with the order: a `sale` row per line and, when the
    order gave its units back, a `return` row per line. Safe to run twice, or two at once:
    a (line, kind) pair is written once (ON CONFLICT DO NOTHING on its unique constraint), and
    the low-stock email goes out only from the run that wrote the sales. Returns the rows
    this run wrote."""
    status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
    if status is None:
        raise OrderGone(f"No order with id {order_id}.")
    # In variant-id order, the order stock is taken in: each row's foreign key check locks
    # its variant (KEY SHARE), which must not cross an order locking the same variants.
    items = list(
        OrderItem.objects.filter(order_id=order_id)
        .order_by("variant_id")
        .values_list("variant_id", "quantity")
    )
    kinds = [(StockMovement.Kind.SALE, -1)]
    if status in RESTOCKED:
        kinds.append((StockMovement.Kind.RETURN, 1))
    now = timezone.now()
    rows = [
        (order_id, variant_id, kind.value, sign * quantity, now)
        for variant_id, quantity in items
        for kind, sign in kinds
    ]
    if not rows:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        # RETURNING names only the rows this run inserted: a run racing another waits on the
        # unique index, then inserts nothing, and so sends no second alert.
        cursor.execute(
            "INSERT INTO orders_stockmovement (order_id, variant_id, kind, quantity, created_at) "
            f"VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(rows))} "
            "ON CONFLICT (order_id, variant_id, kind) DO NOTHING RETURNING kind",
            [value for row in rows for value in row],
        )
        written = [kind for (kind,) in cursor.fetchall()]
        if StockMovement.Kind.SALE in written and status not in RESTOCKED:
            # After the commit: a mail server that is down never rolls the ledger back, nor
            # fails the order whose request wrote it (async_tasks off).
            variant_ids = [variant_id for variant_id, _ in items]
            transaction.on_commit(lambda: _low_stock_alert_logged(variant_ids=variant_ids))
    return len(written)


def _low_stock_alert_logged(*, variant_ids: list[int]) -> None:
    try:
        _low_stock_alert(variant_ids=variant_ids)
    except (OSError, SMTPException):
        logger.exception("the low-stock alert for variants %s could not be sent", variant_ids)


def _low_stock_alert(*, variant_ids: list[int]) -> bool:
    """Email the stock team the variants this order left at or below the threshold."""
    low = list(
        Variant.objects.filter(pk__in=variant_ids, stock__lte=settings.LOW_STOCK_THRESHOLD)
        .order_by("sku")
        .values_list("sku", "stock")
    )
    if not low or not settings.LOW_STOCK_ALERT_EMAIL:
        return False
    lines = "\n".join(f"{sku}: {stock} left" for sku, stock in low)
    send_mail(
        subject=f"PerfShop low stock: {', '.join(sku for sku, _ in low)}",
        message=f"At or below {settings.LOW_STOCK_THRESHOLD} units:\n{lines}",
        from_email=None,
        recipient_list=[settings.LOW_STOCK_ALERT_EMAIL],
    )
    logger.info("low stock alert sent for %s", [sku for sku, _ in low])
    return True
