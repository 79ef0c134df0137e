"""The staff list of all orders at an offset of about 100,000: on the medium data set, page
2000 of 50, the deepest full page.

The harness sends one URL for both sides, so the call carries both positions: `page=N` for the
page-number path and `cursor=…` for the keyset path, each naming the same rows. Each path reads
its own parameter and ignores the other, as it would for a client that knows only its own.
"""

import json
from dataclasses import replace
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIRequestFactory, force_authenticate

from orders.apis import StaffOrderListApi
from orders.models import Order
from shop.bench.measure import BenchError
from shop.bench.scenario import Call, Scenario
from shop.bench.sweep import Sweep
from shop.pagination import Cursor
from shop.techniques import db_indexes

PAGE_SIZE = 50
# The keyset is fast only with this index, which the db_indexes technique adds.
INDEX = "orders_order_created_idx"
_call: dict[str, str] = {}


def _check_index() -> None:
    # The index lives in the database, not in the request: a header cannot hold it, so it is
    # checked here, before anything is timed.
    if not db_indexes.present()[INDEX]:
        raise BenchError(
            f"{INDEX} is missing: the keyset path would scan the table. "
            "Run `manage.py db_indexes on` first."
        )


def _path_at(offset: int) -> str:
    """The URL of the page that starts after `offset` rows (a multiple of PAGE_SIZE), with
    both positions: `page=N` and the equivalent cursor."""
    query = f"page_size={PAGE_SIZE}&page={offset // PAGE_SIZE + 1}"
    if offset:
        # The keyset names the row the page starts after: the last row of the page before.
        newest_first = Order.objects.order_by("-created_at", "-id")
        position = newest_first.values_list("created_at", "id")[offset - 1]
        query += f"&cursor={Cursor(position=position).encode()}"
    return f"/api/staff/orders/?{query}"


def _deepest_full_page() -> int:
    """The offset of the deepest full page."""
    return (max(Order.objects.count() // PAGE_SIZE, 1) - 1) * PAGE_SIZE


def _prepare() -> None:
    _check_index()
    _call["path"] = _path_at(_deepest_full_page())


SCENARIO = Scenario(
    name="cursor_pagination",
    # No offset in the title: it is the data's, and the title names the scenario in the kept
    # JSON whatever the size.
    title=f"staff order list, the deepest full page of {PAGE_SIZE}",
    prepare=_prepare,
    call=lambda: Call("GET", _call["path"], user="staff"),
    # The envelope differs by contract: `count` and page links off, cursor links on.
    answer=lambda response: json.loads(response.content)["results"],
    # Nothing held. The naive path is DRF's page numbers, and no other technique's code stands
    # in for it: fast_serialization (either way) pages the same queryset with the same
    # paginator, and the COUNT(*) it sends is the model queryset's. db_indexes is a state of the
    # database, which _prepare() checks; the X-Perf-Toggles header cannot hold it.
    notes="Only `results` is compared: the page-number answer also has `count`, the cursor "
    "answer has cursor links and no count. The URL carries page=N for the off path and an "
    "equivalent cursor for the on path; each reads its own.",
)


def plans() -> dict[str, str]:
    """EXPLAIN ANALYZE of what this side sends to orders_order for the page: the COUNT(*) and
    the OFFSET query off, the keyset query on. The statements are recorded from the view
    itself, called directly with the staff user (a request factory: no session, no token)."""
    request = APIRequestFactory().get(_call["path"])
    force_authenticate(request, user=get_user_model().objects.get(username="staff"))
    statements: list[tuple[str, Any]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        StaffOrderListApi.as_view()(request)
    plans = {}
    with connection.cursor() as cursor:
        for sql, params in statements:
            if 'FROM "orders_order"' in sql:
                cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
                name = "count" if "COUNT(*)" in sql else "page"
                plans[name] = "\n".join(row[0] for row in cursor.fetchall())
    return plans


# --- the sweep: the same page at offsets of 1k, 10k, 100k and 1M rows ---------------------
# The off side reads and throws away `offset` rows, then counts the whole table; the on side
# seeks the index to the cursor. Parts split the off side's database time into the COUNT(*),
# the same at every depth, and the page, which grows with the offset.


def _fit(offset: int) -> int | None:
    """The offset itself when a full page starts there; past the end, the deepest full page
    if it is at least half as deep (100k on medium's 100,000 orders is 99,950); else None."""
    deepest = _deepest_full_page()
    if offset <= deepest:
        return offset - offset % PAGE_SIZE
    return deepest if deepest * 2 >= offset else None


def _scenario_at(offset: int) -> Scenario:
    def prepare() -> None:
        _check_index()
        _call["path"] = _path_at(offset)  # plans() reads it too

    return replace(
        SCENARIO,
        title=f"staff order list, page of {PAGE_SIZE} after {offset:,} rows",
        prepare=prepare,
    )


def _is_count(sql: str) -> bool:
    return 'FROM "orders_order"' in sql and "COUNT(*)" in sql


def _is_page(sql: str) -> bool:
    return 'FROM "orders_order"' in sql and "COUNT(*)" not in sql


SWEEP = Sweep(
    axis="offset (rows)",
    points=(1_000, 10_000, 100_000, 1_000_000),
    scenario_at=_scenario_at,
    fit=_fit,
    parts={"count": _is_count, "page": _is_page},
    shape="off: linear in the offset (the page; the COUNT(*) is flat); on: flat",
)
