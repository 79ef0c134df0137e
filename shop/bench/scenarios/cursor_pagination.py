"""The staff list of all orders at an offset of about 100,000: on the medium data set, page
2000 of 50, the deepest full page.

The harness sends one URL for both sides, so the call carries both positions: `page=N` for the
page-number path and `cursor=…` for the keyset path, each naming the same rows. Each path reads
its own parameter and ignores the other, as it would for a client that knows only its own.
"""

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIRequestFactory, force_authenticate

from orders.apis import StaffOrderListApi
from orders.models import Order
from shop.bench.measure import BenchError
from shop.bench.scenario import Call, Scenario
from shop.pagination import Cursor
from shop.techniques import db_indexes

PAGE_SIZE = 50
# The keyset is fast only with this index, which the db_indexes technique adds.
INDEX = "orders_order_created_idx"
_call: dict[str, str] = {}


def _prepare() -> None:
    # The index lives in the database, not in the request: a header cannot hold it, so it is
    # checked here, before anything is timed.
    if not db_indexes.present()[INDEX]:
        raise BenchError(
            f"{INDEX} is missing: the keyset path would scan the table. "
            "Run `manage.py db_indexes on` first."
        )
    newest_first = Order.objects.order_by("-created_at", "-id")
    page = max(newest_first.count() // PAGE_SIZE, 1)  # the deepest page that is full
    offset = (page - 1) * PAGE_SIZE
    query = f"page_size={PAGE_SIZE}&page={page}"
    if offset:
        # The keyset names the row the page starts after: the last row of page - 1.
        position = newest_first.values_list("created_at", "id")[offset - 1]
        query += f"&cursor={Cursor(position=position).encode()}"
    _call["path"] = f"/api/staff/orders/?{query}"


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
