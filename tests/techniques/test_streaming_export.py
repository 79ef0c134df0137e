"""streaming_export: the same CSV bytes off and on; on, the rows are read from a server-side
cursor a chunk at a time while the body is consumed, after the view has returned."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import Order
from shop import toggles
from shop.perf_headers import parse_query_counts
from shop.techniques import streaming_export
from tests.factories import OrderFactory, VariantFactory

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, tzinfo=UTC)
URL = "/api/staff/orders/export.csv?date_from=2026-03-10&date_to=2026-03-11"


@pytest.fixture
def orders():
    """Five orders in the two days of URL, both UTC midnights included, and two just outside."""
    variant = VariantFactory(price=Decimal("12.50"))
    inside = [
        OrderFactory(created_at=DAY, lines=[(variant, 2)]),
        OrderFactory(created_at=DAY + timedelta(hours=5, microseconds=7), lines=[(variant, 1)]),
        OrderFactory(created_at=DAY + timedelta(hours=5), status=Order.Status.CANCELLED),
        OrderFactory(created_at=DAY + timedelta(days=1), status=Order.Status.PLACED),
        OrderFactory(created_at=DAY + timedelta(days=2, microseconds=-1), lines=[(variant, 3)]),
    ]
    OrderFactory(created_at=DAY - timedelta(microseconds=1))
    OrderFactory(created_at=DAY + timedelta(days=2))
    return inside


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _get(client, state, url=URL):
    response = client.get(url, HTTP_X_PERF_TOGGLES=f"streaming_export={state}")
    assert response.status_code == 200
    return response


def test_same_bytes_off_and_on(staff_client, orders):
    off, on = _get(staff_client, "off"), _get(staff_client, "on")
    assert (off.streaming, on.streaming) == (False, True)
    assert _body(off) == _body(on)
    for response in (off, on):
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == 'attachment; filename="orders.csv"'


def test_the_csv_has_every_order_in_range_oldest_first(staff_client, orders):
    rows = list(csv.reader(io.StringIO(_body(_get(staff_client, "on")).decode())))
    assert rows[0] == ["id", "created_at", "customer", "status", "item_count", "total_amount"]
    oldest_first = sorted(orders, key=lambda order: (order.created_at, order.pk))
    assert [int(row[0]) for row in rows[1:]] == [order.pk for order in oldest_first]
    first = orders[0]
    assert rows[1] == [
        str(first.pk),
        "2026-03-10 00:00:00+00:00",
        first.user.username,
        "paid",
        "2",
        "25.00",
    ]
    assert rows[2][1:] == [
        "2026-03-10 05:00:00+00:00",
        orders[2].user.username,
        "cancelled",
        "0",
        "0.00",
    ]
    assert rows[3][1] == "2026-03-10 05:00:00.000007+00:00"


def test_an_empty_range_is_the_header_alone(staff_client, orders):
    url = "/api/staff/orders/export.csv?date_from=2020-01-01&date_to=2020-01-02"
    off, on = _get(staff_client, "off", url), _get(staff_client, "on", url)
    assert _body(off) == _body(on) == b"id,created_at,customer,status,item_count,total_amount\r\n"


def test_on_reads_nothing_until_the_body_is_consumed(staff_client, orders):
    """Which is also why X-DB-Queries cannot count the streamed path's export query."""
    with CaptureQueriesContext(connection) as during_view:
        off = _get(staff_client, "off")
    assert any('FROM "orders_order"' in query["sql"] for query in during_view)

    with CaptureQueriesContext(connection) as during_view:
        on = _get(staff_client, "on")
    assert not any('FROM "orders_order"' in query["sql"] for query in during_view)
    off_count = parse_query_counts(off["X-DB-Queries"])["default"]
    assert parse_query_counts(on["X-DB-Queries"])["default"] == off_count - 1

    with CaptureQueriesContext(connection) as during_body:
        _body(on)
    assert [query["sql"] for query in during_body if 'FROM "orders_order"' in query["sql"]]


def test_on_sends_a_chunk_per_chunk_of_rows_from_a_server_side_cursor(
    staff_client, orders, monkeypatch
):
    monkeypatch.setattr(streaming_export, "CHUNK", 2)
    chunks = iter(_get(staff_client, "on").streaming_content)
    assert next(chunks).startswith(b"id,created_at")  # the header, before any query
    assert next(chunks).count(b"\r\n") == 2  # the first 2 of 5 rows
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_cursors")
        open_cursors = [row[0] for row in cursor.fetchall()]
    assert len(open_cursors) == 1  # DECLARE ... CURSOR: the other rows are still in PostgreSQL
    assert 'FROM "orders_order"' in open_cursors[0]
    assert [chunk.count(b"\r\n") for chunk in chunks] == [2, 1]


def test_the_path_is_decided_when_the_view_runs_not_while_streaming(
    staff_client, orders, monkeypatch
):
    """The body is read after the view has returned, when the request's overrides are gone: a
    generator that looked at the toggle then would follow whatever the reader's context says.
    Read here with the toggle off, the body must still come a chunk at a time from the cursor."""
    monkeypatch.setattr(streaming_export, "CHUNK", 2)
    on = _get(staff_client, "on")
    with toggles.override(streaming_export=False), CaptureQueriesContext(connection) as read:
        chunks = list(on.streaming_content)
    # Read before the next request: the test client's request_started resets the query log.
    [export] = [query["sql"] for query in read if 'FROM "orders_order"' in query["sql"]]
    assert export.startswith("DECLARE ")  # a server-side cursor, as the on path reads
    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 2, 2, 1]  # header, 5 rows by 2
    assert b"".join(chunks) == _body(_get(staff_client, "off"))


def test_only_staff_can_export(api_client, customer_client):
    assert api_client.get(URL).status_code == 401
    assert customer_client.get(URL).status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("date_from=2026-13-01", "date_from"),
        ("date_to=yesterday", "date_to"),
        ("date_from=2026-03-10&date_to=2026-03-01", "date_from"),
        ("date_to=9999-12-31", "date_to"),
    ],
)
def test_bad_dates_are_400_with_field_messages(staff_client, query, field):
    response = staff_client.get(f"/api/staff/orders/export.csv?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_the_span_is_not_capped(staff_client, orders):
    url = "/api/staff/orders/export.csv?date_from=2000-01-01&date_to=2026-12-31"
    assert len(_body(_get(staff_client, "on", url)).splitlines()) == 1 + 7
