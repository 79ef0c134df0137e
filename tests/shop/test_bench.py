"""The benchmark harness: pairs, alternation, same answer, restoring after failures, the SQL
floor and the reports. Run on factory data; no timing is asserted."""

import json
import os
import signal
import subprocess
import sys
from io import StringIO
from time import perf_counter, sleep

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.http import StreamingHttpResponse
from rest_framework.authtoken.models import Token

from catalog.models import Variant
from orders.models import Order
from shop import toggles
from shop.bench import dataset, discovery, runner
from shop.bench.alternation import Arm, abba, schedule
from shop.bench.measure import BASELINE_PATH, QueryCounter, _read
from shop.bench.scenario import Call, Scenario
from shop.seed import SIZES
from shop.techniques import db_indexes
from tests.factories import (
    OrderFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
)
from tests.shop.conftest import FAKE, run_bench

pytestmark = pytest.mark.django_db

# --- the order of the runs ---------------------------------------------------------------


def test_abba_alternates_and_reverses_every_other_round():
    assert abba(["off", "on"], 4) == ["off", "on", "on", "off", "off", "on", "on", "off"]
    assert abba(["off", "on", "floor"], 2) == ["off", "on", "floor", "floor", "on", "off"]


def test_a_before_hook_makes_blocks_of_at_most_five_runs_in_abba_order():
    arms = [Arm("off", False, None), Arm("on", True, None)]
    blocks = schedule(arms, 20, blocked=True)
    assert [(state, len(order)) for state, order in blocks] == [
        (False, 5),
        (True, 10),
        (False, 10),
        (True, 10),
        (False, 5),
    ]
    assert [(state, len(order)) for state, order in schedule(arms, 1, blocked=True)] == [
        (False, 1),
        (True, 1),
    ]


def test_a_before_hook_makes_blocks_off_on_off():
    arms = [Arm("off", False, None), Arm("on", True, None), Arm("floor", True, None)]
    assert schedule(arms, 3, blocked=True) == [
        (False, ["off", "off"]),
        (True, ["on", "floor", "floor", "on", "on", "floor"]),
        (False, ["off"]),
    ]
    assert schedule(arms[:2], 2, blocked=False) == [(None, ["off", "on", "on", "off"])]


def test_the_runs_really_go_off_on_on_off(products, tmp_path, monkeypatch):
    sent = []
    real_send = runner.send

    def recording(requester, prepared, *, flags, **kwargs):
        if prepared.path == BASELINE_PATH:
            sent.append("base")
        else:
            sent.append("on" if flags["select_related"] else "off")
        return real_send(requester, prepared, flags=flags, **kwargs)

    monkeypatch.setattr(runner, "send", recording)
    run_bench(tmp_path, "select_related", "--repeat", "4")
    warmup = ["off", "on", "base"]  # a fifth of 4 runs, at least one per side
    cycle = ["off", "on", "base", "base", "on", "off"]
    assert sent == [*warmup, *cycle, *cycle]


# --- a real technique, end to end ------------------------------------------------------------


