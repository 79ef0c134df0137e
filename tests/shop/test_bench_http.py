"""The bench over real HTTP: the open-loop schedule, latency from the intended send time (a
tiny real server on loopback that stalls one answer), error counting, the loopback-only rule,
and short real runs against the Procfile's gunicorn. No timing is asserted, only where a
deliberate half-second stall must show."""

import contextlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from shop.bench import discovery, http, http_docs, open_loop, server
from shop.bench.measure import BenchError
from shop.techniques import db_indexes
from tests.http_stub import Reply, Request, serve

STALL_S = 0.5


@contextlib.contextmanager
def fake_server(*, stall_at: int | None = None, fail_every: int | None = None):
    """Request `stall_at` (0-based) is answered after STALL_S, and the requests behind it wait
    (one server thread); every `fail_every`-th answers 500. Yields (url, the requests served)."""

    def reply(request: Request) -> Reply:
        failing = fail_every is not None and (request.index + 1) % fail_every == 0
        stall = STALL_S if request.index == stall_at else 0.0
        return Reply(500 if failing else 200, {"ok": not failing}, stall)

    with serve(reply) as (base_url, received):
        yield f"{base_url}/x", received


def test_request_i_is_due_at_i_over_rate():
    assert open_loop.schedule(4, 1) == [0, 0.25, 0.5, 0.75]
    due = open_loop.schedule(200, 10)
    assert len(due) == 2000
    assert due[1] == 0.005 and due[-1] == 1999 / 200


@pytest.mark.parametrize(
    "rate, duration", [(0, 10), (200, 0), (open_loop.MAX_RATE + 1, 1), (200, 301)]
)
def test_a_schedule_is_bounded(rate, duration):
    with pytest.raises(BenchError):
        open_loop.schedule(rate, duration)


def test_each_request_is_sent_when_due_and_all_are_answered():
    with fake_server() as (url, served):
        result = open_loop.run(url, rate=100, duration_s=0.2, warmup_s=0)
    assert len(served) == result.sent == 20
    assert [o.due_s for o in result.outcomes] == open_loop.schedule(100, 0.2)
    assert all(o.sent_s >= o.due_s for o in result.outcomes)
    assert result.errors == 0 and result.error_kinds == {}


def test_a_stall_shows_in_the_latency_of_the_requests_queued_behind_it():
    """One client thread, so every request after the stalled one leaves late: timed from when
    it actually left, each would look fast and the stall would count once. Timed from when it
    was due, the stall shows in all of those that waited for it."""
    with fake_server(stall_at=2) as (url, _):
        result = open_loop.run(url, rate=50, duration_s=0.4, in_flight=1, warmup_s=0)
    assert result.sent == 20 and result.errors == 0
    stalled, behind = result.outcomes[2], result.outcomes[3]
    assert stalled.latency_s >= STALL_S
    # Due at 60 ms, sent once the stall ended (at 540 ms or later): it waited about 0.48 s.
    assert behind.sent_s - behind.due_s >= STALL_S - 0.1
    assert behind.latency_s >= STALL_S - 0.1
    assert sum(o.latency_s >= STALL_S - 0.1 for o in result.outcomes) >= 3
    assert result.p90_ms >= (STALL_S - 0.1) * 1000
    assert result.max_ms >= STALL_S * 1000


def test_with_threads_to_spare_a_stall_does_not_delay_the_next_sends():
    """Enough client threads: the requests after the stalled one leave on time and wait in the
    server's queue instead, and their wait still shows."""
    with fake_server(stall_at=2) as (url, _):
        result = open_loop.run(url, rate=50, duration_s=0.4, in_flight=32, warmup_s=0)
    assert result.sent == 20 and result.errors == 0
    behind = result.outcomes[3]
    assert behind.sent_s - behind.due_s < STALL_S / 2  # not held back by the stalled request
    assert behind.latency_s >= STALL_S - 0.1
    assert result.p90_ms >= (STALL_S - 0.1) * 1000


def test_error_answers_are_counted_and_not_in_the_achieved_rate():
    with fake_server(fail_every=4) as (url, _):
        result = open_loop.run(url, rate=100, duration_s=0.2, warmup_s=0)
    assert result.sent == 20
    assert result.errors == 5
    assert result.error_kinds == {"HTTP 500": 5}
    assert result.achieved_rate <= 15 / 0.2


def test_a_refused_connection_is_an_error():
    with fake_server() as (url, _):
        pass  # the port is closed again
    result = open_loop.run(url, rate=100, duration_s=0.05, warmup_s=0)
    assert result.sent == 5 and result.errors == 5
    assert result.error_kinds == {"NewConnectionError": 5}
    assert result.achieved_rate == 0


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/", "http://127.0.0.2:1/", "http://[::1]:80/", "http://localhost/"],
)
def test_loopback_is_accepted(url):
    open_loop.require_loopback(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.1:8000/",
        "http://example.com/",
        "http://[2001:db8::1]/",
        "/x",
        # Loopback to the standard library's parser, example.com to urllib3's (the client's).
        "http://example.com\\@127.0.0.1/",
        "http://user@127.0.0.1/",
    ],
)
def test_anything_but_loopback_is_refused(url):
    with pytest.raises(BenchError, match="loopback"):
        open_loop.require_loopback(url)
    with pytest.raises(BenchError, match="loopback"):
        open_loop.run(url, rate=1, duration_s=1)
    with pytest.raises(BenchError, match="loopback"):
        http.run_suite(url, discovery.suite("select_related"), clients=1, requests_per_side=2)


