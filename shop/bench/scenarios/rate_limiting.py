"""A client abusing one limit, with no limit (off) and with the Lua token bucket (on), next to
DRF's throttle and the four other algorithms (shop/rate_limiters.py) on the same Redis.

1. **Abuse** (`SCENARIO`): CLIENTS threads, each on a Redis connection of its own opened
   beforehand, released together by a barrier, each sending ATTEMPTS requests at one limit of
   LIMIT with no refill while it lasts (LIMIT an hour). Off admits every one; on, the token
   bucket admits exactly LIMIT. Beside them, on both sides (they do not depend on the toggle),
   DRF's throttle (`UserRateThrottle`'s read-then-write, at LIMIT/hour in the Django cache) and
   the four algorithms under the same race: how many each admits. DRF's overshoot (admitted -
   LIMIT) varies with the interleaving; each run reports its own.
2. **The window boundary** (`EXTRA_SCENARIOS[0]`): one client sends LIMIT requests late in a
   WINDOW_S window (on Redis's clock), then LIMIT more just after the boundary. A fixed window
   admits both bursts: 2x its limit within about half a second. The sliding log admits the
   first only; the sliding-window counter about that; the token bucket (LIMIT, refilled over
   WINDOW_S) the first plus what refilled meanwhile; the leaky bucket queues up to LIMIT and
   makes them wait their turn (its p50 delay is reported).
3. **The cost** (`EXTRA_SCENARIOS[1]` and `[2]`): one limiter call alone (one EVALSHA, no race),
   and the cheapest order request, one without items (a 400 from the view), through the full
   request path, where on adds that call before authentication. The
   bucket's capacity is raised for this pair so it never refuses. It writes (the bucket), so
   the HTTP modes skip it, as they skip every write.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable
from time import perf_counter

import redis
from django.conf import settings
from django.test import override_settings

from shop import rate_limiters
from shop.bench import holds
from shop.bench.samples import Sample
from shop.bench.scenario import Call, Scenario
from shop.bench.targets import Target
from shop.techniques import rate_limiting

CLIENTS = 20
ATTEMPTS = 10  # a client: 200 requests at a limit of 10
LIMIT = 10
NO_REFILL_S = 3600  # LIMIT an hour: nothing refills during a run of a second
WINDOW_S = 2  # the boundary scenario's window: LIMIT per 2 s
RUNS = 10
CUSTOMER = "user1"

ADMITTED = "admitted"
ATTEMPTED = "attempted"
LIMITER_P50_US = "limiter_p50_us"
DRF_OVERSHOOT = "drf_throttle_overshoot"
SPAN_MS = "span_ms"
LEAKY_DELAY_P50_MS = "leaky_bucket_delay_p50_ms"

_state: dict = {}


def _key(name: str) -> str:
    # Under the bench database's cache prefix, fresh for each run: no run sees another's state.
    return f"{settings.CACHES['default']['KEY_PREFIX']}:bench-ratelimit:{name}:{uuid.uuid4().hex}"


def _connection() -> redis.Redis:
    connection = redis.Redis.from_url(rate_limiting.redis_url(), single_connection_client=True)
    connection.ping()
    return connection


def _race(attempt: Callable[[redis.Redis], bool]) -> tuple[int, list[float]]:
    """CLIENTS threads, each with its own connection, released together, each calling
    attempt(connection) ATTEMPTS times: how many were admitted, and each call's seconds."""
    connections = [_connection() for _ in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS)
    admitted = [0] * CLIENTS
    took: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(ATTEMPTS):
                started = perf_counter()
                admitted[i] += attempt(connections[i])
                took[i].append(perf_counter() - started)
        except BaseException as exc:  # raised below, not lost in the thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for connection in connections:
            connection.close()
    if errors:
        raise errors[0]
    return sum(admitted), [seconds for per_client in took for seconds in per_client]


