"""`manage.py bench --sweep NAME`: every point the data holds runs off against on, the JSON has
one entry per point, and the HTML draws a line per side. Run on factory data; no timing is
asserted."""

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from orders.models import Order
from shop.bench import sweep_pages, sweep_report
from shop.bench.scenarios import (
    algorithmic_complexity,
    cursor_pagination,
    prefetch_related,
    select_related,
    streaming_export,
)
from shop.bench.scenarios import db_indexes as db_indexes_scenario
from shop.pagination import PagePagination
from shop.techniques import db_indexes
from tests.factories import AddressFactory, OrderFactory, UserFactory, VariantFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SIDE_KEYS = {"p50_ms", "p95_ms", "db_p50_ms", "queries", "runs", "db_parts_ms", "peak_memory_bytes"}
SIDE_KEYS |= {"ttfb_p50_ms", "streamed"}


@pytest.fixture
def small_sweep(monkeypatch):
    """Thirty orders (pairs at the same instant, so only the id orders them), pages of 5, and
    offsets 5, 10, 20 and 1,000: the last is past the data, which holds pages up to 25."""
    UserFactory(username="staff", is_staff=True)
    for minute in range(15):
        OrderFactory.create_batch(2, created_at=START + timedelta(minutes=minute))
    monkeypatch.setattr(cursor_pagination, "PAGE_SIZE", 5)
    sweep = replace(cursor_pagination.SWEEP, points=(5, 10, 20, 1_000))
    monkeypatch.setattr(cursor_pagination, "SWEEP", sweep)


def _sweep(tmp_path, *args):
    out = StringIO()
    call_command("bench", *args, "--report", str(tmp_path), stdout=out, stderr=StringIO())
    return json.loads((tmp_path / "sweep.json").read_text()), out.getvalue()


def test_every_point_runs_off_and_on_with_the_same_answer(small_sweep, tmp_path):
    data, out = _sweep(tmp_path, "--sweep", "cursor_pagination", "--repeat", "2")
    assert data["sweep"] == "cursor_pagination" and data["axis"] == "offset (rows)"
    assert [p["point"] for p in data["points"]] == [5, 10, 20]
    assert data["skipped"] == [1_000]
    for point in data["points"]:
        # Each point asks for its own page: page N off, the cursor after row N*5 on.
        assert f"page={point['point'] // 5 + 1}&cursor=" in point["path"]
        assert point["same_answer"] is True and point["answer_stable"] is True
        assert point["error"] == ""
        for side in ("off", "on"):
            assert set(point[side]) == SIDE_KEYS
            assert point[side]["runs"] == 2
            # A JSON page is not streamed: its first byte comes with the whole body.
            assert point[side]["streamed"] is False
            assert point[side]["ttfb_p50_ms"] == point[side]["p50_ms"]
            assert set(point[side]["db_parts_ms"]) == {"count", "page"}
            assert point[side]["db_parts_ms"]["page"] > 0
        # The COUNT(*) is the page-number path's alone.
        assert point["off"]["db_parts_ms"]["count"] > 0
        assert point["on"]["db_parts_ms"]["count"] == 0
        assert point["entry"]["off"]["runs"] == 2  # everything a single pair reports
    assert re.search(r"^\s+20\s", out, re.MULTILINE)  # the table's row for offset 20
    assert "ttfb" not in out  # no column that would repeat the p50


def test_the_html_draws_a_line_per_side_and_measure(small_sweep, tmp_path):
    _sweep(tmp_path, "--sweep", "cursor_pagination", "--repeat", "1")
    html = (tmp_path / "sweep.html").read_text()
    series = re.findall(r'<polyline data-series="([^"]+)" points="([^"]+)"', html)
    assert [name for name, _ in series] == [
        "off p50",
        "on p50",
        "off db",
        "on db",
        "off db: count",
        "off db: page",
        "on db: count",
        "on db: page",
    ]
    assert all(len(points.split()) == 3 for _, points in series)  # one vertex per point
    assert "| 20 |" in (tmp_path / "sweep.md").read_text()


def test_the_x_axis_is_logarithmic():
    svg = sweep_report.line_chart(
        [("off p50", "#000", "", [(10, 1.0), (100, 2.0), (1_000, 3.0)])], x_label="n", label="t"
    )
    xs = [float(x) for x in re.search(r'points="([^"]+)"', svg)[1].replace(",", " ").split()[::2]]
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])  # each tenfold step, the same width


def test_an_unknown_sweep_lists_the_ones_there_are(tmp_path):
    with pytest.raises(CommandError, match="no sweep for 'nope'. Sweeps: .*cursor_pagination"):
        _sweep(tmp_path, "--sweep", "nope")
    with pytest.raises(CommandError, match="name no other technique"):
        _sweep(tmp_path, "--sweep", "cursor_pagination", "select_related")


def test_db_indexes_puts_the_data_at_each_point_first(monkeypatch, tmp_path):
    """db_indexes' points are table sizes: its `data` hook fills the table before each point
    (seeding in the real sweep, factories here), and each point measures the table it left."""
    UserFactory(username="staff", is_staff=True)
    filled = []

    def fill(orders):
        filled.append(orders)
        missing = orders - Order.objects.count()
        OrderFactory.create_batch(missing, status=Order.Status.PENDING)
        Token.objects.all().delete()  # as seeding does: the users are new

    sweep = replace(db_indexes_scenario.SWEEP, data=fill, points=(4, 12))
    monkeypatch.setattr(db_indexes_scenario, "SWEEP", sweep)
    data, _ = _sweep(tmp_path, "--sweep", "db_indexes", "--repeat", "1")
    assert filled == [4, 12]
    assert [p["point"] for p in data["points"]] == [4, 12]
    for point in data["points"]:
        assert point["same_answer"] is True and point["error"] == ""
        assert point["entry"]["off"]["status"] == point["entry"]["on"]["status"] == 200
        assert len(point["entry"]["plans"]) == 2  # both sides' EXPLAIN: the indexes flipped
    assert db_indexes.in_effect()  # after() put every index back


