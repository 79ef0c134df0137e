"""The staff-only sales report: live totals over orders, cancelled ones left out."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from orders.models import Order
from tests.factories import OrderFactory, VariantFactory

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_report_totals_by_day_and_top_products(staff_client):
    cheap, dear = VariantFactory(price=Decimal("2.00")), VariantFactory(price=Decimal("50.00"))
    OrderFactory(created_at=DAY, lines=[(cheap, 3), (dear, 1)])
    OrderFactory(created_at=DAY + timedelta(hours=1), lines=[(cheap, 1)])
    OrderFactory(created_at=DAY + timedelta(days=1), lines=[(dear, 2)])
    OrderFactory(created_at=DAY, lines=[(dear, 5)], status=Order.Status.CANCELLED)
    OrderFactory(
        created_at=DAY, lines=[(dear, 7)], status=Order.Status.PLACED
    )  # not paid: no revenue
    OrderFactory(created_at=DAY - timedelta(days=30), lines=[(dear, 9)])  # outside the range

    response = staff_client.get("/api/reports/sales/?date_from=2026-03-10&date_to=2026-03-11")
    assert response.status_code == 200
    report = response.json()
    assert (report["orders"], report["units"], report["revenue"]) == (3, 7, "158.00")
    assert report["average_order_value"] == "52.67"
    assert report["by_day"] == [
        {"day": "2026-03-10", "orders": 2, "units": 5, "revenue": "58.00"},
        {"day": "2026-03-11", "orders": 1, "units": 2, "revenue": "100.00"},
    ]
    assert [(p["product_id"], p["units"], p["revenue"]) for p in report["top_products"]] == [
        (dear.product_id, 3, "150.00"),
        (cheap.product_id, 4, "8.00"),
    ]
    assert report["top_products"][0]["product_name"] == dear.product.name


def test_empty_range_is_zeroes(staff_client):
    report = staff_client.get("/api/reports/sales/?date_from=2020-01-01&date_to=2020-01-31").json()
    assert (report["orders"], report["revenue"], report["by_day"]) == (0, "0.00", [])


def test_default_range_is_the_last_30_days(staff_client):
    report = staff_client.get("/api/reports/sales/").json()
    start = datetime.fromisoformat(report["date_from"])
    end = datetime.fromisoformat(report["date_to"])
    assert (end - start).days == 29


def test_a_range_at_the_start_of_the_calendar_is_clipped_not_a_500(staff_client):
    response = staff_client.get("/api/reports/sales/?date_to=0001-01-05")
    assert response.status_code == 200
    assert (response.json()["date_from"], response.json()["date_to"]) == (
        "0001-01-01",
        "0001-01-05",
    )


def test_only_staff_can_read_the_report(api_client, customer_client):
    assert api_client.get("/api/reports/sales/").status_code == 401
    assert customer_client.get("/api/reports/sales/").status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("date_from=2026-13-01", "date_from"),
        ("date_to=yesterday", "date_to"),
        ("date_from=2026-03-10&date_to=2026-03-01", "date_from"),
        ("date_from=2020-01-01&date_to=2026-01-01", "date_from"),
        ("date_from=9999-12-30&date_to=9999-12-31", "date_to"),
        ("date_to=9999-12-31", "date_to"),
    ],
)
def test_bad_dates_are_400_with_field_messages(staff_client, query, field):
    response = staff_client.get(f"/api/reports/sales/?{query}")
    assert response.status_code == 400
    assert field in response.json()
