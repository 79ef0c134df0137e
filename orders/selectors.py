"""Reads of orders. A customer only ever sees their own: another user's order is "not found".
Staff reads (the sales report, the list of all orders, the export) see every order."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django.utils import timezone

from catalog.models import Product
from orders.models import Order, OrderEvent
from shop.errors import InvalidInput, NotFound
from shop.techniques import (
    denormalized_fields,
    materialized_view,
    prefetch_related,
    sparse_fields,
)


def order_list(
    *, user: AbstractBaseUser, fetch: sparse_fields.Fetch = sparse_fields.EVERYTHING
) -> QuerySet[Order]:
    """The user's orders, newest first. `fetch`: the fields the caller shows (sparse_fields),
    everything by default."""
    orders = Order.objects.filter(user=user).order_by("-created_at", "-id")
    if fetch.needs("unit_count", "order_total"):
        orders = denormalized_fields.order_totals(orders)
    return fetch.trim(prefetch_related.apply(orders, "items"))


def order_get(*, user: AbstractBaseUser, order_id: int, history: bool = False) -> Order:
    """One of the user's orders with its items; with `history`, its payments and events too
    (the detail page shows them, the answers to placing and cancelling do not)."""
    orders = Order.objects.filter(pk=order_id, user=user)
    orders = denormalized_fields.order_totals(orders)
    related = ("items", "payments", "events") if history else ("items",)
    order = prefetch_related.apply(orders, *related).first()
    if order is None:
        raise NotFound(f"No order with id {order_id}.")
    return order


def busiest_customer() -> tuple[AbstractBaseUser, int] | None:
    """The customer with the most orders (ties: the lowest id) and how many, or None without
    orders: the longest order history, the example the benchmark and the index plans use."""
    top = Order.objects.values("user_id").annotate(n=Count("id")).order_by("-n", "user_id").first()
    if top is None:
        return None
    return get_user_model().objects.get(pk=top["user_id"]), top["n"]


@dataclass(frozen=True)
class SalesReport:
    date_from: date
    date_to: date
    orders: int
    units: int
    revenue: Decimal
    by_day: list[dict]
    top_products: list[dict]
    # When the read model answering it was refreshed (materialized_view); None when live.
    as_of: datetime | None = None

    @property
    def average_order_value(self) -> Decimal:
        if not self.orders:
            return Decimal("0.00")
        return (self.revenue / self.orders).quantize(Decimal("0.01"))


REPORT_DEFAULT_DAYS = 30
REPORT_MAX_DAYS = 366  # a year and a leap day: the live aggregate scans every order in range
# The read model's views (orders/migrations/0009_...) count the same statuses.
REVENUE_STATUSES = (Order.Status.PAID, Order.Status.CONFIRMED, Order.Status.SHIPPED)


def sales_report(
    *, date_from: date | None = None, date_to: date | None = None, top: int = 10
) -> SalesReport:
    """Revenue by day and the best-selling products, live over the orders table or from its
    read model as of its last refresh (materialized_view: `as_of` says when).

    Only paid, confirmed and shipped orders count. Days are UTC calendar days, both ends included; the
    default is the last 30 days up to today.
    """
    date_from, date_to = _day_range(date_from=date_from, date_to=date_to, max_days=REPORT_MAX_DAYS)
    start, end = _utc_bounds(date_from=date_from, date_to=date_to)
    orders = Order.objects.filter(
        created_at__gte=start, created_at__lt=end, status__in=REVENUE_STATUSES
    )
    sales = materialized_view.sales(orders=orders, date_from=date_from, date_to=date_to, top=top)
    by_day, top_products = sales.by_day, sales.top_products
    names = dict(
        Product.objects.filter(pk__in=[row["product_id"] for row in top_products]).values_list(
            "id", "name"
        )
    )
    for row in top_products:
        row["product_name"] = names.get(row["product_id"], "")
    return SalesReport(
        date_from=date_from,
        date_to=date_to,
        orders=sum(row["orders"] for row in by_day),
        units=sum(row["units"] or 0 for row in by_day),
        revenue=sum((row["revenue"] or Decimal(0) for row in by_day), Decimal("0.00")),
        by_day=by_day,
        top_products=top_products,
        as_of=sales.as_of,
    )


def _day_range(
    *, date_from: date | None, date_to: date | None, max_days: int | None
) -> tuple[date, date]:
    """Check a range of calendar days, both ends included. The default is the last
    REPORT_DEFAULT_DAYS days up to today; `max_days=None` leaves the span unbounded."""
    date_to = date_to or timezone.now().date()
    if date_from is None:
        # In ordinals, so a date_to in year 1 clips to date.min instead of overflowing.
        date_from = date.fromordinal(max(date_to.toordinal() - (REPORT_DEFAULT_DAYS - 1), 1))
    if date_from > date_to:
        raise InvalidInput({"date_from": ["Must not be after date_to."]})
    if max_days is not None and (date_to - date_from).days >= max_days:
        raise InvalidInput({"date_from": [f"The range can span at most {max_days} days."]})
    if date_to >= date.max:
        raise InvalidInput({"date_to": [f"Must be before {date.max.isoformat()}."]})
    return date_from, date_to


def _utc_bounds(*, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """`[start, end)` in UTC: midnight of date_from up to midnight after date_to."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
    return start, end


