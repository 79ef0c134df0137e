"""Serve the staff sales report from a read model refreshed in the background, instead of
aggregating the orders table on every request (CQRS: the write side stays normalized, the
read side is shaped like the report).

Off: the live aggregate (db_aggregation's code): every paid, confirmed and shipped order in
range, and all their items, grouped and summed per request. Over 366 days of the medium data
set that is about 56,000 orders and 168,000 items, whatever the report is asked for.

On: three PostgreSQL materialized views (orders/migrations/0009_...) hold the sums already:

- `orders_sales_day`: one row per UTC day, the report's `by_day` as it is;
- `orders_sales_day_product`: one row per day and product sold that day;
- `orders_sales_product`: one row per product, its sales over all time.

`by_day` reads at most 366 rows. The top products over an arbitrary range are the hard part:
summing `orders_sales_day_product` over the range still reads a row per product and day (about
150,000 for a year, since a product rarely sells twice a day). So the all-time totals serve as
an upper bound on any range's (REPORT): the range revenue of the `top` best
sellers of all time sets a bar, and only products whose all-time revenue reaches that bar can be in the
range's top, so only their days are summed (a few dozen products for a year). The answer is
exact, the same rows in the same order as the live one; it needs revenue that never goes
negative (prices and quantities are positive: catalog's and orders' check constraints).

The views are as old as their last `refresh()` (a beat task every SALES_REPORT_REFRESH_S, or
`manage.py refresh_sales_report`): a report is at most SALES_REPORT_REFRESH_S plus one refresh
behind, and says how far in its `X-Report-As-Of` header. `REFRESH ... CONCURRENTLY` builds the
new contents beside the old and applies the difference, so readers are never blocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from time import perf_counter

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet

from orders.models import Order
from shop import toggles
from shop.techniques import db_aggregation

TOGGLE = toggles.register(
    "materialized_view",
    group="caching",
    description="the sales report from materialized views refreshed by a beat task, not live",
)

# Refreshed in this order, in one transaction (see refresh()).
VIEWS = ("orders_sales_day", "orders_sales_day_product", "orders_sales_product")
AS_OF_HEADER = "X-Report-As-Of"
# The refresh time's table; refresh() locks it to run one at a time (its docstring says why).
REFRESH_TABLE = "orders_sales_refresh"


@dataclass(frozen=True)
class Sales:
    by_day: list[dict]  # {"day", "orders", "units", "revenue"} per day with orders, oldest first
    top_products: list[dict]  # {"product_id", "units", "revenue"}, best first (ties: lower id)
    as_of: datetime | None  # the read model's last refresh; None for the live aggregate


def sales(*, orders: QuerySet[Order], date_from: date, date_to: date, top: int) -> Sales:
    """The report's sums for the revenue `orders` placed on the UTC days `date_from` to
    `date_to`: live over `orders`, or from the read model over the same days."""
    if not toggles.is_enabled(TOGGLE.name):
        # naive: aggregate the orders table now (in SQL or in Python loops: db_aggregation)
        by_day, top_products = db_aggregation.sales_by_day_and_product(orders=orders, top=top)
        return Sales(by_day=by_day, top_products=top_products, as_of=None)
    return _from_read_model(date_from=date_from, date_to=date_to, top=top)


# Every product that could be in the range's top (the module's docstring says why). A
# product's sales in range are summed in a LATERAL subquery, one index range of
# orders_sales_day_product_by_product per product: a plan written into the statement, so it does
# not hang on the views' statistics. (As a join, the planner cannot know how few products pass
# the bar, a parameter until the statement runs, and guesses a third of them: it then reads a
# year of every product's days.)
CANDIDATES = """
WITH best_ever AS (  -- the best sellers of all time
    SELECT product_id FROM orders_sales_product ORDER BY revenue DESC, product_id LIMIT %(top)s
), bar AS (  -- the `top`-th best of their range sales; 0 if fewer of them sold in range
    SELECT CASE WHEN count(*) = %(top)s THEN min(in_range.revenue) ELSE 0 END AS revenue
      FROM best_ever, LATERAL (
               SELECT sum(revenue) AS revenue
                 FROM orders_sales_day_product
                WHERE product_id = best_ever.product_id
                  AND day BETWEEN %(date_from)s AND %(date_to)s) AS in_range
     WHERE in_range.revenue IS NOT NULL
), candidates AS (  -- all that could reach the bar: all-time revenue >= range revenue
    SELECT product_id FROM orders_sales_product WHERE revenue >= (SELECT revenue FROM bar)
)
"""
# The whole report in one statement: the days in range, oldest first, then the top products,
# best first, each with the last refresh's time (no product sold: one such row, its product
# NULL). One statement sees one snapshot, so the days, the products and the time come from the
# same refresh, with no transaction to open around them. The time rides on the `top` rows
# rather than on the 366 days': each row carrying one is a timestamp for the driver to parse.
REPORT = (
    CANDIDATES
    + """, ranked AS (
    SELECT candidates.product_id, in_range.units, in_range.revenue
      FROM candidates, LATERAL (
               SELECT sum(units)::bigint AS units, sum(revenue) AS revenue
                 FROM orders_sales_day_product
                WHERE product_id = candidates.product_id
                  AND day BETWEEN %(date_from)s AND %(date_to)s) AS in_range
     WHERE in_range.revenue IS NOT NULL
     ORDER BY in_range.revenue DESC, candidates.product_id
     LIMIT %(top)s
)
SELECT day, orders, units, revenue, NULL::bigint AS product_id, NULL::timestamptz AS as_of
  FROM orders_sales_day
 WHERE day BETWEEN %(date_from)s AND %(date_to)s
 UNION ALL
