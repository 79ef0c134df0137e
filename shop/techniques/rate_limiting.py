"""Limit how fast one client may place orders or try passwords: a token bucket in Redis.

Off: the code a team writes first. No limit: a script may place a thousand orders a minute
with one stolen token, or try a thousand passwords a minute against the login.

On: each client has a bucket of CAPACITY tokens that refills at a steady rate. A request takes
a token; with none left it is refused with 429 and `Retry-After` (the whole seconds until the
next token). A burst of CAPACITY passes at once, the long-run rate is the refill rate.

- Orders (`POST /api/orders/`) are limited per client: the hash of its API token, or its IP
  without one (or with a credential no token could have). Logins (the token endpoint, DRF's and the admin's login pages) are limited per
  client IP: the guesser has no token yet.
- The bucket is one Lua script (TOKEN_BUCKET), run by EVALSHA in one round trip: it reads the
  bucket, refills it by the time elapsed on Redis's clock (TIME, not the web process's: web
  processes whose clocks differ still agree), takes a token or computes the wait, writes the
  bucket back and sets its TTL. Redis runs a script alone, so twenty concurrent requests at
  one bucket of 10 tokens get exactly 10 admissions. A read, then a write from Python (what
  DRF's throttles do) lets concurrent requests read the same count and all pass.
- The middleware runs before sessions and authentication, so a refused request costs one Redis
  round trip and no query. The per-client key therefore cannot be the user's id (that is a
  token lookup away): it is a SHA-256 of the token from the Authorization header, read exactly
  as DRF's TokenAuthentication reads it (`token_of()`), so every spelling of the header that
  authenticates (`Token<TAB>key`, `token  key`) takes from the same bucket. One token is one
  user here (DRF's tokens are one per user), and the raw token never reaches a Redis key or a
  log. Only a credential of a token's shape (`TOKEN_KEY`, 40 hex digits) has a bucket of its
  own: any other (`Token made-up-1`, `-2`, ...) is counted in the client's IP bucket, so making
  credentials up buys no new bucket and no new Redis key. A made-up credential of the right
  shape still gets a bucket of its own, and then its 401 from authentication: it costs what
  any request authentication refuses costs, and those are not limited on the other endpoints
  either. Without a token (a session login, or none), the bucket is the client's IP, never its
  session cookie: a client makes up as many cookies as it likes, and each would be a full
  bucket.

Redis down (or slower than RATE_LIMITING_REDIS_TIMEOUT_S, or refusing the script as it would any
command: OOM or READONLY; shop/cache.py's OUTAGE) is a deliberate choice per limit. Any other error
(a script error, WRONGTYPE) is a bug and raises:

- orders fail OPEN: the order goes through, with a warning logged. The limit protects the shop
  from abuse; it is not what makes an order correct (stock, payment and idempotency are), and
  refusing every sale for a cache outage costs more than a few minutes without a limit.
- logins fail CLOSED: 503 with Retry-After. Without its limit the login is an unlimited password
  oracle for as long as the outage lasts, and an attacker can cause that outage. Clients that
  are logged in keep their tokens and are not affected.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from redis.commands.core import Script
from rest_framework.authentication import get_authorization_header

from shop import cache, toggles
from shop.authentication import TOKEN_KEY, TokenAuthentication

logger = logging.getLogger(__name__)

TOGGLE = toggles.register(
    "rate_limiting",
    group="caching",
    description="token bucket in Redis (one Lua script): 429 + Retry-After for orders and logins",
)

# KEYS: the bucket (a hash: tokens, at). ARGV: capacity, refill per second.
# Returns {admitted (1 or 0), milliseconds until a token is there (0 when admitted), tokens left}.
TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1])
local at = tonumber(bucket[2])
if tokens == nil then
    tokens, at = capacity, now  -- a new (or expired) bucket is a full one
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local admitted, wait_ms = 0, 0
if tokens >= 1 then
    tokens = tokens - 1
    admitted = 1
else
    wait_ms = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
-- Once it would be full again, a missing bucket says the same: let Redis drop it.
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {admitted, wait_ms, math.floor(tokens)}
"""