@pytest.fixture
def low_cap(monkeypatch):
    """The API's page cap at 8 for the test, so the sweep's 10 is past it, as 200 is past 100."""
    monkeypatch.setattr(PagePagination, "max_page_size", 8)
    monkeypatch.setattr(sweep_pages, "CAP", 8)


def test_select_related_pages_past_the_cap_then_puts_it_back(
    products, low_cap, tmp_path, monkeypatch
):
    sweep = replace(select_related.SWEEP, points=(2, 10, 50))  # 12 products: 50 is skipped
    monkeypatch.setattr(select_related, "SWEEP", sweep)
    data, _ = _sweep(tmp_path, "--sweep", "select_related", "--repeat", "1")
    assert [p["point"] for p in data["points"]] == [2, 10] and data["skipped"] == [50]
    for point in data["points"]:
        assert point["same_answer"] is True and point["error"] == ""
        # The page query, its COUNT(*), and a category and a brand query a row off.
        assert point["off"]["queries"] == 2 + 2 * point["point"]
        assert point["on"]["queries"] == 2
    assert PagePagination.max_page_size == 8  # after() put the API's cap back


def test_prefetch_related_pages_past_the_cap(customer, low_cap, tmp_path, monkeypatch):
    variant = VariantFactory()
    for minute in range(12):
        OrderFactory(
            user=customer, created_at=START + timedelta(minutes=minute), lines=[(variant, 1)]
        )
    sweep = replace(prefetch_related.SWEEP, points=(2, 10, 50))
    monkeypatch.setattr(prefetch_related, "SWEEP", sweep)
    data, _ = _sweep(tmp_path, "--sweep", "prefetch_related", "--repeat", "1")
    assert [p["point"] for p in data["points"]] == [2, 10] and data["skipped"] == [50]
    small, large = data["points"]
    assert small["same_answer"] is True and large["same_answer"] is True
    # One items query an order off, the same queries at any page size on.
    assert large["off"]["queries"] - small["off"]["queries"] == 10 - 2
    assert large["on"]["queries"] == small["on"]["queries"]
    assert PagePagination.max_page_size == 8


def test_algorithmic_complexity_orders_past_the_line_limit(settings, tmp_path, monkeypatch):
    """With the API's limit at 3 lines, the point of 5 is placed all the same (201, not 400),
    and the limit is back at 3 afterwards."""
    settings.ORDER_MAX_LINES = 3
    AddressFactory(user=UserFactory(username="user1"))
    VariantFactory.create_batch(6, stock=10)
    sweep = replace(algorithmic_complexity.SWEEP, points=(2, 5, 50))  # 6 variants: 50 skipped
    monkeypatch.setattr(algorithmic_complexity, "SWEEP", sweep)
    data, _ = _sweep(tmp_path, "--sweep", "algorithmic_complexity", "--repeat", "1")
    assert [p["point"] for p in data["points"]] == [2, 5] and data["skipped"] == [50]
    for point in data["points"]:
        assert point["same_answer"] is True and point["error"] == ""
        assert point["entry"]["off"]["status"] == point["entry"]["on"]["status"] == 201
        assert point["entry"]["writes"] is True  # rolled back: every point starts alike
    assert settings.ORDER_MAX_LINES == 3


def test_streaming_export_records_peak_memory_and_first_byte_at_each_point(tmp_path, monkeypatch):
    """Orders over three days: the point of 2 takes the newest day's (the range is whole days),
    the point of 6 every order; both sides' peak memory is in the JSON and drawn."""
    UserFactory(username="staff", is_staff=True)
    for day, count in ((1, 3), (2, 2), (3, 2)):
        OrderFactory.create_batch(count, created_at=START + timedelta(days=day))
    sweep = replace(streaming_export.SWEEP, points=(2, 6, 100))  # 7 orders: 100 is skipped
    monkeypatch.setattr(streaming_export, "SWEEP", sweep)
    data, _ = _sweep(tmp_path, "--sweep", "streaming_export", "--repeat", "1")
    assert [p["point"] for p in data["points"]] == [2, 7] and data["skipped"] == [100]
    for point in data["points"]:
        assert point["same_answer"] is True and point["error"] == ""
        assert point["off"]["peak_memory_bytes"] > 0 and point["on"]["peak_memory_bytes"] > 0
        # Off builds the CSV whole: its first byte is its whole time. On streams it.
        assert point["off"]["streamed"] is False and point["on"]["streamed"] is True
        assert point["off"]["ttfb_p50_ms"] == point["off"]["p50_ms"]
        assert point["on"]["ttfb_p50_ms"] <= point["on"]["p50_ms"]
        first_day = {2: 3, 7: 1}[point["point"]]
        assert f"date_from={START + timedelta(days=first_day):%Y-%m-%d}&" in point["path"]
    html = (tmp_path / "sweep.html").read_text()
    assert 'data-series="off peak memory"' in html and 'data-series="on peak memory"' in html
    assert 'data-series="off ttfb"' in html and 'data-series="on ttfb"' in html
    assert "<th>on ttfb</th>" in html