SELECT NULL, NULL, ranked.units, ranked.revenue, ranked.product_id, refresh.refreshed_at
  FROM orders_sales_refresh refresh
  LEFT JOIN ranked ON true
 ORDER BY day, revenue DESC, product_id
"""
)


def _from_read_model(*, date_from: date, date_to: date, top: int) -> Sales:
    params = {"date_from": date_from, "date_to": date_to, "top": top}
    with connections[router.db_for_read(Order)].cursor() as cursor:
        cursor.execute(REPORT, params)
        rows = cursor.fetchall()
    # The days come first (a day is never NULL), then the products.
    first_product = next(n for n, row in enumerate(rows) if row[0] is None)
    by_day = [
        {"day": day, "orders": orders, "units": units, "revenue": revenue}
        for day, orders, units, revenue, _product, _as_of in rows[:first_product]
    ]
    ranked = rows[first_product:]
    top_products = [
        {"product_id": product_id, "units": units, "revenue": revenue}
        for _day, _orders, units, revenue, product_id, _as_of in ranked
        if product_id is not None
    ]
    return Sales(by_day=by_day, top_products=top_products, as_of=ranked[0][5])


# --- the refresh: run by the beat task orders.tasks.refresh_sales_report -----------------------


def refresh(*, using: str = DEFAULT_DB_ALIAS, concurrently: bool = True) -> float:
    """Refresh the three views and record when; returns the seconds it took.

    CONCURRENTLY, readers go on reading the old contents meanwhile: PostgreSQL builds the new
    contents beside them, compares the two through the UNIQUE index and applies only the rows
    that changed. That costs more than a plain REFRESH, which rebuilds the view whole but holds
    an ACCESS EXCLUSIVE lock that stops every reader until it commits: what the seed uses,
    since it replaces every row anyway.

    One REPEATABLE READ transaction: the three views are computed from one snapshot of the
    orders, and readers switch to all three new versions at once, when it commits. The time
    recorded is the transaction's start, before its snapshot: every order committed before it
    is in the views. Inside a caller's transaction (a test, the seed) it refreshes there.

    One refresh at a time: the beat task's may overlap a command's, or a slow one the next, or
    the seed's. Two refreshes whose snapshots both predate the other's commit would each apply
    the same difference to the views (a duplicate key), or update the refresh time's row under
    the other (a serialization failure). So the transaction first locks the refresh time's table
    in EXCLUSIVE mode, which conflicts with itself and not with readers (ACCESS SHARE), before
    any statement takes its snapshot: the next refresh waits, then sees the previous one's
    commit. The lock is the transaction's: released when it ends (inside a caller's
    transaction, when the caller's does), and nothing of it outlives that on the server
    connection, which behind PgBouncer in transaction mode is another client's next (a session
    advisory lock, released by a statement that ran on another server connection, stayed held
    there). The wait is bounded like the refresh, not like a request.

    The views are ANALYZEd in the same transaction, so their new statistics arrive with their
    new rows: straight after the seed's refresh they would otherwise have none until autovacuum
    came by, and the planner would guess the size of a year of days. After the commit they are
    VACUUMed (it cannot run in a transaction), which marks their pages all-visible: the report's
    index-only scans then read the index alone, with no visit to the view's heap per row.
    """
    how = "CONCURRENTLY " if concurrently else ""
    with _one_snapshot(using) as cursor:
        # It reads every revenue order: a request's statement bound is too short for it, and
        # so is the wait for a refresh running before it. SET LOCAL and LOCK take no snapshot
        # (a SELECT would): the snapshot is the first REFRESH's, once the turn is this one's.
        timeout_ms = settings.SALES_REPORT_REFRESH_TIMEOUT_S * 1000
        cursor.execute(f"SET LOCAL statement_timeout = {timeout_ms:d}")
        cursor.execute(f"LOCK TABLE {REFRESH_TABLE} IN EXCLUSIVE MODE")  # one at a time
        started = perf_counter()
        for view in VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW {how}{view}")
        cursor.execute(f"ANALYZE {', '.join(VIEWS)}")
        seconds = perf_counter() - started
        cursor.execute(f"UPDATE {REFRESH_TABLE} SET refreshed_at = now(), seconds = %s", [seconds])
        # robust: a failed VACUUM is logged; the refresh it follows has committed.
        transaction.on_commit(lambda: _vacuum(using), using=using, robust=True)
    return seconds


def _vacuum(alias: str) -> None:
    """VACUUM the views, once the refresh has committed. Not inside a transaction, where it
    cannot run: a test's, running its commit callbacks before its own rollback."""
    if connections[alias].in_atomic_block:
        return
    with connections[alias].cursor() as cursor:
        cursor.execute(f"VACUUM {', '.join(VIEWS)}")


@contextmanager
def _one_snapshot(alias: str) -> Iterator[CursorWrapper]:
    """A cursor in a REPEATABLE READ transaction on `alias`: every statement sees the same
    snapshot. Inside a caller's transaction, a savepoint in it (its isolation is its own)."""
    outermost = not connections[alias].in_atomic_block
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        if outermost:  # the transaction's first statement, as PostgreSQL requires
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield cursor


def last_refresh(*, using: str = DEFAULT_DB_ALIAS) -> tuple[datetime, float]:
    """When the views were last refreshed, and how many seconds that refresh took."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT refreshed_at, seconds FROM orders_sales_refresh")
        return cursor.fetchone()
