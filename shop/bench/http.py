"""A scenario's request over real HTTP, off and on, from N concurrent clients (closed loop).

The in-process pairs (`shop.bench.alternation`) time one request at a time through the test
client. Here the same request goes to gunicorn over a socket, from `clients` threads that each
send it again as soon as their previous answer is in: what the technique does to latency and
throughput once workers compete for the CPU and the database. The toggle travels in the
`X-Perf-Toggles` header, as in-process. Sides alternate off, on, on, off, each after an
unrecorded warm-up, so a drift of the machine (another process, a warming cache) falls on both.

Every request sent counts, answered or not. One that times out (or gets no answer at all) is
recorded at the time it took, its timeout or more, next to the answered ones: left out, a
stall would vanish from p99 and max, the very figures meant to show it. Before a side is
timed, its answer is fetched once and the two are compared (shop.bench.http_answers).

Scenarios that write are refused: over HTTP their transaction commits, so the runs would not
start from the same data, and the bench would leave the database changed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import urllib3

from shop import toggles
from shop.bench.answers import compare
from shop.bench.discovery import Suite
from shop.bench.http_answers import NoAnswer, fetch
from shop.bench.http_request import send
from shop.bench.measure import BenchError, Prepared, Requester, per_request
from shop.bench.metrics import SETTLE_S
from shop.bench.open_loop import TIMEOUT, error_kind, require_loopback
from shop.bench.samples import Sample, error_text, percentile
from shop.bench.scenario import Scenario
from shop.perf_headers import TOGGLE_HEADER

DEFAULT_CLIENTS = 4
DEFAULT_REQUESTS = 200  # recorded per side, split over its two blocks
MAX_CLIENTS = 64
MAX_REQUESTS = 20_000
TIMEOUT_S = 30.0
ORDER = (False, True, True, False)  # off, on, on, off


@dataclass
class HttpSide:
    """The recorded requests of one side: latency from send to the end of the body, or to
    the moment the client gave up on it (a timeout, a reset): every request sent is in it."""

    times_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "timeout", "HTTP 500", ...
    wall_s: float = 0.0  # how long its blocks took, clients all busy
    # The server's own count (`X-DB-Queries: default=3, replica=0`) on the last answer: shows
    # that the toggle reached it. Absent where settings.PERF_COST_HEADERS is off.
    db_queries: str | None = None
    # Sessions PostgreSQL counted opened during its recorded blocks (pg_stat_database, every
    # server the aliases point at): what CONN_MAX_AGE or a pool changes.
    connections_opened: int = 0

    @property
    def count(self) -> int:
        return len(self.times_ms)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def timeouts(self) -> int:
        return self.errors[TIMEOUT]

    @property
    def rate(self) -> float:
        """Requests answered without error, per second."""
        return (self.count - self.error_count) / self.wall_s if self.wall_s else 0.0

    def percentiles(self) -> dict[str, float | None]:
        times = self.times_ms
        return {
            "p50_ms": percentile(times, 0.50) if times else None,
            "p90_ms": percentile(times, 0.90) if times else None,
            "p99_ms": percentile(times, 0.99) if times else None,
            "max_ms": max(times) if times else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "errors": dict(self.errors),
            "timeouts": self.timeouts,
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            **self.percentiles(),
            "rate_per_s": self.rate,
            "db_queries": self.db_queries,
            "connections_opened": self.connections_opened,
        }


@dataclass
class HttpPair:
    name: str
    title: str
    request: str  # "GET /api/products/?page_size=50"
    clients: int
    off: HttpSide
    on: HttpSide
    # Each side's answer, fetched once before it was timed, compared as in-process.
    same_answer: bool | None = None  # None: a side got no answer to compare
    difference: str = ""
    # More arms, by label, each a server of its own (shop.bench.http_servers: persistent
    # connections and PgBouncer next to connection_pooling's off and on).
    arms: dict[str, HttpSide] = field(default_factory=dict)
    # The arms that could not run here, by label, and why (no PgBouncer): a page says so.
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "request": self.request,
            "clients": self.clients,
            "same_answer": self.same_answer,
            "difference": self.difference,
            "off": self.off.as_dict(),
            "on": self.on.as_dict(),
            **(
                {"arms": {label: side.as_dict() for label, side in self.arms.items()}}
                if self.arms
                else {}
            ),
            **({"skipped_arms": dict(self.skipped)} if self.skipped else {}),
        }


def _flags(scenario: Scenario, enabled: bool) -> dict[str, bool]:
    return per_request(scenario.flags(enabled))


def _block(
    url: str,
    prepared: Prepared,
    headers: dict[str, str],
    *,
    clients: int,
    count: int,
    into: HttpSide,
    timeout_s: float,
) -> None:
    """`count` requests from `clients` threads, each sending its next one once answered."""
    lock = threading.Lock()
    left = [count]
    # One pool shared by the threads (see shop.bench.open_loop); no retries: an error counts.
    pool = urllib3.PoolManager(maxsize=clients, retries=False)

    def client() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            started = time.perf_counter()
            response, error = None, None
            try:
                response = send(pool, url, prepared, headers, timeout_s=timeout_s)
            except urllib3.exceptions.HTTPError as exc:
                error = error_kind(exc)
            # Answered or not: a request given up on waited this long too, so it is timed.
            elapsed_ms = (time.perf_counter() - started) * 1000
            with lock:
                into.times_ms.append(elapsed_ms)
                if response is None:
                    into.errors[error] += 1
                    continue
                into.statuses[response.status] += 1
                into.db_queries = response.headers.get("X-DB-Queries")
                if response.status >= 400:
                    into.errors[f"HTTP {response.status}"] += 1

    threads = [threading.Thread(target=client, name=f"http-client-{i}") for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    into.wall_s += time.perf_counter() - started
    pool.clear()


def _answer(
    url: str, prepared: Prepared, headers: dict[str, str], scenario: Scenario, timeout_s: float
) -> Sample | str:
    """The side's answer, or why there is none."""
    pool = urllib3.PoolManager(maxsize=1, retries=False)
    try:
        return fetch(pool, url, prepared, headers, answer=scenario.answer, timeout_s=timeout_s)
    except NoAnswer as exc:
        return f"no answer: {exc}"
    except Exception as exc:  # the scenario's answer callable failed on this response
        return error_text(exc)
    finally:
        pool.clear()


