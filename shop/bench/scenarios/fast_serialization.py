"""The lists built from values() dicts and orjson when on: the order history's first page, 50
orders with their items, for the customer with the most orders (401 on the medium data set),
the staff list's first page of 50 orders with their customers, the product list's first
page of 50 products with their categories and brands, and the staff sales report over 366
days (366 day rows)."""

from datetime import timedelta

from django.utils import timezone

from shop.bench import holds
from shop.bench.dataset import busiest_username
from shop.bench.scenario import Call, Scenario


def _sales_report() -> Call:
    date_to = timezone.now().date()
    date_from = date_to - timedelta(days=365)  # 366 days, both ends included
    return Call("GET", f"/api/reports/sales/?date_from={date_from}&date_to={date_to}", user="staff")


SCENARIO = Scenario(
    name="fast_serialization",
    title="order history, 50 orders with their items",
    call=lambda: Call("GET", "/api/orders/?page_size=50", user=busiest_username()),
    # The items in one query on both sides: the pair isolates the serialization. Off, each
    # order's `items.all()` and, on, a values() query per order would add N queries to both.
    # denormalized_fields is not held: off or on, both sides send the same page query.
    hold=holds.FAST_SERIALIZATION_ORDER_HISTORY,
    notes="The same queries on both sides; on reads only the columns the page shows.",
)

EXTRA_SCENARIOS = [
    Scenario(
        name="fast_serialization",
        title="staff order list, first cursor page of 50 orders",
        call=lambda: Call("GET", "/api/staff/orders/?page_size=50", user="staff"),
        # The keyset page on both sides: no COUNT(*), and the same rows whatever the data.
        # The customer is JOINed by the selector itself (select_related("user")), whatever
        # the select_related toggle says.
        hold=holds.FAST_SERIALIZATION_STAFF_ORDERS,
    ),
    Scenario(
        name="fast_serialization",
        title="product list, 50 rows with category and brand",
        call=lambda: Call("GET", "/api/products/?page_size=50"),
        # Category and brand JOINed on both sides: the pair isolates the serialization.
        # field_selection on, so the serializer side also reads only the shown columns, as
        # values() does; off, its SELECT * of each description would be counted as this
        # technique's gain.
        hold=holds.FAST_SERIALIZATION_PRODUCT_LIST,
    ),
    Scenario(
        name="fast_serialization",
        title="sales report over 366 days, from its read model",
        call=_sales_report,
        # From the materialized views on both sides, as last refreshed (the seed refreshes
        # them): two short statements, then a report object with 366 day rows to write.
        hold=holds.FAST_SERIALIZATION_SALES_REPORT,
    ),
]
