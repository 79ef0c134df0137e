"""The staff sales report over the last 366 days (about 56,000 orders and 168,000 items on the
medium data set): aggregated live off, read from the refreshed materialized views on.

`prepare` refreshes the views CONCURRENTLY first (the beat task's refresh(), untimed), so both
sides answer from the same orders and the answers can be compared: it writes the read model
only, never the shop's data. Its duration is reported with every run (`refresh_s`): with the
beat interval, it is the read model's staleness bound.

Holds: db_aggregation on, so the live side is the GROUP BY a team writes first, not Python
loops. read_replica off: both sides read the primary, where the views are refreshed; on a
replica they would arrive by replication like any table, a moment later.
"""

from datetime import timedelta

from django.db import connection
from django.http import HttpResponse
from django.utils import timezone

from orders.selectors import sales_report
from shop import toggles
from shop.bench import holds
from shop.bench.scenario import Call, Scenario
from shop.bench.targets import Target
from shop.techniques import materialized_view

TECHNIQUE = "materialized_view"
REFRESH_S = "refresh_s"  # the seconds the read model's last refresh took
_refresh: dict[str, float] = {}


def _prepare() -> None:
    _refresh[REFRESH_S] = round(materialized_view.refresh(), 3)


def _call() -> Call:
    date_to = timezone.now().date()
    date_from = date_to - timedelta(days=365)  # 366 days, both ends included: the longest allowed
    return Call("GET", f"/api/reports/sales/?date_from={date_from}&date_to={date_to}", user="staff")


def _metrics(response: HttpResponse) -> dict[str, float]:
    return dict(_refresh)


def plans() -> dict[str, str]:
    """EXPLAIN ANALYZE of the top products' statement, the report's costliest, on the side's
    path: off, the items of every order in range joined and grouped; on, the candidates' days
    read from the index of orders_sales_day_product."""
    date_to = timezone.now().date()
    statements: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        sales_report(date_from=date_to - timedelta(days=365), date_to=date_to)
    table = "orders_sales_day_product" if toggles.is_enabled(TECHNIQUE) else "orders_orderitem"
    sql, params = next((sql, params) for sql, params in statements if table in sql)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return {"top products": "\n".join(row[0] for row in cursor.fetchall())}


SCENARIO = Scenario(
    name=TECHNIQUE,
    title="sales report over 366 days",
    call=_call,
    prepare=_prepare,
    hold=holds.MATERIALIZED_VIEW,
    metrics=_metrics,
    notes="On, the report is as old as the last refresh (X-Report-As-Of): at most "
    "SALES_REPORT_REFRESH_S plus refresh_s behind the orders.",
    targets=(Target("speedup_p50", at_least=20, label="p50 at least 20x lower on"),),
)