def test_select_related_pair_reports_queries_same_answer_and_files(products, tmp_path):
    data, out = run_bench(tmp_path, "select_related", "--repeat", "3")
    assert {"techniques", "machine", "dataset", "settings"} <= set(data)
    (entry,) = data["techniques"]
    assert entry["name"] == "select_related"
    # Declares no extra arm, no cold runs, no target: the entry says so, the reports skip them.
    assert (entry["arms"], entry["cold"], entry["targets"]) == ({}, None, {})
    assert entry["every_toggle"] is False and entry["user"] is None
    assert entry["same_answer"] is True
    assert entry["answer_stable"] is True
    for side in ("off", "on"):
        assert {"queries", "queries_by_alias", "p50_ms", "p95_ms", "bytes"} <= set(entry[side])
        assert entry[side]["runs"] == 3
        assert 0 < entry[side]["db_p50_ms"] < entry[side]["p50_ms"]
        assert 0 < entry[side]["db_min_ms"] <= entry[side]["db_p50_ms"]
    assert entry["db_speedup_p50"] == pytest.approx(
        entry["off"]["db_p50_ms"] / entry["on"]["db_p50_ms"], rel=0.01
    )
    assert entry["off"]["queries"] == 2 + 2 * 12  # COUNT, the page, a category and a brand each
    assert entry["on"]["queries"] == 2
    assert entry["off"]["bytes"] == entry["on"]["bytes"] > 0
    assert entry["speedup_p50"] == pytest.approx(
        entry["off"]["p50_ms"] / entry["on"]["p50_ms"], rel=0.01
    )
    # The baseline: the same anonymous client on a view that does nothing, no query at all.
    assert entry["baseline"]["runs"] == 3 and entry["baseline"]["queries"] == 0
    assert entry["baseline"]["status"] == 200
    assert entry["ceiling_p50"] == pytest.approx(
        entry["off"]["p50_ms"] / entry["baseline"]["p50_ms"], rel=0.01
    )
    parts = entry["on_breakdown_ms"]
    assert set(parts) == {"baseline", "database", "python"} and min(parts.values()) >= 0
    assert parts["baseline"] == entry["baseline"]["p50_ms"]
    assert data["dataset"]["rows"]["products"] == 12
    assert "select_related" in out and "✓" in out
    html = (tmp_path / "bench.html").read_text()
    assert "<svg" in html and "of this request's own Python" in html
    assert "| select_related |" in (tmp_path / "bench.md").read_text()
    assert toggles.active_overrides() == {}


def test_a_spent_budget_stops_after_one_run_per_side(products, tmp_path):
    data, _ = run_bench(tmp_path, "select_related", "--repeat", "6", "--budget", "0")
    (entry,) = data["techniques"]
    assert entry["off"]["runs"] == entry["on"]["runs"] == 1
    assert "1 of 6 runs per side" in entry["warnings"][0]


def test_a_write_is_rolled_back_and_the_token_removed(customer, fake_module, tmp_path):
    variant = VariantFactory(stock=10)

    def stock_after(response):
        return response.status_code, Variant.objects.get(pk=variant.pk).stock

    fake_module.SCENARIO = Scenario(
        name=FAKE,
        title="place an order",
        call=lambda: Call(
            "POST",
            "/api/orders/",
            data={"items": [{"sku": variant.sku, "quantity": 2}]},
            user=customer.username,
        ),
        writes=True,
        answer=stock_after,
        hold={"no_such_technique": True},
    )
    data, _ = run_bench(tmp_path, FAKE, "--repeat", "2")
    (entry,) = data["techniques"]
    assert entry["same_answer"] is True and entry["answer_stable"] is True
    assert entry["on"]["status"] == 201
    assert "no_such_technique" in entry["warnings"][0]
    assert Order.objects.count() == 0
    assert Variant.objects.get(pk=variant.pk).stock == 10
    assert not Token.objects.filter(user=customer).exists()


def test_peak_memory_is_measured_when_asked(products, fake_module, tmp_path):
    fake_module.SCENARIO = Scenario(
        name=FAKE,
        title="product list",
        call=lambda: Call("GET", "/api/products/?page_size=12"),
        memory=True,
    )
    data, _ = run_bench(tmp_path, FAKE, "--repeat", "1")
    (entry,) = data["techniques"]
    assert entry["off"]["peak_memory_bytes"] > 0
    assert entry["on"]["peak_memory_bytes"] > 0
    # Charted off against on; the baseline, which is not traced, does not hide the chart.
    assert entry["baseline"]["peak_memory_bytes"] is None
    assert ">peak memory</text>" in (tmp_path / "bench.html").read_text()


# --- failures and interrupts restore everything -----------------------------------------------