def _compared_under_race() -> dict[str, float]:
    """DRF's throttle and the four algorithms, each under the same race at a fresh key."""
    figures: dict[str, float] = {}
    drf_key = uuid.uuid4().hex
    drf, _ = _race(lambda _conn: rate_limiters.drf_allows(LIMIT, NO_REFILL_S, drf_key))
    figures["drf_throttle_admitted"] = drf
    figures[DRF_OVERSHOOT] = drf - LIMIT
    for algorithm in rate_limiters.ALGORITHMS:
        limiter = algorithm(limit=LIMIT, window_s=NO_REFILL_S)
        key = _key(algorithm.name)
        count, _ = _race(lambda conn, limiter=limiter, key=key: limiter.allow(conn, key).admitted)
        figures[f"{algorithm.name}_admitted"] = count
    return figures


def _abuse(enabled: bool) -> Sample:
    if enabled:
        limit = rate_limiting.Limit(
            "bench", capacity=LIMIT, per_second=LIMIT / NO_REFILL_S, fail_open=True, what="x"
        )
        identity = uuid.uuid4().hex
        admitted, took = _race(
            lambda conn: rate_limiting.take(limit, identity, connection=conn).admitted
        )
    else:
        admitted, took = _race(lambda _conn: rate_limiting._naive(None) is None)
    return Sample(
        ms=statistics.median(took) * 1000,
        queries={},
        bytes=0,
        status=200,
        answer={ATTEMPTED: CLIENTS * ATTEMPTS},
        metrics={
            ATTEMPTED: CLIENTS * ATTEMPTS,
            ADMITTED: admitted,
            LIMITER_P50_US: round(statistics.median(took) * 1e6, 1),
            **_compared_under_race(),
        },
    )


# --- the window boundary ---------------------------------------------------------------------


def _redis_ms(connection: redis.Redis) -> int:
    seconds, micros = connection.time()
    return seconds * 1000 + micros // 1000


def _wait_for_window_position(connection: redis.Redis, lo_ms: int, hi_ms: int) -> None:
    """Sleep until Redis's clock is between lo_ms and hi_ms into a WINDOW_S window."""
    window_ms = WINDOW_S * 1000
    while True:
        position = _redis_ms(connection) % window_ms
        if lo_ms <= position < hi_ms:
            return
        time.sleep(((lo_ms - position) % window_ms) / 1000)


def _boundary(enabled: bool) -> Sample:
    connection = _connection()
    try:
        bucket = rate_limiting.Limit(
            "edge", capacity=LIMIT, per_second=LIMIT / WINDOW_S, fail_open=True, what="x"
        )
        bucket_identity = uuid.uuid4().hex
        compared = [
            algorithm(limit=LIMIT, window_s=WINDOW_S) for algorithm in rate_limiters.ALGORITHMS
        ]
        keys = {limiter.name: _key(limiter.name) for limiter in compared}
        drf_key = uuid.uuid4().hex
        admitted = dict.fromkeys([*keys, "drf_throttle", "limiter"], 0)
        delays: list[float] = []

        def burst() -> None:
            for _ in range(LIMIT):
                if enabled:
                    admitted["limiter"] += rate_limiting.take(
                        bucket, bucket_identity, connection=connection
                    ).admitted
                else:
                    admitted["limiter"] += 1  # no limit
                admitted["drf_throttle"] += rate_limiters.drf_allows(LIMIT, WINDOW_S, drf_key)
                for limiter in compared:
                    decision = limiter.allow(connection, keys[limiter.name])
                    admitted[limiter.name] += decision.admitted
                    if decision.admitted and limiter.name == "leaky_bucket":
                        delays.append(decision.delay_s)

        _wait_for_window_position(connection, 1600, 1750)  # late in a window
        started = perf_counter()
        burst()
        _wait_for_window_position(connection, 50, 250)  # just after the boundary
        burst()
        span_ms = (perf_counter() - started) * 1000
    finally:
        connection.close()
    return Sample(
        ms=span_ms,
        queries={},
        bytes=0,
        status=200,
        answer={ATTEMPTED: 2 * LIMIT},
        metrics={
            ATTEMPTED: 2 * LIMIT,
            ADMITTED: admitted["limiter"],
            SPAN_MS: round(span_ms, 1),
            **{f"{name}_admitted": count for name, count in admitted.items() if name != "limiter"},
            LEAKY_DELAY_P50_MS: round(statistics.median(delays) * 1000, 1),
        },
    )


