"""The Locust scenarios: one per built technique under its name, each sending X-Perf-Toggles
from LOADTEST_TOGGLE, and each running for real with no failure on either side.

Importing locust monkey-patches the process with gevent, so the scenarios are imported and run
in a subprocess (tests/loadtest_driver.py), never in the test process.
"""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Sum

from catalog.models import Variant
from orders.models import Order
from shop import toggles
from shop.bench import discovery
from shop.bench.measure import per_request
from shop.techniques import db_indexes, table_partitioning

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "loadtests" / "scenarios"
# What the server refuses per request: the scenario runs against the database's state instead.
NOT_PER_REQUEST = {"db_indexes", "connection_pooling", "table_partitioning"}
# Their on side revalidates what the client holds: a 304, whose answer is the client's copy.
NOT_MODIFIED = {"http_caching"}
# The scenarios that place orders.
WRITES = {
    "bulk_writes",
    "algorithmic_complexity",
    "inventory_locking",
    "short_transactions",
    "circuit_breaker",
    "async_tasks",
    "transactional_outbox",
    "backpressure",
    "rate_limiting",
}


def _driver(*args: str, toggle: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_VERSION"}
    return subprocess.run(
        [sys.executable, "-m", "tests.loadtest_driver", *args],
        cwd=ROOT,
        # LOADTEST_SETTLE_S: async_tasks' polls give up soon, as no worker runs its tasks here.
        env={**env, "LOADTEST_TOGGLE": toggle, "LOCUST_USER_POOL": "50", "LOADTEST_SETTLE_S": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _answer(*args: str, toggle: str) -> dict:
    result = _driver(*args, toggle=toggle)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_built_technique_has_a_locust_scenario_and_nothing_else_does():
    files = {path.stem for path in SCENARIOS.glob("*.py") if not path.stem.startswith("_")}
    assert files == {toggle.name for toggle in toggles.registered()}


@pytest.mark.parametrize("side", ["off", "on"])
def test_each_scenario_defines_one_user_whose_header_follows_loadtest_toggle(side):
    described = _answer("describe", toggle=side)
    assert set(described) == {toggle.name for toggle in toggles.registered()}
    for name, entry in described.items():
        assert len(entry["classes"]) == 1, (name, entry)
        assert entry["technique"] == name
        # A hold passed by the scenario's task, plus the technique at the chosen side.
        flags = {"fast_serialization": False}
        if name not in NOT_PER_REQUEST:
            flags[name] = side == "on"
        assert entry["header"] == toggles.format_flags(flags), name


def test_a_bad_loadtest_toggle_is_refused():
    result = _driver("describe", toggle="maybe")
    assert result.returncode != 0
    assert "LOADTEST_TOGGLE must be 'on' or 'off', not 'maybe'" in result.stderr


def test_http_caching_forgets_the_etag_of_a_copy_a_200_replaced_without_one():
    """As a browser: a 200 without an ETag replaces the copy, so its old ETag is not sent
    again; a 200 with one replaces both; a 304 keeps them."""
    code = """
from types import SimpleNamespace as R
from loadtests.scenarios.http_caching import remember
etags = {}
remember(etags, "/p", R(status_code=200, headers={"ETag": 'W/"a"'}))
remember(etags, "/p", R(status_code=304, headers={}))
assert etags == {"/p": 'W/"a"'}, etags
remember(etags, "/p", R(status_code=200, headers={}))
assert etags == {}, etags
"""
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_VERSION"}
    result = subprocess.run(  # locust patches the process with gevent: not in this one
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def seeded(transactional_db):
    """The small data set, committed so the live server's thread sees it."""
    from shop.seed import seed

    seed(size="small", seed=42, out=lambda line: None)


def _run_against(server: str, side: str, *names: str) -> dict:
    """Each scenario's user against the live server: its start, then each task once."""
    return _answer("run", server, *names, toggle=side)


@pytest.mark.slow
def test_every_scenario_runs_off_and_on_against_a_live_server(seeded, live_server):
    stock = Variant.objects.aggregate(total=Sum("stock"))["total"]
    orders = Order.objects.count()
    assert db_indexes.in_effect()  # the migrations create them
    # The reads first, both sides on the same rows; then the writes, which add orders.
    reads = sorted({toggle.name for toggle in toggles.registered()} - WRITES)
    runs = {"on": _run_against(live_server.url, "on", *reads)}
    # db_indexes cannot be switched per request: its off side runs against a database without
    # the indexes, as after `manage.py db_indexes off`; table_partitioning's against a plain
    # event log, as after `manage.py migrate orders 0006`. That migration also drops the sales
    # report's materialized views (0009), which other scenarios read with materialized_view
    # held on (fast_serialization's report): table_partitioning's off side runs last, alone.
    db_indexes.apply_state(False)
    try:
        runs["off"] = _run_against(
            live_server.url, "off", *(name for name in reads if name != "table_partitioning")
        )
        call_command("migrate", "orders", "0006", verbosity=0)
        assert not table_partitioning.in_effect()
        runs["off"].update(_run_against(live_server.url, "off", "table_partitioning"))
    finally:
        db_indexes.apply_state(True)
        call_command("migrate", "orders", verbosity=0)
        # the months the test database had (tests/conftest.py), which the migrations dropped
        table_partitioning.ensure(date(2024, 1, 1), date.today())
    for side in ("on", "off"):
        runs[side].update(_run_against(live_server.url, side, *WRITES))

    bench_holds = {
        name: [per_request(dict(scenario.hold)) for scenario in discovery.suite(name).scenarios]
        for name in runs["on"]
    }
    for side, run in runs.items():
        assert set(run) == {toggle.name for toggle in toggles.registered()}
        for name, scenario in run.items():
            requests = scenario["requests"]
            assert not scenario["stopped"], (side, name, requests)
            for request in requests:
                assert request["failure"] is None, (side, name, request)
                revalidated = name in NOT_MODIFIED and side == "on" and request["status"] == 304
                assert 200 <= request["status"] < 300 or revalidated, (side, name, request)
            measured = [r for r in requests if r["name"].startswith(f"{name}: ")]
            assert measured, (side, name)
            if name in NOT_MODIFIED:  # on: every revalidation of an unchanged page is a 304
                statuses = {r["status"] for r in measured}
                assert statuses == ({304} if side == "on" else {200}), (side, name, statuses)
            for request in measured:
                sent = toggles.parse(request["sent"])
                if name in NOT_PER_REQUEST:
                    assert name not in sent, (side, request)
                else:
                    assert sent[name] == (side == "on"), (side, request)
                # The server applied exactly what was sent.
                assert request["echo"] == request["sent"], (side, request)
                # Besides the technique: what one of its bench scenarios holds.
                held = {flag: on for flag, on in sent.items() if flag != name}
                assert held in bench_holds[name], (side, request, bench_holds[name])

    # The same rows on both sides, page by page (cursor_pagination's URL carries both positions).
    for name in reads:
        pages = {
            side: {
                r["name"]: r["results"]
                for r in run[name]["requests"]
                if r["results"] and not (name in NOT_MODIFIED and r["name"].startswith(name))
            }
            for side, run in runs.items()
        }
        assert pages["off"] == pages["on"], name

    # The write scenarios cancel each order they place: the stock is back, whatever the side.
    assert Variant.objects.aggregate(total=Sum("stock"))["total"] == stock
    new = Order.objects.order_by("-id")[: Order.objects.count() - orders]
    assert len(new) == 2 * len(WRITES)  # one order each, off and on, of each write scenario
    assert {order.status for order in new} == {Order.Status.CANCELLED}


@pytest.mark.slow
def test_db_indexes_stops_when_the_database_is_on_the_other_side(seeded, live_server):
    assert db_indexes.in_effect()
    run = _run_against(live_server.url, "off", "db_indexes")
    (check,) = run["db_indexes"]["requests"]
    assert run["db_indexes"]["stopped"]
    assert "run `python manage.py db_indexes off` first" in check["failure"]
