"""The closed loop over HTTP against a tiny real server on loopback (tests/http_stub.py): a
request the client gives up on still counts in the latencies, errors and timeouts are reported
per side, and each side's answer is fetched before it is timed and compared as in-process.
No timing is asserted, except that a stall past the timeout must show."""

import json

from shop.bench import http, open_loop
from shop.bench.discovery import Suite
from shop.bench.scenario import Call, Scenario
from tests.http_stub import Reply, Request, serve

TIMEOUT_S = 0.3
# Past the timeout (the client gives up on it), and the request behind it in the one server
# thread then waits 0.2 s: under the timeout.
STALL_S = 0.5
REQUESTS = 20  # per side; with 20, p99 (nearest rank) is the slowest


def _suite(**scenario) -> Suite:
    # Named after a real toggle: the pair sends `X-Perf-Toggles: select_related=off|on`.
    options = {"title": "stub", "call": lambda: Call("GET", "/x"), **scenario}
    return Suite(name="select_related", scenarios=[Scenario(name="select_related", **options)])


def _side(request: Request) -> str:
    return request.headers.get("X-Perf-Toggles", "").removeprefix("select_related=")


def _run(reply, **scenario) -> tuple[http.HttpPair, list[Request]]:
    with serve(reply) as (url, received):
        (pair,) = http.run_suite(
            url,
            _suite(**scenario),
            clients=1,
            requests_per_side=REQUESTS,
            timeout_s=TIMEOUT_S,
            out=lambda line: None,
        )
    return pair, received


def test_a_request_that_times_out_counts_in_p99_and_max_at_the_time_it_took():
    """One client, one server thread: the off side's 5th timed request stalls past the
    timeout. Left out of the latencies, the slowest request would be the next one, which waits
    only for the rest of the stall (under the timeout), and the stall would not show."""
    off_seen = []

    def reply(request: Request) -> Reply:
        if _side(request) != "off":
            return Reply()
        off_seen.append(request.index)
        # The off side's first block: its answer, 2 warm-ups, then its timed requests.
        return Reply(stall_s=STALL_S if len(off_seen) == 1 + 2 + 5 else 0.0)

    pair, _ = _run(reply)
    off = pair.off.as_dict()
    assert off["max_ms"] >= TIMEOUT_S * 1000
    assert off["p99_ms"] >= TIMEOUT_S * 1000
    assert off["requests"] == REQUESTS  # every request sent, the timed-out one too
    assert off["timeouts"] == 1 and off["errors"] == {open_loop.TIMEOUT: 1}
    assert off["statuses"] == {"200": REQUESTS - 1}
    assert pair.on.as_dict()["errors"] == {} and pair.on.timeouts == 0
    assert "| select_related | GET /x | 1 | off | 20 | 1 | 1 |" in "\n".join(http.table([pair]))


def test_error_answers_are_timed_and_reported_per_side():
    pair, _ = _run(lambda request: Reply(status=503 if _side(request) == "on" else 200))
    assert pair.on.errors == {"HTTP 503": pair.on.count} and pair.on.count == REQUESTS
    assert pair.on.rate == 0  # nothing answered without error
    assert pair.off.errors == {} and pair.off.rate > 0


def test_each_side_s_answer_is_fetched_before_it_is_timed():
    """Off's first block starts with its answer request, on's first block likewise: 2 more
    requests than the timed ones and the warm-ups (2 per block with one client)."""
    pair, received = _run(lambda request: Reply())
    assert len(received) == 2 * REQUESTS + 4 * 2 + 2
    assert [_side(r) for r in received[:3]] == ["off"] * 3
    assert pair.same_answer is True and pair.difference == ""


def test_sides_that_answer_differently_are_reported_as_different():
    pair, _ = _run(lambda request: Reply(body={"items": [1, 2], "side": _side(request)}))
    assert pair.same_answer is False
    assert pair.difference == "answer.side, from offset 1: 'ff' off, 'n' on"
    data = pair.as_dict()
    assert data["same_answer"] is False and data["difference"] == pair.difference
    lines = http.table([pair])
    assert lines[2].endswith("| DIFFERENT |")
    assert lines[-1] == f"- select_related (GET /x): answers differ, {pair.difference}"
    json.dumps(data)  # the report's JSON


def test_a_different_status_is_a_different_answer():
    pair, _ = _run(lambda request: Reply(status=404 if _side(request) == "on" else 200))
    assert pair.same_answer is False and pair.difference == "status 200 off, 404 on"


def test_the_scenario_s_answer_callable_gets_an_http_response_built_from_the_reply():
    """The callable is the in-process one: a Django HttpResponse, headers and body included.
    Here it keeps only `items`, so a `side` that differs is not part of the answer."""
    seen = []

    def answer(response):
        seen.append((response.status_code, response["Content-Type"]))
        return json.loads(response.content)["items"]

    pair, _ = _run(
        lambda request: Reply(body={"items": [1, 2], "side": _side(request)}), answer=answer
    )
    assert pair.same_answer is True
    assert seen == [(200, "application/json")] * 2


def test_a_side_without_an_answer_is_not_compared_and_says_why():
    def reply(request: Request) -> Reply:
        return Reply(stall_s=STALL_S if request.index == 0 else 0.0)  # off's answer request

    pair, _ = _run(reply)
    assert pair.same_answer is None
    assert pair.difference == "not compared, off: no answer: timeout"


def test_the_open_loop_counts_a_timed_out_request_at_the_time_it_took():
    """As the closed loop: a request given up on is an error, and its latency is in the
    percentiles, from when it was due to when the client gave up."""

    def reply(request: Request) -> Reply:
        return Reply(stall_s=STALL_S if request.index == 3 else 0.0)

    with serve(reply, threaded=True) as (url, _):
        result = open_loop.run(
            url + "/x", rate=50, duration_s=0.4, in_flight=4, warmup_s=0, timeout_s=TIMEOUT_S
        )
    assert result.sent == 20
    assert result.error_kinds == {open_loop.TIMEOUT: 1}
    assert result.outcomes[3].error == open_loop.TIMEOUT
    assert result.outcomes[3].latency_s >= TIMEOUT_S
    assert result.max_ms >= TIMEOUT_S * 1000 and result.p99_ms >= TIMEOUT_S * 1000