# --- the cost on a request ---------------------------------------------------------------------


def _alone(enabled: bool) -> Sample:
    """One limiter call on its own, no race, on a bucket that never empties: the round trip."""
    limit = rate_limiting.Limit("alone", capacity=10**9, per_second=1.0, fail_open=True, what="x")
    started = perf_counter()
    if enabled:
        admitted = rate_limiting.take(limit, "bench", connection=rate_limiting.client()).admitted
    else:
        admitted = rate_limiting._naive(None) is None
    elapsed_ms = (perf_counter() - started) * 1000
    return Sample(ms=elapsed_ms, queries={}, bytes=0, status=200, answer={ADMITTED: admitted})


def _cost_prepare() -> None:
    after()
    # Never refused during the pair: what is timed is the bucket's round trip, not a 429.
    raised = override_settings(RATE_LIMITING_ORDERS_CAPACITY=10**9)
    raised.enable()
    _state["raised"] = raised


def after() -> list[str]:
    raised = _state.pop("raised", None)
    if raised is None:
        return []
    raised.disable()
    return ["RATE_LIMITING_ORDERS_CAPACITY back to its setting"]


SCENARIO = Scenario(
    name="rate_limiting",
    title=f"{CLIENTS} concurrent clients, {ATTEMPTS} requests each, at a limit of {LIMIT}",
    run=_abuse,
    path=f"CALL the limiter from {CLIENTS} threads (own connections, a barrier)",
    repeat=RUNS,
    notes=(
        f"admitted: the technique's side (off: no limit; on: the Lua token bucket, capacity "
        f"{LIMIT}, no refill during the run). The other *_admitted figures are measured on "
        f"both sides under the same race, at the same limit: DRF's throttle (read, then write "
        f"a list in the Django cache) and the four algorithms of shop/rate_limiters.py (one "
        f"Lua script each). p50 is one limiter call under the race."
    ),
    targets=(
        Target(f"on.metrics.{ADMITTED}.max", at_most=LIMIT, label=f"bucket admits at most {LIMIT}"),
        Target(f"on.metrics.{ADMITTED}.p50", at_least=LIMIT, label=f"bucket admits {LIMIT} (p50)"),
    ),
)

EXTRA_SCENARIOS = [
    Scenario(
        name="rate_limiting",
        title=f"{LIMIT} requests late in a {WINDOW_S} s window, {LIMIT} more just after it",
        run=_boundary,
        path=f"CALL each limiter, {LIMIT} per {WINDOW_S} s, across a window boundary",
        repeat=3,
        notes=(
            "admitted: off no limit, on the token bucket (capacity and refill the same limit); "
            "the others on both sides. fixed_window_admitted is the double burst: 2x the "
            "limit within span_ms."
        ),
        targets=(
            Target(
                "on.metrics.fixed_window_admitted.p50",
                at_least=2 * LIMIT,
                label="the fixed window's double burst shows",
            ),
            Target(
                "on.metrics.sliding_log_admitted.max",
                at_most=LIMIT,
                label="the sliding log never admits more than its limit",
            ),
        ),
    ),
    Scenario(
        name="rate_limiting",
        title="one limiter call, no race, the bucket never empty",
        run=_alone,
        path="CALL rate_limiting.take() (one EVALSHA)",
        notes="Off calls nothing; on, the token bucket's one round trip to Redis.",
    ),
    Scenario(
        name="rate_limiting",
        title="the cheapest order request (no items: 400), the bucket never empty",
        prepare=_cost_prepare,
        call=lambda: Call("POST", "/api/orders/", data={"items": []}, user=CUSTOMER),
        writes=True,  # the bucket: over HTTP it would empty and answer 429s
        hold=holds.RATE_LIMITING,
        notes="What the limiter adds to a request: one EVALSHA before authentication.",
    ),
]
