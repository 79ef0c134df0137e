"""The other ways to limit a rate in Redis, beside the rate_limiting technique's token bucket
(shop/techniques/rate_limiting.py): what the bench and docs/techniques/rate_limiting.md compare
it with. None of them is on a request path.

Each is one Lua script reading Redis's clock, as the token bucket is, so what differs between
them is the algorithm and not the atomicity:

- FixedWindow: a counter per window of W seconds (INCR, with a TTL). One key, one number. A
  client may send `limit` requests at the end of one window and `limit` more at the start of
  the next: 2x the limit within a moment (the bench shows it).
- SlidingLog: a sorted set of the admitted requests' times; a request is admitted while fewer
  than `limit` fall in the last W seconds. Exact, but it stores every request (memory grows
  with the limit) and each check trims and counts the set.
- SlidingWindowCounter: the fixed window's counter plus the previous window's, weighted by how
  much of the previous window still lies in the last W seconds. Two numbers, close to the log
  (it assumes the previous window's requests were spread evenly).
- LeakyBucket (as a queue): requests join a queue that drains at a steady rate; a request is
  admitted while the queue has room, and told how long to wait for its turn (`delay_s`). The
  outflow is smooth, the price is that latency. (As a meter that refuses instead of queueing,
  a leaky bucket is the token bucket turned upside down, and admits the same requests.)

And DRF's throttle (`DrfThrottle`, and `drf_allows()` for one request through it; named
`drf_throttle` in the bench's figures): what a team installs, a sliding log kept as a Python
list in the cache, read, then written back: concurrent requests read the same list, each
appends to its own copy, and all of them pass.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import redis
from redis.commands.core import Script
from rest_framework.throttling import SimpleRateThrottle

from shop.techniques.rate_limiting import Decision

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
"""

# KEYS: the counter (a hash: start, count). ARGV: limit, window (ms).
_FIXED_WINDOW = (
    _NOW_MS
    + """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local start = math.floor(now / window) * window
local state = redis.call('HMGET', KEYS[1], 'start', 'count')
local count = 0
if tonumber(state[1]) == start then
    count = tonumber(state[2])
end
if count >= limit then
    return {0, math.ceil(start + window - now)}
end
redis.call('HSET', KEYS[1], 'start', tostring(start), 'count', count + 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(start + window - now))
return {1, 0}
"""
)

# KEYS: the log (a sorted set: member = a unique id, score = its time). ARGV: limit, window
# (ms), this request's id.
_SLIDING_LOG = (
    _NOW_MS
    + """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], math.ceil(window))
    return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.ceil(tonumber(oldest[2]) + window - now)}
"""
)

# KEYS: the counters (a hash: start, current, previous). ARGV: limit, window (ms).
_SLIDING_WINDOW_COUNTER = (
    _NOW_MS
    + """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local start = math.floor(now / window) * window
local state = redis.call('HMGET', KEYS[1], 'start', 'current', 'previous')
local was = tonumber(state[1])
local current, previous = tonumber(state[2]) or 0, tonumber(state[3]) or 0
if was ~= start then
    if was == start - window then previous = current else previous = 0 end
    current = 0
end
local elapsed = now - start
local estimate = previous * (window - elapsed) / window + current
local admitted, wait = 0, 0
if estimate + 1 <= limit then
    current = current + 1
    admitted = 1
elseif previous > 0 and current + 1 <= limit then
    -- the previous window's share shrinks as this one goes on: wait until it leaves room
    wait = math.ceil(window * (1 - (limit - 1 - current) / previous) - elapsed)
else
    wait = math.ceil(window - elapsed)
end
redis.call('HSET', KEYS[1], 'start', tostring(start), 'current', current, 'previous', previous)
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * window))
return {admitted, wait}
"""
)

# KEYS: the queue's end (the time, in ms, at which everything admitted so far has left).
# ARGV: capacity (requests the queue holds), interval (ms between two leaving).
# Returns {admitted, ms until a place frees (refused) or until this one's turn (admitted)}.
_LEAKY_BUCKET = (
    _NOW_MS
    + """
local capacity, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local drained = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local backlog = drained - now  -- ms of requests still queued ahead
if backlog + interval > capacity * interval then
    return {0, math.ceil(backlog + interval - capacity * interval)}
end
redis.call('SET', KEYS[1], tostring(drained + interval), 'PX', math.ceil(backlog + interval))
return {1, math.floor(backlog)}
"""
)


@lru_cache(maxsize=8)
def _script(source: str) -> Script:
    # The SHA once per script; each call is then one EVALSHA on the connection it is given.
    return Script(None, source.encode())  # bytes: no client needed for its encoding


@dataclass(frozen=True)
class _Limiter:
    """One algorithm: `allow(connection, key)` is one EVALSHA of its script."""

    limit: int  # requests per window (the leaky bucket: the queue's length)
    window_s: float  # the window (the leaky bucket: the time to drain a full queue)
    script: ClassVar[str]
    name: ClassVar[str]

    def _run(self, connection: redis.Redis, key: str, *args) -> list[int]:
        return _script(self.script)(keys=[key], args=args, client=connection)

    def allow(self, connection: redis.Redis, key: str) -> Decision:
        admitted, wait_ms = self._run(connection, key, self.limit, self.window_s * 1000)
        return Decision(admitted=bool(admitted), retry_after_s=wait_ms / 1000)


class FixedWindow(_Limiter):
    script = _FIXED_WINDOW
    name = "fixed_window"


class SlidingLog(_Limiter):
    script = _SLIDING_LOG
    name = "sliding_log"

    def allow(self, connection: redis.Redis, key: str) -> Decision:
        member = uuid.uuid4().hex  # two requests in the same millisecond are two entries
        admitted, wait_ms = self._run(connection, key, self.limit, self.window_s * 1000, member)
        return Decision(admitted=bool(admitted), retry_after_s=wait_ms / 1000)


class SlidingWindowCounter(_Limiter):
    script = _SLIDING_WINDOW_COUNTER
    name = "sliding_window_counter"


class LeakyBucket(_Limiter):
    script = _LEAKY_BUCKET
    name = "leaky_bucket"

    def allow(self, connection: redis.Redis, key: str) -> Decision:
        interval_ms = self.window_s * 1000 / self.limit
        admitted, ms = self._run(connection, key, self.limit, interval_ms)
        if admitted:
            return Decision(admitted=True, delay_s=ms / 1000)
        return Decision(admitted=False, retry_after_s=ms / 1000)


ALGORITHMS = (FixedWindow, SlidingLog, SlidingWindowCounter, LeakyBucket)


class DrfThrottle(SimpleRateThrottle):
    """DRF's throttle as UserRateThrottle runs it, at `limit` requests per `window_s` and on the
    key given: `allow_request` reads the request times from the cache (Django's default cache,
    the same Redis), drops those older than the window, compares the count with the limit,
    then writes the list back."""

    def __init__(self, limit: int, window_s: float, key: str) -> None:
        # DRF's reads "10/hour" from settings; its windows are a second, minute, hour or day.
        self.rate = f"{limit}/{window_s:g}s"
        self.num_requests, self.duration = limit, window_s
        self.key_name = key

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": "compared", "ident": self.key_name}


def drf_allows(limit: int, window_s: float, key: str) -> bool:
    """One request through DRF's throttle: whether it was let through."""
    return DrfThrottle(limit, window_s, key).allow_request(request=None, view=None)