@dataclass(frozen=True)
class Limit:
    name: str  # in the Redis key and the message: "orders", "login"
    capacity: int  # the burst: tokens in a full bucket
    per_second: float  # the refill rate
    fail_open: bool  # when Redis does not answer: let the request through, or refuse it
    what: str  # for the message: "orders placed", "login attempts"

    def describe(self) -> str:
        """`at most 10 at once, then 1 every 6 s`."""
        return f"at most {self.capacity} at once, then 1 every {1 / self.per_second:g} s"


@dataclass(frozen=True)
class Decision:
    admitted: bool
    retry_after_s: float = 0.0  # until the next request would be admitted
    remaining: int = 0  # tokens left after this one (whole ones)
    delay_s: float = 0.0  # a shaping limiter's (the leaky bucket's) wait before going ahead

    @property
    def retry_after(self) -> int:
        """Whole seconds, rounded up, at least 1: what a Retry-After header says."""
        return max(1, math.ceil(self.retry_after_s))


def orders_limit() -> Limit:
    return Limit(
        name="orders",
        capacity=settings.RATE_LIMITING_ORDERS_CAPACITY,
        per_second=settings.RATE_LIMITING_ORDERS_PER_MINUTE / 60,
        fail_open=True,
        what="orders placed",
    )


def login_limit() -> Limit:
    return Limit(
        name="login",
        capacity=settings.RATE_LIMITING_LOGIN_CAPACITY,
        per_second=settings.RATE_LIMITING_LOGIN_PER_MINUTE / 60,
        fail_open=False,
        what="login attempts",
    )


# --- Redis -------------------------------------------------------------------------------------


def redis_url() -> str:
    return settings.RATE_LIMITING_REDIS_URL or settings.CACHES["default"]["LOCATION"]


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # One client per process (its pool is shared by the threads), with short timeouts: the
    # limiter is in front of every login and order, and a Redis that does not answer must cost
    # them a fraction of a second before the outage policy applies, not the default's forever.
    timeout = settings.RATE_LIMITING_REDIS_TIMEOUT_S
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def client() -> redis.Redis:
    return _client(redis_url())


@lru_cache(maxsize=1)
def _token_bucket() -> Script:
    # register_script computes the SHA once; each call is one EVALSHA (and, the first time on a
    # Redis that does not have it, a SCRIPT LOAD and a retry), on whichever client is passed.
    return client().register_script(TOKEN_BUCKET)


def bucket_key(limit: Limit, identity: str) -> str:
    # Under the cache's prefix, so a test run (or a bench database) has buckets of its own.
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "perfshop")
    return f"{prefix}:ratelimit:{limit.name}:{identity}"


def take(limit: Limit, identity: str, *, connection: redis.Redis | None = None) -> Decision:
    """Take one token from `identity`'s bucket of `limit`: one EVALSHA. Raises the client's
    error when Redis does not answer or answers with one: for an outage (`cache.OUTAGE`) the
    caller's policy decides."""
    admitted, wait_ms, remaining = _token_bucket()(
        keys=[bucket_key(limit, identity)],
        args=[limit.capacity, limit.per_second],
        client=connection or client(),
    )
    return Decision(admitted=bool(admitted), retry_after_s=wait_ms / 1000, remaining=remaining)