def _compared(answers: dict[bool, Sample | str]) -> tuple[bool | None, str]:
    off, on = answers[False], answers[True]
    if isinstance(off, Sample) and isinstance(on, Sample):
        return compare(off, on)
    problems = [
        f"{label}: {answer}"
        for label, answer in (("off", off), ("on", on))
        if not isinstance(answer, Sample)
    ]
    return None, "not compared, " + "; ".join(problems)


def check_load(clients: int, requests_per_side: int) -> None:
    """The bounds of --clients and --requests, checked before gunicorn starts."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise BenchError(f"--clients is between 1 and {MAX_CLIENTS}")
    if not 2 <= requests_per_side <= MAX_REQUESTS:
        raise BenchError(f"--requests is between 2 and {MAX_REQUESTS}")


def failed_sides(pairs: list[HttpPair]) -> list[str]:
    """The sides none of whose requests got an answer without error: `select_related off
    (NewConnectionError: 100)`. Their figures time failures, not the technique."""
    return [
        f"{pair.name} {label} ({', '.join(f'{k}: {n}' for k, n in sorted(side.errors.items()))})"
        for pair in pairs
        for label, side in (("off", pair.off), ("on", pair.on))
        if side.count and side.error_count == side.count
    ]


def run_suite(
    base_url: str,
    suite: Suite,
    *,
    clients: int,
    requests_per_side: int,
    timeout_s: float = TIMEOUT_S,
    out=print,
) -> list[HttpPair]:
    """Each of the suite's scenarios over HTTP, off and on. Its before()/after() hooks run as
    in-process (db_indexes creates or drops its indexes), after() always."""
    require_loopback(base_url)
    check_load(clients, requests_per_side)
    pairs = []
    requester = Requester(settle_s=SETTLE_S)
    # Its readers, and the clock its first reading waits from, start before any request.
    sessions = requester.sessions
    try:
        for scenario in suite.scenarios:
            if scenario.writes or scenario.commits:
                out(
                    f"skipped {scenario.name} ({scenario.title}): it writes, and over HTTP its "
                    "transaction commits"
                )
                continue
            if scenario.call is None:
                out(f"skipped {scenario.name} ({scenario.title}): it is no request")
                continue
            if scenario.prepare is not None:
                scenario.prepare()
            prepared = Prepared.of(scenario.call(), requester)
            url = base_url + prepared.path
            base_headers = dict(prepared.headers)
            if prepared.body:
                base_headers["Content-Type"] = prepared.content_type
            sides = {False: HttpSide(), True: HttpSide()}
            answers: dict[bool, Sample | str] = {}
            half = requests_per_side // 2
            state: bool | None = None
            for index, enabled in enumerate(ORDER):
                if suite.before is not None and enabled != state:
                    suite.before(enabled)
                state = enabled
                headers = {
                    **base_headers,
                    TOGGLE_HEADER: toggles.format_flags(_flags(scenario, enabled)),
                }
                if enabled not in answers:  # the side's first block: its answer, untimed
                    answers[enabled] = _answer(url, prepared, headers, scenario, timeout_s)
                warm = HttpSide()
                block = {"clients": clients, "timeout_s": timeout_s}
                _block(url, prepared, headers, count=2 * clients, into=warm, **block)
                count = half if index < 2 else requests_per_side - half
                opened = sessions.read()
                _block(url, prepared, headers, count=count, into=sides[enabled], **block)
                sides[enabled].connections_opened += sessions.read() - opened
            same, difference = _compared(answers)
            pairs.append(
                HttpPair(
                    scenario.name,
                    scenario.title,
                    str(prepared),
                    clients,
                    *sides.values(),
                    same_answer=same,
                    difference=difference,
                )
            )
    finally:
        requester.close()
        if suite.after is not None:
            suite.after()
    return pairs


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _answer_cell(pair: HttpPair) -> str:
    return {True: "yes", False: "DIFFERENT", None: "not compared"}[pair.same_answer]


def table(pairs: list[HttpPair]) -> list[str]:
    """The terminal's and the Markdown report's table, then where answers differ. Latencies
    include every request, timed-out ones at the time they took."""
    head = (
        "| scenario | request | clients | side | requests | errors | timeouts | p50 ms "
        "| p90 ms | p99 ms | max ms | req/s | queries | connections opened | same answer |"
    )
    lines = [
        head,
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| --- | ---: | --- |",
    ]
    for pair in pairs:
        for label, side in (("off", pair.off), ("on", pair.on), *pair.arms.items()):
            p = side.percentiles()
            lines.append(
                f"| {pair.name} | {pair.request} | {pair.clients} | {label} | {side.count} "
                f"| {side.error_count} | {side.timeouts} | {_ms(p['p50_ms'])} "
                f"| {_ms(p['p90_ms'])} | {_ms(p['p99_ms'])} | {_ms(p['max_ms'])} "
                f"| {side.rate:.1f} | {side.db_queries or '-'} | {side.connections_opened} "
                f"| {_answer_cell(pair)} |"
            )
    notes = [
        f"- {pair.name} ({pair.request}): answers differ, {pair.difference}"
        if pair.same_answer is False
        else f"- {pair.name} ({pair.request}): {pair.difference}"
        for pair in pairs
        if pair.difference
    ]
    return lines + ([""] + notes if notes else [])
