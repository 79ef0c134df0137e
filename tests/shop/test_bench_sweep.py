"""`manage.py bench --sweep NAME`: every point the data holds runs off against on, the JSON has
one entry per point, and the HTML draws a line per side. Run on factory data; no timing is
asserted."""

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import escape
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from catalog.models import Product
from orders.models import Order
from shop.bench import sweep_docs, sweep_pages, sweep_report, table_sample
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
from tests.factories import (
    AddressFactory,
    OrderFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
)

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


@pytest.fixture
def sampled_shop():
    """Orders and products with ids 1 to 80: the 10% sample (`id % 100 < 10`) holds ids 1 to
    9, the 50% one ids 1 to 49. Returns what the user's tables and path are before the sweep."""
    UserFactory(username="staff", is_staff=True)
    for i in range(1, 81):
        OrderFactory(id=i, created_at=START + timedelta(hours=i), status=Order.Status.PLACED)
        ProductFactory(id=i, name=f"Kettle {i}" if i % 3 else f"Lamp {i}")
    return _user_state()


def _user_state() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        (path,) = cursor.fetchone()
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [table_sample.SCHEMA])
        schema = cursor.fetchone()
    orders = list(Order.objects.order_by("id").values_list("id", "status", "created_at"))
    products = list(Product.objects.order_by("id").values_list("id", "name"))
    return path, schema, orders, products


def _db_indexes_sweep(monkeypatch, **changes):
    sweep = replace(db_indexes_scenario.SWEEP, points=(10, 50, 100), **changes)
    monkeypatch.setattr(db_indexes_scenario, "SWEEP", sweep)


def test_db_indexes_runs_each_query_on_a_sample_of_its_table(sampled_shop, monkeypatch, tmp_path):
    """Every indexed query the db_indexes scenarios measure is a series; at 10% and 50% it
    reads the sample (9 and 49 rows), at 100% the table itself (80), and the user's rows,
    path and indexes are as they were afterwards."""
    _db_indexes_sweep(monkeypatch)
    data, out = _sweep(tmp_path, "--sweep", "db_indexes", "--repeat", "1")
    scenarios = [db_indexes_scenario.SCENARIO, *db_indexes_scenario.EXTRA_SCENARIOS]
    assert len(data["series"]) == len(scenarios) == 3
    assert [s["name"] for s in data["series"]] == ["staff filter", "product search", "product list"]
    for series, scenario in zip(data["series"], scenarios, strict=True):
        points = [p for p in data["points"] if p["series"] == series["name"]]
        assert [(p["asked"], p["point"]) for p in points] == [(10, 9), (50, 49), (100, 80)]
        for point in points:
            assert point["entry"]["title"] == scenario.title
            assert point["same_answer"] is True and point["error"] == ""
            assert point["entry"]["off"]["status"] == point["entry"]["on"]["status"] == 200
            assert len(point["entry"]["plans"]) == 2  # both sides' EXPLAIN: the indexes flipped
    assert "product list\n" in out  # a table per series
    html = (tmp_path / "sweep.html").read_text()
    for series in data["series"]:  # and charts per series, on its own axis
        assert f'aria-label="db_indexes: {series["name"]}: p50 and database time"' in html
        assert f"{series['axis']} (log scale)" in html
    assert _user_state() == sampled_shop  # rows, path, no sample schema left
    assert db_indexes.in_effect()  # after() put every index back


def test_db_indexes_sweep_reads_the_sample_it_made(sampled_shop, monkeypatch, tmp_path):
    """The page the staff filter answers at 10% holds only sampled orders (ids 1 to 9)."""
    answers = {}

    def record(percent):
        db_indexes_scenario._sample(percent)
        answers[percent] = set(Order.objects.values_list("id", flat=True))

    _db_indexes_sweep(monkeypatch, data=record)
    _sweep(tmp_path, "--sweep", "db_indexes", "--repeat", "1")
    assert answers[10] == set(range(1, 10)) and answers[50] == set(range(1, 50))
    assert answers[100] == set(range(1, 81))
    assert _user_state() == sampled_shop


def test_db_indexes_sweep_interrupted_restores_everything(sampled_shop, monkeypatch, tmp_path):
    """Ctrl-C at the second point, its sample in use and indexes dropped: the path, the
    schema and the indexes are put back all the same."""

    def interrupt(percent):
        db_indexes_scenario._sample(percent)
        if percent == 50:
            db_indexes.drop_all()
            raise KeyboardInterrupt

    _db_indexes_sweep(monkeypatch, data=interrupt)
    with pytest.raises(CommandError, match="Interrupted") as raised:
        _sweep(tmp_path, "--sweep", "db_indexes", "--repeat", "1")
    assert raised.value.returncode == 130
    assert _user_state() == sampled_shop
    assert db_indexes.in_effect()


def test_a_sweep_with_no_point_the_data_holds_fails_in_one_line(tmp_path):
    """No orders or products: every db_indexes point is skipped, and the command says to seed."""
    with pytest.raises(CommandError, match=r"none of the sweep's points .*seed it first"):
        _sweep(tmp_path, "--sweep", "db_indexes", "--repeat", "1")
    assert _user_state()[1] is None  # no sample schema left


