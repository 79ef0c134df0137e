"""cursor_pagination: the staff list of all orders pages through the same rows off and on.

Off, a page is COUNT(*) plus LIMIT/OFFSET; on, it is one query that starts after the previous
page's last (created_at, id). The envelope changes by contract: `count` only off.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shop import toggles
from shop.bench.measure import BenchError
from shop.bench.scenarios import cursor_pagination as scenario
from shop.pagination import Cursor
from shop.techniques import db_indexes
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
URL = "/api/staff/orders/"
INDEX = "orders_order_created_idx"  # (created_at DESC, id DESC), from the db_indexes technique


@pytest.fixture
def orders():
    """Eight orders, two pairs of them placed at the same instant: only the id orders those,
    and a page boundary falls between each pair's rows at page_size=3."""
    times = [START + timedelta(minutes=minutes) for minutes in (0, 1, 2, 2, 3, 4, 5, 5)]
    return [OrderFactory(created_at=when) for when in times]


def _get(client, path, state):
    response = client.get(path, HTTP_X_PERF_TOGGLES=f"cursor_pagination={state}")
    assert response.status_code == 200, response.content
    return response.json()


# More pages than any test here has rows: a paginator whose links never end fails the test
# instead of looping forever.
MAX_PAGES = 50


def _pages_by_number(client, page_size):
    pages = []
    for number in range(1, MAX_PAGES):
        page = _get(client, f"{URL}?page_size={page_size}&page={number}", "off")
        pages.append(page)
        if page["next"] is None:
            return pages
    raise AssertionError(f"the page numbers never end: {pages[-1]['next']}")


def _pages_by_cursor(client, page_size, state="on"):
    pages, path = [], f"{URL}?page_size={page_size}"
    while path is not None:
        assert len(pages) < MAX_PAGES, f"the cursor links never end: {path}"
        page = _get(client, path, state)
        pages.append(page)
        path = page["next"]
    return pages


@pytest.mark.parametrize("page_size", [1, 3, 8, 100])
def test_same_rows_on_every_page_newest_first(staff_client, orders, page_size):
    by_number = _pages_by_number(staff_client, page_size)
    by_cursor = _pages_by_cursor(staff_client, page_size)
    assert [page["results"] for page in by_number] == [page["results"] for page in by_cursor]
    ids = [row["id"] for page in by_cursor for row in page["results"]]
    newest_first = sorted(orders, key=lambda order: (order.created_at, order.pk), reverse=True)
    assert ids == [order.pk for order in newest_first]


def test_the_envelope_differs_by_contract(staff_client, orders):
    off = _get(staff_client, f"{URL}?page_size=3&page=2", "off")
    on = _get(staff_client, _get(staff_client, f"{URL}?page_size=3", "on")["next"], "on")
    assert off["results"] == on["results"]
    assert set(off) == {"count", "next", "previous", "results"}
    assert off["count"] == len(orders)
    assert "page=3" in off["next"]
    assert set(on) == {"next", "previous", "results"}  # no count: that is the COUNT(*) saved
    assert "cursor=" in on["next"] and "page=" not in on["next"]


def test_a_new_order_moves_page_numbers_but_not_cursors(staff_client, orders):
    """The contract's other half: a page number is a position counted from the newest row, so
    an order placed between two requests pushes every row one place down; a cursor is a row."""
    first_off = _get(staff_client, f"{URL}?page_size=3&page=1", "off")
    first_on = _get(staff_client, f"{URL}?page_size=3", "on")
    OrderFactory(created_at=START + timedelta(days=1))
    second_off = _get(staff_client, f"{URL}?page_size=3&page=2", "off")
    second_on = _get(staff_client, first_on["next"], "on")
    assert second_off["results"][0] == first_off["results"][-1]  # seen twice
    newest_first = sorted(orders, key=lambda order: (order.created_at, order.pk), reverse=True)
    assert [row["id"] for row in second_on["results"]] == [o.pk for o in newest_first[3:6]]


def test_previous_links_walk_back_through_the_same_pages(staff_client, orders):
    forward = _pages_by_cursor(staff_client, 3)
    backward, path = [forward[-1]], forward[-1]["previous"]
    while path is not None:
        assert len(backward) < MAX_PAGES, f"the previous links never end: {path}"
        page = _get(staff_client, path, "on")
        backward.append(page)
        path = page["previous"]
    assert [page["results"] for page in reversed(backward)] == [p["results"] for p in forward]
    assert forward[0]["previous"] is None
    assert backward[-1]["next"] is not None


def _orders_queries(client, path, state):
    with CaptureQueriesContext(connection) as captured:
        _get(client, path, state)
    return [query["sql"] for query in captured if '"orders_order"' in query["sql"]]