# --- who is asking -----------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind RATE_LIMITING_NUM_PROXIES proxies the address the outermost of
    them saw (X-Forwarded-For counted from the right: the left part is whatever the client
    wrote, and trusting it would let a guesser pick a new IP for each request). With fewer hops
    than proxies, the one that would be chosen was not written by a proxy, and a hop that is not
    an IP address (or is one with an IPv6 zone ID, `fe80::1%...`) was not either: both are
    REMOTE_ADDR's bucket, never a client's string (up to the header's size) in a Redis key."""
    remote_addr = request.META.get("REMOTE_ADDR", "") or "unknown"
    proxies = settings.RATE_LIMITING_NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote_addr
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote_addr
    try:
        address = ipaddress.ip_address(hops[-proxies])
    except ValueError:
        return remote_addr
    if getattr(address, "scope_id", None) is not None:
        # `fe80::1%<anything>`: ipaddress takes any zone ID, and no proxy writes one for a client.
        return remote_addr
    return str(address)  # one spelling per address


def _digest(secret: str) -> str:
    # A token is 160 random bits: an unsalted SHA-256 of it cannot be reversed or guessed,
    # and is the same in every process, as a bucket key must be.
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def token_of(request: HttpRequest) -> str | None:
    """The key the project's TokenAuthentication looks up for this request, parsed as DRF's
    `authenticate()` parses it: the header split on any whitespace, the keyword in any case,
    exactly one credential, UTF-8. None where DRF finds no token (no header, another scheme)
    or answers 401 before any lookup (no credential, two, bytes that are not UTF-8)."""
    words = get_authorization_header(request).split()
    if len(words) != 2 or words[0].lower() != TokenAuthentication.keyword.lower().encode():
        return None
    try:
        return words[1].decode()
    except UnicodeError:
        return None


def client_identity(request: HttpRequest) -> str:
    """Who places the order, without a query: the API token's hash, else the client's IP. A
    credential that no token could have (not TOKEN_KEY's 40 hex digits) is the IP too: each
    string would otherwise be a full bucket. Not the session cookie: the client chooses it (an
    anonymous order is refused by authentication anyway, after taking its token from the IP's
    bucket)."""
    token = token_of(request)
    if token is not None and TOKEN_KEY.fullmatch(token):
        return "token:" + _digest(token)
    return "ip:" + client_ip(request)


def limit_of(request: HttpRequest) -> tuple[Limit, str] | None:
    """The limit a request falls under and the bucket it takes from, or None."""
    if request.method != "POST":
        return None
    if request.path_info in settings.RATE_LIMITING_ORDER_PATHS:
        return orders_limit(), client_identity(request)
    if request.path_info in settings.RATE_LIMITING_LOGIN_PATHS:
        return login_limit(), "ip:" + client_ip(request)
    return None


# --- the answers -------------------------------------------------------------------------------


def too_many(limit: Limit, decision: Decision) -> JsonResponse:
    response = JsonResponse(
        {
            "detail": (
                f"Too many {limit.what}: {limit.describe()}. Nothing was done; try again in "
                f"{decision.retry_after} s."
            ),
            "code": "rate_limited",
            "retry_after": decision.retry_after,
        },
        status=429,
    )
    response["Retry-After"] = str(decision.retry_after)
    return response


def unavailable(limit: Limit) -> JsonResponse:
    retry_after = settings.RATE_LIMITING_OUTAGE_RETRY_AFTER_S
    response = JsonResponse(
        {
            "detail": (
                f"{limit.what.capitalize()} cannot be counted at the moment, so none are "
                f"accepted. Nothing was done; try again in {retry_after} s."
            ),
            "code": "rate_limiter_unavailable",
            "retry_after": retry_after,
        },
        status=503,
    )
    response["Retry-After"] = str(retry_after)
    return response


_WARN_EVERY_S = 10.0
_last_warning: dict[str, float] = {}  # by limit: each policy's warning is seen


def _outage(limit: Limit, exc: BaseException) -> None:
    """Log that Redis failed (no answer, or an error such as OOM or READONLY): at most one
    warning per limit per _WARN_EVERY_S per process, since during an outage every order and
    login would log one."""
    now = time.monotonic()
    if now - _last_warning.get(limit.name, -_WARN_EVERY_S) >= _WARN_EVERY_S:
        _last_warning[limit.name] = now
        policy = "let through (fail open)" if limit.fail_open else "refused (fail closed)"
        logger.warning("rate limiting: %s; %s are %s", cache.failure(exc), limit.what, policy)


# --- the two paths -----------------------------------------------------------------------------


def _naive(request: HttpRequest) -> None:
    return None  # no limit: every login attempt and every order goes to the view


def _optimized(request: HttpRequest) -> JsonResponse | None:
    found = limit_of(request)
    if found is None:
        return None
    limit, identity = found
    try:
        decision = take(limit, identity)
    except cache.OUTAGE as exc:
        _outage(limit, exc)
        return None if limit.fail_open else unavailable(limit)
    return None if decision.admitted else too_many(limit, decision)


class Middleware:
    """Refuses a client's login or order past its bucket, before any session or auth work."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        check = _optimized if toggles.is_enabled(TOGGLE.name) else _naive
        refusal = check(request)
        return refusal if refusal is not None else self.get_response(request)