@pytest.mark.django_db
def test_the_command_refuses_a_remote_url(tmp_path):
    with pytest.raises(CommandError, match="loopback"):
        call_command(
            "bench",
            "--open-loop",
            "--url",
            "http://192.0.2.1:8000",
            "--report",
            str(tmp_path),
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert not (tmp_path / "bench.json").exists()


@pytest.fixture
def live_env(monkeypatch):
    """gunicorn, started by the bench, serves this test's database (committed rows)."""
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATABASE_REPLICA_URL", url)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.loadtest")
    # A connection per request, so PostgreSQL counts one session per request; the pool's own
    # figures are connection_pooling's (tests/techniques/test_connection_pooling.py).
    monkeypatch.setenv("PERF_TOGGLES", "connection_pooling=off")
    monkeypatch.setenv("WEB_WORKERS", "2")
    monkeypatch.delenv("PYTEST_VERSION", raising=False)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_open_loop_against_gunicorn_on_the_ping_endpoint(live_env, tmp_path):
    db_indexes.drop_all()  # what a pairs run killed in its off block leaves behind
    out, err = StringIO(), StringIO()
    call_command(
        "bench",
        "--open-loop",
        "--rate",
        "50",
        "--duration",
        "1",
        "--report",
        str(tmp_path),
        stdout=out,
        stderr=err,
    )
    # As the pairs do, the HTTP modes put back what a killed run left first.
    assert db_indexes.in_effect() and "restored at start-up: db_indexes" in err.getvalue()
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["mode"] == "open-loop" and report["target"] == "/api/perf/ping/"
    assert report["sent"] == 50
    assert report["errors"] == 0 and report["error_kinds"] == {}
    assert report["url"].startswith("http://127.0.0.1:")
    assert report["machine"]["cpu_count"] >= 1
    # What was given, defaults left out: the command a docs block names (shop/bench/http_docs.py).
    assert report["arguments"] == {"names": [], "rate": 50.0, "duration": 1.0}
    assert http_docs.command("open_loop", report) == (
        "DJANGO_SETTINGS_MODULE=config.settings.loadtest .venv/bin/python manage.py bench "
        "--open-loop --rate 50 --duration 1 --json docs/figures/http/open_loop.json"
    )
    assert set(report["dataset"]) == {"size", "rows"} and "products" in report["dataset"]["rows"]
    assert "achieved" in out.getvalue() and "p99" in out.getvalue()
    assert "p99" in (tmp_path / "bench.md").read_text()
    assert "achieved: " in (tmp_path / "bench.html").read_text()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_closed_loop_over_http_sends_the_toggle_to_gunicorn(live_env, products, tmp_path):
    """select_related off and on over HTTP: every request answered, and gunicorn's own query
    count differs between the sides, so the X-Perf-Toggles header reached it."""
    call_command(
        "bench",
        "--http",
        "--clients",
        "3",
        "--requests",
        "12",
        "select_related",
        "--report",
        str(tmp_path),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["arguments"] == {"names": ["select_related"], "clients": 3, "requests": 12}
    assert "--http select_related --clients 3 --requests 12 --json" in http_docs.command(
        "select_related", report
    )
    (pair,) = report["pairs"]
    assert pair["request"] == "GET /api/products/?page_size=50"
    for side in ("off", "on"):
        assert pair[side]["requests"] == 12
        assert pair[side]["errors"] == {}
        assert pair[side]["statuses"] == {"200": 12}
        # CONN_MAX_AGE=0 and no pool: PostgreSQL saw one new session per request.
        assert pair[side]["connections_opened"] == 12
    assert pair["off"]["db_queries"] != pair["on"]["db_queries"]
    assert pair["same_answer"] is True and pair["difference"] == ""
    page = (tmp_path / "bench.html").read_text()
    assert "same answer ✓" in page and pair["on"]["db_queries"] in page


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_is_stopped_on_an_error(live_env):
    """Whatever ends the run, the server goes too: nothing answers on its port afterwards."""
    with pytest.raises(RuntimeError), server.gunicorn() as url:
        process_url = url
        raise RuntimeError("a failing run")
    result = open_loop.run(process_url + "/api/perf/ping/", rate=20, duration_s=0.1, warmup_s=0)
    assert result.errors == result.sent == 2  # nobody listens any more


@pytest.mark.parametrize("in_flight", [0, open_loop.MAX_IN_FLIGHT + 1])
def test_in_flight_is_bounded(in_flight):
    """A thread each: the bound is checked before gunicorn starts."""
    with pytest.raises(BenchError, match="--in-flight"):
        open_loop.check_in_flight(in_flight)


def test_a_rate_below_one_a_second_still_warms_up_and_runs():
    with fake_server() as (url, _):
        result = open_loop.run(url, rate=4, duration_s=0.5, warmup_s=0.1)
    assert result.sent == 2 and result.errors == 0


@pytest.mark.parametrize("flag", [["--size", "small"], ["--strict"], ["--sweep", "select_related"]])
def test_the_pairs_options_are_refused_over_http(flag, tmp_path):
    with pytest.raises(CommandError, match="not for --http or --open-loop"):
        call_command(
            "bench",
            "--open-loop",
            *flag,
            "--report",
            str(tmp_path),
            stdout=StringIO(),
            stderr=StringIO(),
        )