def test_off_counts_and_skips_on_starts_after_the_last_row(staff_client, orders):
    on_page_2 = _get(staff_client, f"{URL}?page_size=3", "on")["next"]
    off = _orders_queries(staff_client, f"{URL}?page_size=3&page=2", "off")
    on = _orders_queries(staff_client, on_page_2, "on")

    assert len(off) == 2
    assert "COUNT(*)" in off[0]
    assert off[1].endswith("LIMIT 3 OFFSET 3")  # the 3 rows before the page are read, then dropped

    assert len(on) == 1
    assert "COUNT(" not in on[0] and "OFFSET" not in on[0]
    assert '("orders_order"."created_at", "orders_order"."id") < (' in on[0]
    assert on[0].endswith("LIMIT 4")  # the page and one more row: is there a next page?


def test_the_keyset_query_is_an_index_range_scan_in_order(staff_client, orders):
    """With the (created_at DESC, id DESC) index that db_indexes provides, the row comparison
    is the index condition and no Sort node is needed: the page is the next entries in the
    index, at any depth."""
    page_1 = _get(staff_client, f"{URL}?page_size=3", "on")
    with connection.cursor() as cursor:
        # The migration made it; IF NOT EXISTS re-creates it if another test dropped it.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # queued FK checks block CREATE INDEX
        cursor.execute(db_indexes.BY_NAME[INDEX].create_sql())
        cursor.execute("SET LOCAL enable_seqscan = off")  # eight rows: a seq scan would win
    with CaptureQueriesContext(connection) as captured:
        _get(staff_client, page_1["next"], "on")
    (sql,) = [query["sql"] for query in captured if '"orders_order"' in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Scan using {INDEX} on orders_order" in plan
    assert "Index Cond: (ROW(created_at, id) < ROW(" in plan
    assert "Sort" not in plan


def test_the_benchmark_call_names_the_same_rows_for_both_paths(staff_client):
    OrderFactory.create_batch(120, created_at=START)  # ties everywhere: only ids order them
    scenario.SCENARIO.prepare()
    path = scenario.SCENARIO.call().path
    assert "page=2&" in path  # 120 rows: the deepest full page of 50 is the second
    off, on = _get(staff_client, path, "off"), _get(staff_client, path, "on")
    assert len(off["results"]) == 50
    assert off["results"] == on["results"]


def test_the_benchmark_refuses_to_run_without_the_index():
    """The index is a state of the database that no header can hold: the scenario checks it
    before anything is timed."""
    OrderFactory.create_batch(3, created_at=START)
    with connection.cursor() as cursor:  # rolled back with the test
        cursor.execute(db_indexes.BY_NAME[INDEX].drop_sql("public"))
    with pytest.raises(BenchError, match=f"{INDEX} is missing.*db_indexes on"):
        scenario.SCENARIO.prepare()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # queued FK checks block CREATE INDEX
        cursor.execute(db_indexes.BY_NAME[INDEX].create_sql())
    scenario.SCENARIO.prepare()


def test_the_benchmark_plans_show_the_queries_of_each_side():
    UserFactory(username="staff", is_staff=True)
    OrderFactory.create_batch(120, created_at=START)
    scenario.SCENARIO.prepare()
    with toggles.override(cursor_pagination=False):
        off = scenario.plans()
    with toggles.override(cursor_pagination=True):
        on = scenario.plans()
    assert set(off) == {"count", "page"}
    assert set(on) == {"page"}
    assert "ROW(created_at, id) < ROW(" in on["page"]


def test_a_cursor_keeps_every_digit_of_the_timestamp(staff_client):
    early = OrderFactory(created_at=START.replace(microsecond=123456))
    late = OrderFactory(created_at=START.replace(microsecond=123457))
    page = _get(staff_client, f"{URL}?page_size=1", "on")
    assert [row["id"] for row in page["results"]] == [late.pk]
    assert [row["id"] for row in _get(staff_client, page["next"], "on")["results"]] == [early.pk]


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        "e30",  # {}
        Cursor(position=("not a time", "1")).encode(),
        Cursor(position=("2026-03-10T12:00:00+00:00",)).encode(),  # one value short
    ],
)
def test_a_bad_cursor_is_404_like_a_bad_page(staff_client, orders, cursor):
    response = staff_client.get(f"{URL}?cursor={cursor}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor."}


def test_page_size_is_capped_like_the_page_numbers(staff_client):
    OrderFactory.create_batch(101, created_at=START)
    on = _get(staff_client, f"{URL}?page_size=1000", "on")
    off = _get(staff_client, f"{URL}?page_size=1000", "off")
    assert len(on["results"]) == len(off["results"]) == 100


def test_only_staff_see_every_order(api_client, customer_client):
    assert api_client.get(URL).status_code == 401
    assert customer_client.get(URL).status_code == 403
