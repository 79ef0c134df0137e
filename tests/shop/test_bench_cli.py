"""`manage.py bench`'s command line: bad input is a one-line CommandError, given before anything
runs (no gunicorn started, no scenario run, no report half written), and a run whose requests
all failed exits non-zero. The server and the runs are replaced by tripwires that fail the test
if reached; the servers that answer are real ones on loopback (tests/http_stub.py)."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shop.bench import http, runner, server, sweep
from shop.bench.http import HttpPair, HttpSide
from tests.http_stub import Reply, serve


class Reached(Exception):
    """A tripwire: the command went further than bad input should let it."""


@pytest.fixture
def tripwires(monkeypatch):
    def reached(*args, **kwargs):
        raise Reached("started despite the bad input")

    monkeypatch.setattr(server, "gunicorn", reached)
    monkeypatch.setattr(runner, "run", reached)
    monkeypatch.setattr(sweep, "run", reached)


def bench(*args):
    call_command("bench", *args, stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--open-loop", "nosuch"], "neither a PATH nor a scenario NAME; scenarios: "),
        (["--open-loop", "api/perf/ping/"], r"a PATH starts with / \(/api/perf/ping/\)"),
        (["--open-loop", "--rate", "nan"], "finite"),
        (["--open-loop", "--rate", "inf"], "finite"),
        (["--open-loop", "--duration", "nan"], "finite"),
        (["--open-loop", "order_history"], "composite"),
        (["--open-loop", "--report", "/proc/nope"], "--report: cannot write in /proc/nope"),
        (["--http", "nosuch"], "no scenario for nosuch"),
        (["--http", "select_related", "--clients", "0"], "--clients is between"),
        (["--http", "select_related", "--requests", "0"], "--requests is between"),
        (["--http", "order_history"], "composite"),
        (["--http", "select_related", "--rate", "5"], "--rate is for --open-loop"),
        (["--open-loop", "--clients", "2"], "--clients is for --http"),
        (["--open-loop", "--report", "/tmp", "--json", "/proc/nope/b.json"], "--json: cannot"),
    ],
)
def test_bad_input_over_http_is_refused_before_gunicorn_starts(tripwires, args, message):
    with pytest.raises(CommandError, match=message):
        bench(*args)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sweep", ""], "--sweep needs a technique's NAME"),
        (["--budget", "-1"], "--budget must be 0 or more seconds"),
        (["--budget", "nan"], "--budget must be 0 or more seconds"),
        (["--clients", "3", "select_related"], "--clients is for --http"),
        (["--requests", "3"], "--requests is for --http"),
        (["--rate", "5"], "--rate is for --open-loop"),
        (["--url", "http://127.0.0.1:8000"], "--url is for --http or --open-loop"),
        (["select_related", "--report", "/proc/nope"], "--report: cannot write in /proc/nope"),
        (["--sweep", "select_related", "--report", "/proc/nope"], "--report: cannot write"),
    ],
)
def test_bad_input_in_process_is_refused_before_any_run(tripwires, args, message):
    with pytest.raises(CommandError, match=message):
        bench(*args)


@pytest.mark.django_db
def test_an_open_loop_whose_every_request_failed_exits_non_zero(tmp_path):
    """Nothing listens on port 1: every request is refused. The report is still written."""
    with pytest.raises(CommandError, match=r"every request failed: GET /api/perf/ping/ \("):
        bench(
            "--open-loop",
            "--url",
            "http://127.0.0.1:1",
            "--rate",
            "20",
            "--duration",
            "0.1",
            "--report",
            str(tmp_path),
        )
    assert json.loads((tmp_path / "bench.json").read_text())["errors"] == 2


@pytest.mark.django_db
def test_a_closed_loop_whose_every_request_failed_exits_non_zero(products, tmp_path):
    with (
        serve(lambda request: Reply(500, {"error": "broken"})) as (base_url, _),
        pytest.raises(CommandError, match=r"select_related off \(HTTP 500: 2\)"),
    ):
        bench(
            "--http",
            "select_related",
            "--url",
            base_url,
            "--requests",
            "2",
            "--clients",
            "1",
            "--report",
            str(tmp_path),
        )
    assert (tmp_path / "bench.html").exists()


def test_a_side_counts_as_failed_only_when_none_of_its_requests_got_an_answer():
    def side(**errors):
        result = HttpSide(times_ms=[1.0] * 4)
        result.errors.update(errors)
        return result

    pair = HttpPair("x", "X", "GET /x", 1, side(timeout=4), side(timeout=3))
    assert http.failed_sides([pair]) == ["x off (timeout: 4)"]
    pair = HttpPair("x", "X", "GET /x", 1, side(timeout=1), side())
    assert http.failed_sides([pair]) == []