def _failing_module(fake_module, exception):
    """before/after record what they are called with; the third answer raises."""
    answers = []

    def answer(response):
        answers.append(response.status_code)
        if len(answers) == 3:
            raise exception
        return response.json()

    fake_module.before = lambda enabled: fake_module.events.append(("before", enabled))
    fake_module.after = lambda: fake_module.events.append(("after",))
    fake_module.SCENARIO = Scenario(
        name=FAKE, title="fails", call=lambda: Call("GET", "/api/products/"), answer=answer
    )


def test_a_failing_scenario_still_runs_after_and_leaves_toggles_alone(
    products, fake_module, tmp_path
):
    _failing_module(fake_module, RuntimeError("broken on purpose"))
    with pytest.raises(CommandError, match="failed"):
        run_bench(tmp_path, FAKE, "--repeat", "4")
    # after() at start-up (every module's normal state first), then around the scenario
    assert fake_module.events == [("after",), ("before", False), ("after",)]
    assert toggles.active_overrides() == {}
    assert toggles.is_enabled(FAKE) and toggles.is_enabled("select_related")
    (entry,) = json.loads((tmp_path / "bench.json").read_text())["techniques"]
    assert "broken on purpose" in entry["error"]


def test_ctrl_c_still_runs_after_and_keeps_what_was_measured(
    products, fake_module, tmp_path, monkeypatch
):
    _failing_module(fake_module, KeyboardInterrupt())
    monkeypatch.setattr(discovery, "module_names", lambda: ["select_related", FAKE])
    with pytest.raises(CommandError, match="Interrupted") as raised:
        call_command(
            "bench", "select_related", FAKE, "--repeat", "4", "--report", str(tmp_path),
            stdout=StringIO(), stderr=StringIO(),
        )  # fmt: skip
    assert raised.value.returncode == 130
    assert fake_module.events == [("after",), ("before", False), ("after",)]
    assert toggles.active_overrides() == {}
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["interrupted"] is True
    assert [entry["name"] for entry in data["techniques"]] == ["select_related"]


# --- what is counted --------------------------------------------------------------------------


def test_the_request_s_own_transaction_is_not_counted_nested_savepoints_are():
    with QueryCounter() as counter, transaction.atomic():
        connection.cursor().execute("SELECT 1")
    assert counter.counts["default"] == 1  # the test's transaction makes it a savepoint
    with QueryCounter() as counter, transaction.atomic(), transaction.atomic():
        connection.cursor().execute("SELECT 1")
    assert counter.counts["default"] == 3  # SAVEPOINT, SELECT, RELEASE SAVEPOINT


def test_database_time_is_the_time_inside_execute():
    with QueryCounter() as counter:
        pass
    assert counter.db_seconds == 0.0
    with QueryCounter() as counter:
        started = perf_counter()
        connection.cursor().execute("SELECT pg_sleep(0.05)")
        outside = perf_counter() - started
        sleep(0.05)  # Python's time, not the database's
    assert 0.05 <= counter.db_seconds <= outside


def test_a_streamed_body_is_read_and_its_queries_counted():
    def rows():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        yield b"a,b\n"
        yield "1,2\n"

    chunks = []
    with QueryCounter() as counter:
        size, _ = _read(StreamingHttpResponse(rows()), keep=chunks)
    assert (size, b"".join(chunks), counter.counts["default"]) == (8, b"a,b\n1,2\n", 1)


