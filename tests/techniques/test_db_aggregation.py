"""db_aggregation: the sales report is byte-identical off and on; off, every order and item in
range comes back to Python, on, one row per day and the top products."""

from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from orders import selectors
from orders.models import Order
from shop import toggles
from tests.factories import OrderFactory, VariantFactory

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _ties():
    """Three products earning the same 30.00 from different units: product id breaks the tie."""
    three, five, ten = (VariantFactory(price=Decimal(price)) for price in ("3.00", "5.00", "10.00"))
    OrderFactory(created_at=DAY, lines=[(ten, 3)])
    OrderFactory(created_at=DAY, lines=[(five, 6)])
    OrderFactory(created_at=DAY, lines=[(three, 4)])
    OrderFactory(created_at=DAY, lines=[(three, 6)])


def _excluded_statuses():
    """Cancelled and pending orders count for nothing, even when they would top the list."""
    cheap, dear = VariantFactory(price=Decimal("2.00")), VariantFactory(price=Decimal("99.99"))
    OrderFactory(created_at=DAY, lines=[(cheap, 2)])
    OrderFactory(created_at=DAY, lines=[(cheap, 1)], status=Order.Status.SHIPPED)
    OrderFactory(created_at=DAY, lines=[(dear, 50)], status=Order.Status.CANCELLED)
    OrderFactory(created_at=DAY, lines=[(dear, 40)], status=Order.Status.PLACED)


def _multi_day_at_utc_midnights():
    """Days are UTC days: the last microsecond of a day and the first of the next differ."""
    variants = [VariantFactory(price=Decimal("1.99")), VariantFactory(price=Decimal("7.25"))]
    midnight = datetime(2026, 3, 11, tzinfo=UTC)
    OrderFactory(created_at=midnight - timedelta(microseconds=1), lines=[(variants[0], 1)])
    OrderFactory(created_at=midnight, lines=[(variants[0], 2), (variants[1], 1)])
    OrderFactory(created_at=midnight + timedelta(days=1, hours=23), lines=[(variants[1], 3)])
    OrderFactory(created_at=midnight + timedelta(days=2), lines=[(variants[1], 9)])  # out of range


def _more_products_than_the_top():
    """Twelve products, each in two orders on different days, the first one in nearly every
    order: the top 10 cut leaves two out."""
    variants = [VariantFactory(price=Decimal(f"{n}.10")) for n in range(1, 13)]
    for n, variant in enumerate(variants):
        OrderFactory(created_at=DAY, lines=[(variant, n % 3 + 1)])
        extra = [(variants[0], 1)] if n else []
        OrderFactory(created_at=DAY + timedelta(days=1), lines=[(variant, 1), *extra])


DATA_SETS = {
    "ties": _ties,
    "excluded statuses": _excluded_statuses,
    "multi-day at UTC midnights": _multi_day_at_utc_midnights,
    "more products than the top": _more_products_than_the_top,
    "empty range": lambda: None,
}
REPORT = "/api/reports/sales/?date_from=2026-03-10&date_to=2026-03-12"


def _report(client, state):
    response = client.get(REPORT, HTTP_X_PERF_TOGGLES=f"db_aggregation={state}")
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("build", DATA_SETS.values(), ids=DATA_SETS.keys())
def test_same_report_bytes_off_and_on(staff_client, build):
    build()
    assert _report(staff_client, "off").content == _report(staff_client, "on").content


@pytest.mark.parametrize("build", DATA_SETS.values(), ids=DATA_SETS.keys())
def test_same_report_from_the_selector(build):
    build()
    with toggles.override(db_aggregation=False):
        naive = selectors.sales_report(date_from=date(2026, 3, 10), date_to=date(2026, 3, 12))
    with toggles.override(db_aggregation=True):
        optimized = selectors.sales_report(date_from=date(2026, 3, 10), date_to=date(2026, 3, 12))
    assert naive == optimized


def test_ties_rank_by_product_id_and_names_come_from_the_catalog(staff_client):
    _ties()
    report = _report(staff_client, "off").json()
    products = report["top_products"]
    assert [product["revenue"] for product in products] == ["30.00", "30.00", "30.00"]
    assert [product["product_id"] for product in products] == sorted(
        product["product_id"] for product in products
    )
    assert [product["units"] for product in products] == [10, 6, 3]
    assert products[0]["product_name"].startswith("Product ")
    assert report["by_day"] == [{"day": "2026-03-10", "orders": 4, "units": 19, "revenue": "90.00"}]


def test_the_report_over_utc_midnights(staff_client):
    _multi_day_at_utc_midnights()
    report = _report(staff_client, "off").json()
    assert [(day["day"], day["orders"], day["units"]) for day in report["by_day"]] == [
        ("2026-03-10", 1, 1),
        ("2026-03-11", 1, 3),
        ("2026-03-12", 1, 3),
    ]


@contextmanager
def _rows_fetched():
    """Counts the rows every query of the block sends back to Python."""
    fetched = []

    def counting(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        fetched.append(max(context["cursor"].rowcount, 0))
        return result

    with connection.execute_wrapper(counting):
        yield fetched


def test_off_fetches_every_order_and_item_on_only_the_totals():
    _more_products_than_the_top()  # 24 orders with 35 items over two days
    report_range = {"date_from": date(2026, 3, 10), "date_to": date(2026, 3, 12)}
    with toggles.override(db_aggregation=False), _rows_fetched() as naive:
        selectors.sales_report(**report_range)
    with toggles.override(db_aggregation=True), _rows_fetched() as optimized:
        selectors.sales_report(**report_range)

    assert len(naive) == len(optimized) == 3  # orders or days, items or products, names
    assert naive == [24, 35, 10]
    assert optimized == [2, 10, 10]
