"""The queries the db_indexes technique's indexes serve, and their plans.

Each query runs through the selector (or view code) the API uses, with a representative
argument from the data, so explain() shows the plan of the SQL the shop really sends. This
lives with the benchmark, not in the technique module: it reads through the domain's
selectors, and a technique never imports up into the domain. `manage.py db_indexes explain`,
the db_indexes scenario's plans() and the tests use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, timedelta
from typing import Any

from django.db import connections

from catalog.selectors import most_reviewed_product_id, product_list, review_list
from orders.models import Order
from orders.selectors import busiest_customer, order_list, order_list_all, sales_report
from shop import toggles
from shop.bench.query_examples import FILTER_DAYS, FILTER_STATUS, SEARCH_EXAMPLE
from shop.techniques.db_indexes import INDEXES


def staff_filter_example() -> dict[str, object] | None:
    """`{"status", "date_from", "date_to"}`: FILTER_STATUS over the FILTER_DAYS days up to the
    newest order's day, or None without orders."""
    newest = Order.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    if newest is None:
        return None
    date_to = newest.astimezone(UTC).date()
    date_from = date_to - timedelta(days=FILTER_DAYS - 1)
    return {"status": FILTER_STATUS, "date_from": date_from, "date_to": date_to}


def _customer_orders() -> Callable[[], object]:
    busiest = busiest_customer()
    if busiest is None:
        raise LookupError("no orders to explain")
    return lambda: list(order_list(user=busiest[0])[:50])


def _staff_orders() -> Callable[[], object]:
    return lambda: list(order_list_all()[:50])


def _staff_filter() -> Callable[[], object]:
    example = staff_filter_example()
    if example is None:
        raise LookupError("no orders to explain")
    return lambda: list(order_list_all(**example)[:51])  # a keyset page reads one row more


def _sales_report() -> Callable[[], object]:
    def live() -> object:
        # The live report: from its read model (materialized_view) it reads no orders at all.
        with toggles.override(materialized_view=False):
            return sales_report()  # the last 30 days; its first statement is the by-day totals

    return live


def _product_search() -> Callable[[], object]:
    return lambda: list(product_list(search=SEARCH_EXAMPLE)[:50])


def _active_products() -> Callable[[], object]:
    return lambda: list(product_list()[:50])


def _product_reviews() -> Callable[[], object]:
    product_id = most_reviewed_product_id()
    if product_id is None:
        raise LookupError("no reviews to explain")
    return lambda: list(review_list(product_id=product_id)[:50])


# One per index's `query` in shop.techniques.db_indexes.INDEXES. Each finds its representative
# argument in the data, then returns the call to record.
SERVED_QUERIES: dict[str, Callable[[], Callable[[], object]]] = {
    "customer_orders": _customer_orders,  # the busiest customer's first page of 50
    "staff_orders": _staff_orders,  # the first page of 50 of every order
    "staff_filter": _staff_filter,  # placed orders of the last 30 days, a keyset page of 50
    "sales_report": _sales_report,  # the by-day totals of the last 30 days
    "product_search": _product_search,  # active products matching SEARCH_EXAMPLE, page of 50
    "active_products": _active_products,  # the product list's first page of 50
    "product_reviews": _product_reviews,  # the most-reviewed product's first 50 reviews
}


def explain(query_name: str, *, using: str = "default") -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a served query, as PostgreSQL prints it.

    The query is run once through its selector to record the SQL it sends; the first statement
    that reads the index's table is the one explained (ANALYZE runs it again, for real).
    """
    if query_name not in SERVED_QUERIES:
        raise KeyError(f"unknown query {query_name!r} (known: {', '.join(SERVED_QUERIES)})")
    sql, params = _statement(query_name)
    with connections[using].cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def scans(query_name: str, *, using: str = "default") -> set[str]:
    """How the served query's statement reads its tables, from EXPLAIN (FORMAT JSON) without
    ANALYZE: `{"Seq Scan on orders_order", "Index Scan using orders_order_created_idx", ...}`,
    one string per scan node. What a test asserts, side by side: a specific node off and on."""
    sql, params = _statement(query_name)
    with connections[using].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (document,) = cursor.fetchone()
    if isinstance(document, str):
        document = json.loads(document)
    found: set[str] = set()
    nodes = [document[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        kind = node["Node Type"]
        if "Index Name" in node:
            found.add(f"{kind} using {node['Index Name']}")
        elif kind.endswith("Seq Scan"):
            found.add(f"{kind} on {node['Relation Name']}")
    return found


def _statement(query_name: str) -> tuple[str, Any]:
    """The SQL and parameters of the served query's first statement on its index's table."""
    table = next(index.table for index in INDEXES if index.query == query_name)
    return _first_statement_on(table, SERVED_QUERIES[query_name]())


def _first_statement_on(table: str, run: Callable[[], object]) -> tuple[str, Any]:
    statements: list[tuple[str, Any]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with ExitStack() as stack:  # every alias: a router may send the selector's reads anywhere
        for connection in connections.all():
            stack.enter_context(connection.execute_wrapper(record))
        run()
    for sql, params in statements:
        if f'FROM "{table}"' in sql:
            return sql, params
    raise LookupError(f"the query sent no statement reading {table}")