def test_the_streamed_export_reports_its_first_byte_and_the_built_one_does_not(tmp_path):
    """On streams the CSV, so its first byte is timed apart; off builds it whole, so its first
    byte is its whole time, and the report says nothing of it."""
    UserFactory(username="staff", is_staff=True)
    OrderFactory.create_batch(3)
    data, out = run_bench(tmp_path, "streaming_export", "--repeat", "2")
    (entry,) = data["techniques"]
    off, on = entry["off"], entry["on"]
    assert entry["same_answer"] is True and off["bytes"] == on["bytes"] > 0
    assert (off["streamed"], on["streamed"], entry["baseline"]["streamed"]) == (False, True, False)
    assert off["ttfb_p50_ms"] == off["p50_ms"]
    assert on["ttfb_p50_ms"] <= on["p50_ms"]
    assert out.count("(first byte ") == 1  # the on side's cell alone
    assert ">time to first byte p50</text>" in (tmp_path / "bench.html").read_text()
    assert "(first byte " in (tmp_path / "bench.md").read_text()


def test_the_bytes_postgresql_sent_are_counted_per_request(products, tmp_path):
    data, out = run_bench(tmp_path, "field_selection", "--repeat", "2")
    (entry,) = data["techniques"]
    off, on = entry["off"]["db_bytes"], entry["on"]["db_bytes"]
    # Off, every row brings its description: at least their bytes more than on.
    descriptions = sum(len(product.description.encode()) for product in products)
    assert descriptions > 0 and off - on >= descriptions
    assert on > 0
    assert "from the db" in out
    assert ">bytes from the db</text>" in (tmp_path / "bench.html").read_text()


def test_result_bytes_are_the_values_postgresql_sent():
    with QueryCounter(result_bytes=True) as counter, connection.cursor() as cursor:
        cursor.execute("SELECT repeat('x', 1000), NULL::text, 'ab' FROM generate_series(1, 3)")
    assert counter.result_bytes == 3 * (1000 + 0 + 2)
    with QueryCounter() as counter:
        connection.cursor().execute("SELECT 1")
    assert counter.result_bytes is None  # not asked: no cost


def test_strict_fails_on_an_unstable_answer(products, fake_module, tmp_path):
    answers = []

    def changing(response):  # both sides' first answers agree; their later ones do not
        answers.append(response.status_code)
        return "first" if len(answers) <= 2 else f"run {len(answers)}"

    fake_module.SCENARIO = Scenario(
        name=FAKE, title="unstable", call=lambda: Call("GET", "/api/products/"), answer=changing
    )
    data, _ = run_bench(tmp_path, FAKE, "--repeat", "1")
    (entry,) = data["techniques"]
    assert entry["same_answer"] is True and entry["answer_stable"] is False
    answers.clear()
    with pytest.raises(CommandError, match="--strict: a technique's answer changed"):
        run_bench(tmp_path, FAKE, "--repeat", "1", "--strict")


def test_perf_toggles_from_the_environment_is_recorded(products, tmp_path, monkeypatch):
    monkeypatch.setenv("PERF_TOGGLES", "prefetch_related=off")
    data, out = run_bench(tmp_path, "select_related", "--repeat", "1")
    assert data["perf_toggles"] == "prefetch_related=off"
    line = "PERF_TOGGLES: 'prefetch_related=off'"
    assert line in out
    assert line in (tmp_path / "bench.md").read_text()
    assert "PERF_TOGGLES: &#x27;prefetch_related=off&#x27;" in (tmp_path / "bench.html").read_text()
    monkeypatch.delenv("PERF_TOGGLES")
    data, out = run_bench(tmp_path, "select_related", "--repeat", "1")
    assert data["perf_toggles"] is None and "PERF_TOGGLES: not set" in out


# --- restoring what a killed run left ---------------------------------------------------------


def test_start_up_restores_indexes_a_killed_run_left_dropped(products, tmp_path):
    db_indexes.drop_all()  # what a run killed during an off block leaves
    data, out = run_bench(tmp_path, "select_related", "--repeat", "1")
    assert db_indexes.in_effect()
    restored = f"db_indexes: {', '.join(index.name for index in db_indexes.INDEXES)}"
    assert data["restored_at_start"] == [restored]
    assert f"restored at start-up: {restored}" in (tmp_path / "bench.md").read_text()
    data, _ = run_bench(tmp_path, "select_related", "--repeat", "1")
    assert data["restored_at_start"] == []