def test_a_sample_is_a_share_of_the_table_and_release_is_idempotent(sampled_shop):
    table_sample.use(["orders_order"], 10)
    assert table_sample.in_use() and Order.objects.count() == 9
    assert Product.objects.count() == 80  # a table not sampled is the user's
    assert table_sample.release() == ["search_path reset", f"schema {table_sample.SCHEMA} dropped"]
    assert table_sample.release() == []
    assert _user_state() == sampled_shop
    with pytest.raises(ValueError, match="1 to 99%"):
        table_sample.use(["orders_order"], 100)


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


TECHNIQUE_INDEXES = set(db_indexes.BY_NAME)


def _technique_indexes(schema: str) -> set[str]:
    """The technique's indexes in `schema`, as pg_indexes lists them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND indexname = ANY(%s)",
            [schema, list(TECHNIQUE_INDEXES)],
        )
        return {name for (name,) in cursor.fetchall()}


def test_on_before_off_builds_the_indexes_on_the_copies_and_never_touches_the_users(
    sampled_shop,
):
    table_sample.use(db_indexes_scenario.SAMPLED, 10, skip_indexes=list(TECHNIQUE_INDEXES))
    try:
        assert _technique_indexes(table_sample.SCHEMA) == set()
        assert not any(db_indexes.present().values())  # the copies have none
        db_indexes.apply_state(True)  # the on side first
        assert _technique_indexes(table_sample.SCHEMA) == TECHNIQUE_INDEXES
        assert db_indexes.in_effect()
        db_indexes.apply_state(False)
        assert _technique_indexes(table_sample.SCHEMA) == set()
        assert _technique_indexes("public") == TECHNIQUE_INDEXES  # the user's keep theirs
        db_indexes.apply_state(True)
        assert _technique_indexes(table_sample.SCHEMA) == TECHNIQUE_INDEXES
    finally:
        table_sample.release()
    assert _technique_indexes("public") == TECHNIQUE_INDEXES and db_indexes.in_effect()


def test_the_users_indexes_are_all_there_during_every_sampled_point(
    sampled_shop, monkeypatch, tmp_path
):
    """Read from pg_indexes in each side's before() hook, once it has put its state: on a
    sample, each side's indexes are on the copies, and the user's tables keep all of theirs."""
    seen = []
    before = db_indexes_scenario.before

    def watched(enabled: bool) -> None:
        before(enabled)
        public, copy = _technique_indexes("public"), _technique_indexes(table_sample.SCHEMA)
        seen.append((table_sample.in_use(), enabled, public, copy))

    monkeypatch.setattr(db_indexes_scenario, "before", watched)
    _db_indexes_sweep(monkeypatch)
    data, _ = _sweep(tmp_path, "--sweep", "db_indexes", "--repeat", "1")
    assert all(point["error"] == "" for point in data["points"])
    sampled = [(enabled, public, copy) for in_use, enabled, public, copy in seen if in_use]
    assert {enabled for enabled, _, _ in sampled} == {False, True}
    for enabled, public, copy in sampled:
        assert public == TECHNIQUE_INDEXES
        assert copy == (TECHNIQUE_INDEXES if enabled else set())
    # At 100% the tables are the user's: the off side drops theirs, and after() restores them.
    assert any(not in_use and not enabled and not public for in_use, enabled, public, _ in seen)
    assert _technique_indexes("public") == TECHNIQUE_INDEXES


def test_a_series_whose_answer_is_empty_at_a_point_is_not_measured_there(
    sampled_shop, monkeypatch, tmp_path
):
    """No product in the 10% sample matches the search: its page query would never run, so
    that point is left out, with why, in the JSON, the reports and the chapter's block."""
    Product.objects.filter(id__lt=10).update(name="Lamp")
    _db_indexes_sweep(monkeypatch)
    data, _ = _sweep(tmp_path, "--sweep", "db_indexes", "--repeat", "1")
    (empty,) = data["empty"]
    assert (empty["series"], empty["asked"], empty["point"]) == ("product search", 10, 9)
    assert "search=kettle" in empty["why"] and "answers no rows" in empty["why"]
    search = [p for p in data["points"] if p["series"] == "product search"]
    assert [(p["asked"], p["point"]) for p in search] == [(50, 49), (100, 80)]
    assert all(p["entry"]["on"]["status"] == 200 for p in search)
    assert len([p for p in data["points"] if p["series"] == "staff filter"]) == 3
    said = f"not measured, product search at 9: {empty['why']}"
    assert said in (tmp_path / "sweep.md").read_text()
    assert escape(said) in (tmp_path / "sweep.html").read_text()
    assert f"Not measured, product search at 9: {empty['why']}." in sweep_docs.render(data)


def test_the_html_puts_each_series_charts_and_table_under_its_heading(
    sampled_shop, monkeypatch, tmp_path
):
    _db_indexes_sweep(monkeypatch)
    data, _ = _sweep(tmp_path, "--sweep", "db_indexes", "--repeat", "1")
    html = (tmp_path / "sweep.html").read_text()
    sections = re.findall(r"<section><h2>([^<]+)</h2>(.*?)</section>", html, re.DOTALL)
    assert [name for name, _ in sections] == [s["name"] for s in data["series"]]
    for (name, body), series in zip(sections, data["series"], strict=True):
        captions = re.findall(r"<figcaption>([^<]+)</figcaption>\s*<svg", body)
        assert captions == [
            f"{name}: p50 and database time against {series['axis']}",
            f"{name}: database time by part against {series['axis']}",
        ]
        assert body.index("<figure>") < body.index("<table>")  # charts, then the table
