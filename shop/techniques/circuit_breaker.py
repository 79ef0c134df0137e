"""Stop calling a service that is down: fail fast instead of waiting for its timeout each time.

The payment gateway client (shop/payment_gateway.py) has timeouts, so a gateway that stops
answering costs a request PAYMENT_GATEWAY_TIMEOUT_S (3 s), never a hung worker. But it costs
every request those 3 s, for as long as the outage lasts: the workers fill up with requests
waiting on a gateway that is known to be down, and the rest of the shop queues behind them.

Off: the code a team writes first. Every call goes out and waits for its timeout.

On: a circuit breaker around the call, with its state in Redis, so every process (each
gunicorn worker, each Celery worker) sees the same state and one process's failures protect all
of them:

    closed ──(CIRCUIT_BREAKER_FAILURES failures within CIRCUIT_BREAKER_WINDOW_S)──▶ open
    open ──(CIRCUIT_BREAKER_OPEN_S later, the next call)──▶ half-open: that call is the probe
    half-open ──(the probe succeeds)──▶ closed
    half-open ──(the probe fails)──▶ open again, for another CIRCUIT_BREAKER_OPEN_S

While open, and while a probe is on its way, calls do not go out: they raise `Open` at once,
with the seconds until it is worth trying again (the API answers 503 with Retry-After). Only
one probe goes out at a time across every process: it takes a Redis key with `SET NX PX`, and
the others fail fast until it reports back. The key expires (CIRCUIT_BREAKER_PROBE_TTL_S), so
a process that dies mid-probe does not leave the breaker half-open for good.

Each transition is one Lua script, so it is atomic in Redis: two processes that fail at once
cannot both miss the threshold, nor both open it, nor both probe. Failures are counted in a
fixed window that starts at the first failure; a success while closed costs one Redis call
(the admission) and writes nothing.

If Redis itself is down, the breaker fails open: the call goes out as if the breaker were
closed (and a warning is logged). A payment then costs what it cost without a breaker, instead
of every payment failing because the breaker could not read its state.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import redis
from django.conf import settings

from shop import toggles

TOGGLE = toggles.register(
    "circuit_breaker",
    group="queues",
    description="fail fast while the payment gateway is down, with a half-open probe",
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# Every script reads the clock of Redis (TIME), not the caller's: processes on machines whose
# clocks differ still agree on when the breaker opened and when it may be probed.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: open-until, probe. ARGV: probe token, probe TTL (ms).
# Returns {0, 0} closed: go; {2, 0} half-open and this call is the probe: go;
# {1, ms} open (or a probe already out): do not go, try again in `ms`.
_ADMIT = (
    _NOW
    + """
local open_until = tonumber(redis.call('GET', KEYS[1]))
if not open_until then
    return {0, 0}
end
if now < open_until then
    return {1, open_until - now}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return {2, 0}
end
return {1, math.max(redis.call('PTTL', KEYS[2]), 0)}
"""
)

# KEYS: open-until, probe, failures. ARGV: probe token ('' for a call made while closed),
# threshold, window (ms), open period (ms). Returns 1 when this failure opened the breaker.
_FAILED = (
    _NOW
    + """
if ARGV[1] ~= '' then
    if redis.call('GET', KEYS[2]) == ARGV[1] then
        redis.call('DEL', KEYS[2])
    end
    redis.call('SET', KEYS[1], now + tonumber(ARGV[4]))
    redis.call('DEL', KEYS[3])
    return 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
local failures = redis.call('INCR', KEYS[3])
if failures == 1 then
    redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
if failures >= tonumber(ARGV[2]) then
    redis.call('SET', KEYS[1], now + tonumber(ARGV[4]))
    redis.call('DEL', KEYS[3])
    return 1
end
return 0
"""
)
# A late failure of a call let through before the breaker opened is not counted again: the
# breaker is already open, and its next state is the probe's to decide.

# KEYS: open-until, probe, failures. ARGV: probe token. The probe succeeded: closed again,
# unless its probe key expired meanwhile and another probe is out (that one decides).
_SUCCEEDED = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    return 1
end
return 0
"""


class Open(Exception):
    """The breaker of `name` is open (or its probe is out): the call was not made."""

    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(f"the circuit breaker of {name} is open")
        self.name = name
        self.retry_after_s = retry_after_s

    @property
    def retry_after(self) -> int:
        """Whole seconds, at least 1: what a Retry-After header says."""
        return max(1, math.ceil(self.retry_after_s))


