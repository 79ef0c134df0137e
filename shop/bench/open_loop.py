"""Latency under load: send on a fixed schedule, time each request from when it was due.

A closed-loop client (send, wait for the answer, send the next) slows down with the server:
while one response stalls, the requests that would have been sent meanwhile are not sent at
all, so the stall is timed once instead of once per request a real user would have queued
behind it. That is coordinated omission. Here request i is due at `t0 + i / rate`, whatever
happened to the ones before it: a dispatcher hands it to a pool of threads at that moment, and
its latency runs from that intended time to the end of its response. A request that had to
wait for a free thread, or sat in the server's queue, carries the wait in its latency.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import urllib3

from shop.bench.measure import BenchError
from shop.bench.samples import percentile
from shop.loopback import is_loopback_url

MAX_RATE = 2000  # requests per second
MAX_DURATION_S = 300.0
MAX_REQUESTS = 100_000
DEFAULT_IN_FLIGHT = 64  # threads: at 200/s and 5 ms a request, about one is busy
MAX_IN_FLIGHT = 256  # a thread each: more only adds threads competing for 2 cores
TIMEOUT_S = 10.0  # a request that takes longer is an error (its latency is still recorded)
TIMEOUT = "timeout"  # the error kind of a request given up on after its timeout
LEAD_S = 0.05  # t0 is this far ahead, so request 0 is not late before the loop starts
# Unrecorded, at the same rate, first: gunicorn's freshly forked workers import the views and
# open their database connections on their first requests, and the client starts its threads.
WARMUP_S = 1.0


def require_loopback(url: str) -> None:
    """The bench loads only this machine: refuse any other host (shop/loopback.py)."""
    if not is_loopback_url(url):
        raise BenchError(
            f"refusing to load {url}: the bench sends load to loopback only "
            "(127.0.0.1, ::1 or localhost, without user info)"
        )


def error_kind(exc: urllib3.exceptions.HTTPError) -> str:
    """How a request without an answer counts: `timeout`, or the exception's name
    (NewConnectionError: refused; ProtocolError: reset)."""
    # NewConnectionError subclasses ConnectTimeoutError (urllib3 keeps it for compatibility),
    # yet a refused connection did not time out.
    refused = isinstance(exc, urllib3.exceptions.NewConnectionError)
    if isinstance(exc, urllib3.exceptions.TimeoutError) and not refused:
        return TIMEOUT
    return type(exc).__name__


def check_in_flight(in_flight: int) -> None:
    if not 1 <= in_flight <= MAX_IN_FLIGHT:
        raise BenchError(f"--in-flight must be between 1 and {MAX_IN_FLIGHT}")


def schedule(rate: float, duration_s: float) -> list[float]:
    """When each request is due, in seconds after t0: request i at i / rate."""
    # nan compares false with everything, so it would pass the bounds below and fail in round().
    if not (math.isfinite(rate) and math.isfinite(duration_s)):
        raise BenchError("--rate and --duration must be finite numbers")
    if rate <= 0 or duration_s <= 0:
        raise BenchError("--rate and --duration must be positive")
    if rate > MAX_RATE or duration_s > MAX_DURATION_S:
        raise BenchError(
            f"--rate is at most {MAX_RATE}/s and --duration at most {MAX_DURATION_S:g} s"
        )
    count = round(rate * duration_s)
    if not 0 < count <= MAX_REQUESTS:
        raise BenchError(f"{count} requests: a run sends between 1 and {MAX_REQUESTS}")
    return [i / rate for i in range(count)]


@dataclass(frozen=True)
class Outcome:
    """One request: when it was due, when it was sent and when it ended, in seconds after t0."""

    due_s: float
    sent_s: float
    done_s: float
    status: int | None  # None: no response (refused, reset, timed out)
    error: str | None  # why it counts as an error, else None

    @property
    def latency_s(self) -> float:
        """From the intended send time: what a user arriving on schedule waited."""
        return self.done_s - self.due_s


@dataclass
class Result:
    url: str
    rate: float  # asked for
    duration_s: float
    in_flight: int
    sent: int
    errors: int
    error_kinds: dict[str, int]
    achieved_rate: float  # responses without error per second, over the whole run
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    max_send_lag_ms: float  # how late the latest request left (waiting for a free thread)
    outcomes: list[Outcome] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, outcomes: list[Outcome], *, url, rate, duration_s, in_flight) -> Result:
        latencies = [o.latency_s * 1000 for o in outcomes]
        kinds = Counter(o.error for o in outcomes if o.error)
        ok = len(outcomes) - sum(kinds.values())
        # The run lasts at least the schedule; longer when the last answers came late.
        elapsed = max(duration_s, max((o.done_s for o in outcomes), default=0.0))
        return cls(
            url=url,
            rate=rate,
            duration_s=duration_s,
            in_flight=in_flight,
            sent=len(outcomes),
            errors=sum(kinds.values()),
            error_kinds=dict(kinds),
            achieved_rate=ok / elapsed,
            p50_ms=percentile(latencies, 0.50),
            p90_ms=percentile(latencies, 0.90),
            p99_ms=percentile(latencies, 0.99),
            max_ms=max(latencies),
            max_send_lag_ms=max((o.sent_s - o.due_s) * 1000 for o in outcomes),
            outcomes=outcomes,
        )

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.error_kinds.items()))
        return [
            f"open loop: GET {self.url}, {self.rate:g}/s asked for {self.duration_s:g} s, "
            f"up to {self.in_flight} in flight",
            f"sent {self.sent}, errors {self.errors} ({self.errors / self.sent:.1%})"
            + (f" [{kinds}]" if kinds else ""),
            f"achieved {self.achieved_rate:.1f}/s of {self.rate:g}/s asked",
            "latency from the intended send time, errors and timeouts included (ms): "
            f"p50 {self.p50_ms:.2f}, p90 {self.p90_ms:.2f}, p99 {self.p99_ms:.2f}, "
            f"max {self.max_ms:.2f}",
            f"latest send: {self.max_send_lag_ms:.2f} ms after it was due",
        ]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("outcomes")
        return data


def run(
    url: str,
    *,
    rate: float,
    duration_s: float,
    headers: dict[str, str] | None = None,
    in_flight: int = DEFAULT_IN_FLIGHT,
    timeout_s: float = TIMEOUT_S,
    warmup_s: float = WARMUP_S,
    method: str = "GET",
    body: bytes | None = None,
) -> Result:
    """Send `method` `url` (with `body`) on the schedule, after an unrecorded warm-up at the
    same rate; every request is sent, and every one is waited for."""
    require_loopback(url)
    due = schedule(rate, duration_s)
    check_in_flight(in_flight)
    # One connection pool shared by the threads (urllib3's is thread-safe, and cheaper per
    # request than requests' Session on top of it: the client shares the CPU with the server).
    # No retries: a refused or reset request is an error, not a second, later attempt.
    client = urllib3.PoolManager(maxsize=in_flight, retries=False)
    timeout = urllib3.Timeout(total=timeout_s)

    def send(due_s: float, t0: float) -> Outcome:
        sent_s = time.perf_counter() - t0
        status, error = None, None
        try:
            response = client.request(method, url, body=body, headers=headers, timeout=timeout)
            status = response.status
            if status >= 400:
                error = f"HTTP {status}"
        except urllib3.exceptions.HTTPError as exc:
            error = error_kind(exc)
        # Answered or not, its latency counts: a timed-out request at its timeout or later.
        return Outcome(due_s, sent_s, time.perf_counter() - t0, status, error)

    pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="open-loop")
    try:
        if warmup_s > 0:
            # At least one request, however low the rate: a warm-up of none warms nothing.
            _drive(pool, send, schedule(rate, max(warmup_s, 1 / rate)))
        outcomes = _drive(pool, send, due)
    finally:
        # Ctrl-C: what is not sent yet never is; what is in flight ends within its timeout.
        pool.shutdown(wait=True, cancel_futures=True)
        client.clear()
    return Result.of(outcomes, url=url, rate=rate, duration_s=duration_s, in_flight=in_flight)


def _drive(
    pool: ThreadPoolExecutor, send: Callable[[float, float], Outcome], due: list[float]
) -> list[Outcome]:
    """Hand each request to the pool when it is due; then wait for all of them."""
    t0 = time.perf_counter() + LEAD_S
    futures = []
    for due_s in due:
        # Sleep until due, never until a response: submit() does not wait for a free thread.
        pause = t0 + due_s - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        futures.append(pool.submit(send, due_s, t0))
    return [future.result() for future in futures]