def order_list_all(
    *, status: str | None = None, date_from: date | None = None, date_to: date | None = None
) -> QuerySet[Order]:
    """Every customer's orders, newest first, with the customer, for staff; optionally only
    those in one status, placed from `date_from` and up to `date_to` (UTC calendar days, both
    ends included; either end may be left open).

    The ordering is unique (it ends with the primary key), so pages never skip or repeat a row,
    whether they are found by OFFSET or by a keyset cursor (the cursor_pagination technique).
    """
    orders = Order.objects.select_related("user").order_by("-created_at", "-id")
    if date_from is not None and date_to is not None and date_from > date_to:
        raise InvalidInput({"date_from": ["Must not be after date_to."]})
    if status is not None:
        orders = orders.filter(status=status)
    if date_from is not None:
        orders = orders.filter(created_at__gte=datetime.combine(date_from, time.min, tzinfo=UTC))
    if date_to is not None:
        if date_to >= date.max:
            raise InvalidInput({"date_to": [f"Must be before {date.max.isoformat()}."]})
        end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
        orders = orders.filter(created_at__lt=end)
    return orders


# The export's CSV columns, each with the field it comes from.
ORDER_EXPORT_COLUMNS = {
    "id": "id",
    "created_at": "created_at",
    "customer": "user__username",
    "status": "status",
    "item_count": "item_count",
    "total_amount": "total_amount",
}


def order_export_rows(*, date_from: date | None = None, date_to: date | None = None) -> QuerySet:
    """Every order placed in the range, oldest first, as tuples in ORDER_EXPORT_COLUMNS order.

    Days are UTC calendar days, both ends included; the default is the last 30 days. The span
    is not capped: the streamed export holds one chunk of rows at a time, whatever the range
    (the streaming_export technique). Tuples, not model instances, since an export may hold
    a hundred thousand of them.
    """
    date_from, date_to = _day_range(date_from=date_from, date_to=date_to, max_days=None)
    start, end = _utc_bounds(date_from=date_from, date_to=date_to)
    return (
        Order.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by("created_at", "id")
        .values_list(*ORDER_EXPORT_COLUMNS.values())
    )


EVENTS_RECENT_MAX_HOURS = 168


def event_list_recent(*, hours: int = 24, limit: int = 50) -> QuerySet[OrderEvent]:
    """The newest events of the last `hours` hours, newest first: the staff activity feed. The
    bound on created_at is what lets a partitioned log read only this month's partition."""
    since = timezone.now() - timedelta(hours=hours)
    return OrderEvent.objects.filter(created_at__gte=since).order_by("-created_at", "-id")[:limit]


def event_month_counts(*, month: date) -> list[dict]:
    """How many events of each kind one UTC month holds, by kind: a partitioned log reads
    that month's partition alone (pruning), a plain one finds the month's rows in its index."""
    start = datetime.combine(month.replace(day=1), time.min, tzinfo=UTC)
    end = datetime.combine((start + timedelta(days=32)).date().replace(day=1), time.min, UTC)
    return list(
        OrderEvent.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("kind")
        .annotate(count=Count("id"))
        .order_by("kind")
    )
