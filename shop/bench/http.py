"""A scenario's request over real HTTP, off and on, from N concurrent clients (closed loop).

The in-process pairs (`shop.bench.alternation`) time one request at a time through the test
client. Here the same request goes to gunicorn over a socket, from `clients` threads that each
send it again as soon as their previous answer is in: what the technique does to latency and
throughput once workers compete for the CPU and the database. The toggle travels in the
`X-Perf-Toggles` header, as in-process. Sides alternate off, on, on, off, each after an
unrecorded warm-up, so a drift of the machine (another process, a warming cache) falls on both.

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
from shop.bench.discovery import Suite
from shop.bench.measure import BenchError, Prepared, Requester, per_request
from shop.bench.open_loop import require_loopback
from shop.bench.results import percentile
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
    """The recorded requests of one side: latency from send to the end of the body."""

    times_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0  # how long its blocks took, clients all busy
    # The server's own count (`X-DB-Queries: default=3, replica=0`) on the last answer: shows
    # that the toggle reached it. Absent where settings.PERF_COST_HEADERS is off.
    db_queries: str | None = None

    @property
    def count(self) -> int:
        return len(self.times_ms)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        return self.count / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "errors": dict(self.errors),
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "p50_ms": percentile(self.times_ms, 0.50) if self.times_ms else None,
            "p95_ms": percentile(self.times_ms, 0.95) if self.times_ms else None,
            "rate_per_s": self.rate,
            "db_queries": self.db_queries,
        }


@dataclass
class HttpPair:
    name: str
    title: str
    request: str  # "GET /api/products/?page_size=50"
    clients: int
    off: HttpSide
    on: HttpSide

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "request": self.request,
            "clients": self.clients,
            "off": self.off.as_dict(),
            "on": self.on.as_dict(),
        }


def _flags(scenario: Scenario, enabled: bool) -> dict[str, bool]:
    return per_request({**scenario.hold, scenario.name: enabled})


def _block(
    url: str, prepared: Prepared, headers: dict[str, str], *, clients: int, count: int, into
) -> None:
    """`count` requests from `clients` threads, each sending its next one once answered."""
    lock = threading.Lock()
    left = [count]
    # One pool shared by the threads (see shop.bench.open_loop); no retries: an error counts.
    pool = urllib3.PoolManager(maxsize=clients, retries=False)
    timeout = urllib3.Timeout(total=TIMEOUT_S)

    def client() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            started = time.perf_counter()
            try:
                # The whole body is read (preload_content): it is part of the request's time.
                response = pool.request(
                    prepared.method,
                    url,
                    body=prepared.body or None,
                    headers=headers,
                    timeout=timeout,
                )
            except urllib3.exceptions.HTTPError as exc:
                with lock:
                    into.errors[type(exc).__name__] += 1
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            with lock:
                into.times_ms.append(elapsed_ms)
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


def run_suite(
    base_url: str, suite: Suite, *, clients: int, requests_per_side: int, out=print
) -> list[HttpPair]:
    """Each of the suite's scenarios over HTTP, off and on. Its before()/after() hooks run as
    in-process (db_indexes creates or drops its indexes), after() always."""
    require_loopback(base_url)
    if not 1 <= clients <= MAX_CLIENTS:
        raise BenchError(f"--clients is between 1 and {MAX_CLIENTS}")
    if not 2 <= requests_per_side <= MAX_REQUESTS:
        raise BenchError(f"--requests is between 2 and {MAX_REQUESTS}")
    pairs = []
    requester = Requester()
    try:
        for scenario in suite.scenarios:
            if scenario.writes or scenario.commits:
                out(
                    f"skipped {scenario.name} ({scenario.title}): it writes, and over HTTP its "
                    "transaction commits"
                )
                continue
            if scenario.prepare is not None:
                scenario.prepare()
            prepared = Prepared.of(scenario.call(), requester)
            url = base_url + prepared.path
            base_headers = dict(prepared.headers)
            if prepared.body:
                base_headers["Content-Type"] = prepared.content_type
            sides = {False: HttpSide(), True: HttpSide()}
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
                warm = HttpSide()
                _block(url, prepared, headers, clients=clients, count=2 * clients, into=warm)
                count = half if index < 2 else requests_per_side - half
                _block(url, prepared, headers, clients=clients, count=count, into=sides[enabled])
            pairs.append(
                HttpPair(scenario.name, scenario.title, str(prepared), clients, *sides.values())
            )
    finally:
        requester.close()
        if suite.after is not None:
            suite.after()
    return pairs


def table(pairs: list[HttpPair]) -> list[str]:
    """The terminal's and the Markdown report's table."""
    head = (
        "| scenario | request | clients | side | requests | errors | p50 ms | p95 ms | req/s "
        "| queries |"
    )
    lines = [head, "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for pair in pairs:
        for label, side in (("off", pair.off), ("on", pair.on)):
            data = side.as_dict()
            p50 = f"{data['p50_ms']:.2f}" if side.times_ms else "-"
            p95 = f"{data['p95_ms']:.2f}" if side.times_ms else "-"
            lines.append(
                f"| {pair.name} | {pair.request} | {pair.clients} | {label} | {side.count} "
                f"| {side.error_count} | {p50} | {p95} | {side.rate:.1f} | {side.db_queries or '-'} |"
            )
    return lines