@dataclass(frozen=True)
class _Keys:
    open_until: str
    probe: str
    failures: str

    @classmethod
    def of(cls, name: str) -> _Keys:
        # One hash tag per breaker: its keys land on the same Redis Cluster slot, as a script
        # touching several keys requires.
        base = f"{settings.CIRCUIT_BREAKER_KEY_PREFIX}:{{{name}}}"
        return cls(f"{base}:open_until", f"{base}:probe", f"{base}:failures")

    def all(self) -> list[str]:
        return [self.open_until, self.probe, self.failures]


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # Short timeouts: the breaker sits on the payment path, and a Redis that does not answer
    # must cost a payment a fraction of a second before the breaker fails open, not seconds.
    timeout = settings.CIRCUIT_BREAKER_REDIS_TIMEOUT_S
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def client() -> redis.Redis:
    return _client(settings.CIRCUIT_BREAKER_REDIS_URL)


def call(
    name: str,
    fn: Callable[[], T],
    *,
    errors: tuple[type[BaseException], ...] = (Exception,),
    failed: Callable[[T], bool] = lambda result: False,
) -> T:
    """`fn()` through the breaker `name`. An exception of `errors` from it, or a result for
    which `failed(result)` is true (a 5xx answer), counts as a failure; the exception is raised
    and the result returned either way. Raises `Open` without calling `fn` while the breaker is
    open. Off: `fn()`, every time."""
    if not toggles.is_enabled(TOGGLE.name):
        return _naive(fn)
    return _optimized(name, fn, errors=errors, failed=failed)


def _naive(fn: Callable[[], T]) -> T:
    return fn()  # a gateway that is down costs every call its full timeout


def _optimized(name, fn, *, errors, failed):
    keys = _Keys.of(name)
    token = uuid.uuid4().hex
    try:
        verdict, wait_ms = client().eval(
            _ADMIT, 2, keys.open_until, keys.probe, token, _ms(settings.CIRCUIT_BREAKER_PROBE_TTL_S)
        )
    except redis.RedisError as exc:
        # Fail open: without its state the breaker lets the call through, as if closed.
        logger.warning("circuit breaker %s: Redis unavailable (%s); calling through", name, exc)
        return fn()
    if verdict == 1:
        raise Open(name, wait_ms / 1000)
    probe = token if verdict == 2 else ""
    try:
        result = fn()
    except errors:
        _record(name, keys, _FAILED, probe)
        raise
    except BaseException:
        # Not the service's failure (a bug on our side, an interrupt): a probe gives its turn
        # back, so the next call probes instead of waiting for the key to expire.
        if probe:
            _release_probe(keys, probe)
        raise
    if failed(result):
        _record(name, keys, _FAILED, probe)
    elif probe:
        _record(name, keys, _SUCCEEDED, probe)
    return result


def _record(name: str, keys: _Keys, script: str, probe: str) -> None:
    args = [probe]
    if script is _FAILED:
        args += [
            settings.CIRCUIT_BREAKER_FAILURES,
            _ms(settings.CIRCUIT_BREAKER_WINDOW_S),
            _ms(settings.CIRCUIT_BREAKER_OPEN_S),
        ]
    try:
        opened = client().eval(script, 3, *keys.all(), *args)
    except redis.RedisError as exc:
        logger.warning("circuit breaker %s: could not record the outcome: %s", name, exc)
        return
    if script is _FAILED and opened:
        logger.warning("circuit breaker %s opened for %g s", name, settings.CIRCUIT_BREAKER_OPEN_S)


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def _release_probe(keys: _Keys, probe: str) -> None:
    with contextlib.suppress(redis.RedisError):  # if not, the key expires on its own
        client().eval(_RELEASE, 1, keys.probe, probe)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def state(name: str) -> str:
    """closed, open or half_open (the open period is over: the next call probes, or a probe is
    out). For the admin, the tests and the bench; a call never asks this first."""
    keys = _Keys.of(name)
    raw = client().eval(
        _NOW + "local u = tonumber(redis.call('GET', KEYS[1])) if not u then return false end "
        "return u - now",
        1,
        keys.open_until,
    )
    if raw is None:
        return CLOSED
    return OPEN if raw > 0 else HALF_OPEN


def force_open(name: str, seconds: float | None = None) -> None:
    """Open the breaker for `seconds` (CIRCUIT_BREAKER_OPEN_S), as its threshold of failures
    would: for an operator who knows the service is down, and the bench's open side."""
    keys = _Keys.of(name)
    open_ms = _ms(settings.CIRCUIT_BREAKER_OPEN_S if seconds is None else seconds)
    script = (
        _NOW
        + "redis.call('SET', KEYS[1], now + tonumber(ARGV[1])) redis.call('DEL', KEYS[2], KEYS[3])"
    )
    client().eval(script, 3, *keys.all(), open_ms)


def reset(name: str) -> None:
    """Close the breaker and forget its failures (tests, the bench, an operator)."""
    client().delete(*_Keys.of(name).all())
