"""The staff sales report over the last 366 days: about 56,000 orders and 168,000 items on
the medium data set."""

from datetime import timedelta

from django.utils import timezone

from shop.bench import holds
from shop.bench.scenario import Call, Scenario


def _call() -> Call:
    date_to = timezone.now().date()
    date_from = date_to - timedelta(days=365)  # 366 days, both ends included: the longest allowed
    return Call("GET", f"/api/reports/sales/?date_from={date_from}&date_to={date_to}", user="staff")


SCENARIO = Scenario(
    name="db_aggregation",
    title="sales report over 366 days",
    call=_call,
    # materialized_view held off: the report aggregates live, so the Python loops run off.
    hold=holds.DB_AGGREGATION,
    notes="Both paths run the same number of queries; the difference is the rows they send "
    "back: every order and item off, one row per day and the top 10 products on.",
)
