"""Let PostgreSQL group and sum, and send back the totals instead of every row.

The sales report needs, for the paid and shipped orders in a date range, the orders, units and
revenue of each day, and the products with the most revenue.

Off: fetch the orders, then their items, and add them up in Python loops. Over a year of the
medium data set that is about 56,000 orders and 168,000 items: each row is sent over the wire,
turned into a Python tuple and visited once, only to become a few hundred totals. (The rows are
plain `values_list` tuples; as model instances the same loops take several times longer.)

On: `annotate()`/`aggregate()` turn the loops into `GROUP BY` and `SUM()`. PostgreSQL reads
the same rows, but it sends back one row per day and the top products only.

Both paths take the same orders queryset and return the same rows: `by_day` ordered by day,
and `top_products` ordered by revenue, then product id, so ties rank the same way. The
selector (orders.selectors.sales_report) adds the product names and the grand totals.
"""

from datetime import UTC, date
from decimal import Decimal

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate

from orders.models import Order, OrderItem
from shop import toggles

TOGGLE = toggles.register(
    "db_aggregation",
    group="data_access",
    description="GROUP BY and SUM in SQL instead of summing fetched rows in Python",
)


def sales_by_day_and_product(*, orders: QuerySet[Order], top: int) -> tuple[list[dict], list[dict]]:
    """`by_day`: `{"day", "orders", "units", "revenue"}` per day that has orders, oldest first.
    `top_products`: `{"product_id", "units", "revenue"}` for the `top` best-earning products."""
    if not toggles.is_enabled(TOGGLE.name):
        return _naive(orders=orders, top=top)
    return _optimized(orders=orders, top=top)


def _naive(*, orders: QuerySet[Order], top: int) -> tuple[list[dict], list[dict]]:
    # Tuples, not model instances, so what is measured is the rows sent and the loops alone.
    order_rows = orders.values_list("created_at", "item_count", "total_amount")
    days: dict[date, dict] = {}
    for created_at, item_count, total_amount in order_rows:  # every order in range
        day = created_at.astimezone(UTC).date()
        totals = days.setdefault(day, {"orders": 0, "units": 0, "revenue": Decimal(0)})
        totals["orders"] += 1
        totals["units"] += item_count
        totals["revenue"] += total_amount
    by_day = [{"day": day, **days[day]} for day in sorted(days)]

    items = OrderItem.objects.filter(order__in=orders)
    item_rows = items.values_list("variant__product_id", "unit_price", "quantity")
    products: dict[int, dict] = {}
    for product_id, unit_price, quantity in item_rows:  # and every one of their items
        totals = products.setdefault(product_id, {"units": 0, "revenue": Decimal(0)})
        totals["units"] += quantity
        totals["revenue"] += unit_price * quantity
    ranked = sorted(products.items(), key=lambda pair: (-pair[1]["revenue"], pair[0]))
    top_products = [{"product_id": product_id, **totals} for product_id, totals in ranked[:top]]
    return by_day, top_products


def _optimized(*, orders: QuerySet[Order], top: int) -> tuple[list[dict], list[dict]]:
    by_day = list(
        orders.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(orders=Count("id"), units=Sum("item_count"), revenue=Sum("total_amount"))
        .order_by("day")
    )
    top_products = list(
        OrderItem.objects.filter(order__in=orders)
        .values(product_id=F("variant__product_id"))
        .annotate(
            units=Sum("quantity"),
            revenue=Sum(F("unit_price") * F("quantity")),
        )
        .order_by("-revenue", "product_id")[:top]
    )
    return by_day, top_products
