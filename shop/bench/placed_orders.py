"""Deleting the orders a bench run placed for real, so it leaves the data as it found it.

Most write scenarios run inside a transaction that is rolled back. Some must commit: a race
between buyers needs real transactions on separate connections, and a read from the replica
only sees what was committed. Their orders are deleted afterwards, with their items, payment
and events. The event log is append-only (orders/migrations/0002): its trigger refuses DELETE,
so the rule is lifted for the one transaction that deletes them. ALTER TABLE holds an
exclusive lock on the table until the commit, by which time the trigger is back: no other
session ever writes an event without it.
"""

from django.db import connection, transaction
from django.db.models import QuerySet

from orders.models import Order, OrderEvent
from shop.models import OutboxMessage

APPEND_ONLY = "orders_orderevent_append_only"  # the trigger's name
ORDER_TASKS = "orders.tasks."  # the prefix of the order tasks' registered names


def delete(orders: QuerySet[Order]) -> int:
    """Delete these orders and everything that hangs off them, their tasks still in the outbox
    included (transactional_outbox: every order task takes the order's id first); returns how
    many orders."""
    order_ids = list(orders.values_list("id", flat=True))
    with transaction.atomic(), connection.cursor() as cursor:
        OutboxMessage.objects.filter(task__startswith=ORDER_TASKS, args__0__in=order_ids).delete()
        cursor.execute(f"ALTER TABLE orders_orderevent DISABLE TRIGGER {APPEND_ONLY}")
        OrderEvent.objects.filter(order__in=orders).delete()  # events protect their order
        deleted = orders.delete()[1].get("orders.Order", 0)
        cursor.execute(f"ALTER TABLE orders_orderevent ENABLE TRIGGER {APPEND_ONLY}")
    return deleted