@pytest.mark.django_db(transaction=True)
def test_sigterm_restores_the_indexes_as_ctrl_c_does(tmp_path):
    """A real bench process, killed with SIGTERM while db_indexes' off side has the indexes
    dropped: it stops, restores them, and still writes its report.

    Held there by a lock, not caught by polling (a block of a few fast requests can pass
    between two polls): this test holds ROW EXCLUSIVE on the last index's table, so the
    off side's DROP INDEX CONCURRENTLY drops every index before it, then waits for the lock.
    The indexes stay dropped until the lock goes, which is after SIGTERM is sent."""
    last = db_indexes.INDEXES[-1]
    dropped_first = [index for index in db_indexes.INDEXES if index.table != last.table]
    assert dropped_first and db_indexes.INDEXES[: len(dropped_first)] == dropped_first
    ProductFactory.create_batch(3)  # committed: the process reads the test database
    database = connection.settings_dict["NAME"]
    url = f"postgresql://{connection.settings_dict['USER']}@{connection.settings_dict['HOST']}:"
    url += f"{connection.settings_dict['PORT']}/{database}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.loadtest",
        "DATABASE_URL": url,
        "DATABASE_REPLICA_URL": url,
    }
    env.pop("PERF_TOGGLES", None)
    command = [sys.executable, "manage.py", "bench", "db_indexes", "--repeat", "5"]
    locker = psycopg.connect(url)  # its own transaction: the lock holds until the rollback
    locker.execute(f"LOCK TABLE {last.table} IN ROW EXCLUSIVE MODE")
    process = subprocess.Popen(
        [*command, "--report", str(tmp_path)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = perf_counter() + 120  # the process's start-up, on a busy machine
        while any(db_indexes.present()[index.name] for index in dropped_first):
            if process.poll() is not None:
                pytest.fail(f"the bench ended before the off side: {process.communicate()[1]}")
            if perf_counter() > deadline:
                pytest.fail("the off side never dropped the indexes in 120 s")
            sleep(0.05)
        assert not db_indexes.in_effect()  # and stays so: the last drop waits for the lock
        process.send_signal(signal.SIGTERM)
        locker.rollback()  # the restore needs the table too
        _, err = process.communicate(timeout=60)
    finally:
        locker.close()
        if process.poll() is None:
            process.kill()
            process.communicate()
        leftover = db_indexes.create_all()  # never leave the test database without them
    assert leftover == [], err
    assert process.returncode == 130, err
    assert "Interrupted (Ctrl-C or SIGTERM)" in err
    assert json.loads((tmp_path / "bench.json").read_text())["interrupted"] is True


# --- refusals and the data set ----------------------------------------------------------------


def test_refuses_settings_that_distort_timings(settings):
    settings.DEBUG = True
    with pytest.raises(CommandError, match="config.settings.loadtest"):
        call_command("bench", "select_related", stdout=StringIO(), stderr=StringIO())


def test_an_unknown_name_lists_what_exists():
    with pytest.raises(CommandError, match="no scenario for nope.*select_related"):
        call_command("bench", "nope", stdout=StringIO(), stderr=StringIO())


def test_size_is_matched_by_row_counts_and_seeded_when_different(monkeypatch):
    medium = SIZES["medium"]
    rows = {"users": medium.users + 2, "products": medium.products, "orders": medium.orders + 5}
    assert dataset.matching_size(rows) == "medium"
    assert dataset.matching_size({**rows, "orders": 12}) is None
    seeded = []
    monkeypatch.setattr(dataset, "row_counts", lambda: rows)
    monkeypatch.setattr(dataset, "run_seed", lambda *, size, out: seeded.append(size))
    dataset.ensure("medium", out=lambda line: None)
    assert seeded == []
    dataset.ensure("small", out=lambda line: None)
    assert seeded == ["small"]
