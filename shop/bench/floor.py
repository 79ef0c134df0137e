"""The SQL floor of the order-history page: the fastest `GET /api/orders/?page_size=50` could be.

One hand-written statement builds the page's whole JSON body inside PostgreSQL (the count, the
links, 50 orders each with its items) and hands it back as one text value, through a plain
cursor: no ORM, no model instances, no serializer, no middleware. The bench measures it as it
measures the endpoint (its wall time, and its queries and database time counted by the same
QueryCounter), and reports the all-on endpoint as a multiple of it.

The body is byte for byte what DRF renders (a test holds it to that), or the comparison would be
meaningless:

- `row_to_json` and `array_to_json(array_agg(...))` rather than `json_build_object` and
  `json_agg`: the same JSON, but written compactly (`{"id":1,...}`, `[a,b]`), as DRF's renderer
  writes it (`json_agg` puts `", \\n "` between elements, `json_build_object` writes `" : "`);
- decimals as strings with their two places (`numeric(12,2)::text`: `"324.30"`);
- timestamps as DRF writes them: ISO 8601 in UTC with a `Z`, microseconds only when non-zero
  (`2026-11-22T13:20:10Z`, `2026-11-23T08:23:54.738057Z`);
- `next` is the absolute link DRF builds, query parameters sorted: `...?page=2&page_size=50`.
"""

from __future__ import annotations

import json
from time import perf_counter

from django.db import connection

from shop.bench.measure import QueryCounter
from shop.bench.samples import Sample


def _timestamp(column: str) -> str:
    """DRF's rendering of a UTC datetime, in SQL (`datetime.isoformat()` + `Z`). `%%` is a
    literal `%` (modulo) in a statement psycopg fills with parameters."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS')"""
        f" || CASE WHEN extract(microseconds FROM {column})::bigint %% 1000000 = 0"
        f" THEN '' ELSE to_char({utc}, '.US') END || 'Z'"
    )


SQL = f"""
WITH total AS (
    SELECT count(*) AS n FROM orders_order WHERE user_id = %(user_id)s
), page AS (
    SELECT id, status, created_at, paid_at, cancelled_at, item_count, total_amount
    FROM orders_order
    WHERE user_id = %(user_id)s
    ORDER BY created_at DESC, id DESC
    LIMIT %(page_size)s
)
SELECT row_to_json(body)::text
FROM (
    SELECT
        total.n AS count,
        CASE WHEN total.n > %(page_size)s THEN %(next_url)s END AS next,
        NULL::text AS previous,
        COALESCE(
            (
                SELECT array_to_json(
                    array_agg(row_to_json(result) ORDER BY page.created_at DESC, page.id DESC)
                )
                FROM page, LATERAL (
                    SELECT
                        page.id,
                        page.status,
                        {_timestamp("page.created_at")} AS created_at,
                        {_timestamp("page.paid_at")} AS paid_at,
                        {_timestamp("page.cancelled_at")} AS cancelled_at,
                        page.item_count,
                        page.total_amount::text AS total_amount,
                        COALESCE(
                            (
                                SELECT array_to_json(array_agg(row_to_json(item) ORDER BY item.id))
                                FROM (
                                    SELECT id, sku, product_name, unit_price::text AS unit_price,
                                        quantity
                                    FROM orders_orderitem
                                    WHERE order_id = page.id
                                ) AS item
                            ),
                            '[]'
                        ) AS items
                ) AS result
            ),
            '[]'
        ) AS results
    FROM total
) AS body
"""


def query_params(*, user_id: int, page_size: int, base_url: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "page_size": page_size,
        # As DRF's replace_query_param writes it: parameters sorted by name.
        "next_url": f"{base_url}?page=2&page_size={page_size}",
    }


def body(*, user_id: int, page_size: int, base_url: str) -> bytes:
    """The page's JSON body, built by PostgreSQL, as the bytes a server would send.

    Django's cursor, not the ORM: a thin wrapper over psycopg's, which runs the execute
    wrappers, so the bench's QueryCounter sees (and times) each statement this sends."""
    with connection.cursor() as cursor:
        cursor.execute(SQL, query_params(user_id=user_id, page_size=page_size, base_url=base_url))
        (text,) = cursor.fetchone()
    return text.encode()


def sample(*, user_id: int, page_size: int, base_url: str) -> Sample:
    """One timed run of the floor: the statement, the fetch, the bytes; its queries and their
    database time measured as the endpoint's are."""
    with QueryCounter() as counter:
        started = perf_counter()
        data = body(user_id=user_id, page_size=page_size, base_url=base_url)
        elapsed_ms = (perf_counter() - started) * 1000
    return Sample(
        ms=elapsed_ms,
        db_ms=counter.db_seconds * 1000,
        queries=dict(counter.counts),
        db_statements=counter.statement_ms(),
        bytes=len(data),
        status=200,
        answer=json.loads(data),
    )
