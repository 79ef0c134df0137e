"""The authenticated ping with the token's user from Redis (off) or from the process's own L1
(on), and the hot lookups themselves, L1 against Redis.

The ping (`GET /api/perf/ping/` with `Authorization: Token`) is what every authenticated request
pays before its own work, and the bench's baseline of every scenario that logs in. Its one
lookup is the token's: off, a Redis GET (and, once a minute, PostgreSQL); on, a dict lookup in
the process. cache_aside is held on: the layer behind L1 is then Redis, as the catalog's off
("every hot lookup goes to Redis") says. A third arm, `postgres`, sends the same ping with
cache_aside off too: a query a request, the code before any cache, against which the pair's
L1 is also compared.

The second scenario times the lookups alone, 100 token lookups a run with no request around
them, so the difference is not diluted by what a request costs besides. It also records the
memory of a full token L1 (LOCAL_CACHE's 10 000 entries, tracemalloc): the price of L1 per
worker, on the on side (off keeps nothing in the process).

"""

from __future__ import annotations

from time import perf_counter

from rest_framework.authtoken.models import Token

from shop import toggles
from shop.authentication import TokenAuthentication
from shop.bench import holds
from shop.bench.measure import BASELINE_PATH, BenchError, Prepared, Requester, send
from shop.bench.samples import Sample
from shop.bench.scenario import Call, ExtraArm, Scenario
from shop.bench.targets import Target
from shop.techniques import local_cache

CUSTOMER = "user1"
LOOKUPS = 100  # a run of the lookup scenario
L1_FULL_BYTES = "l1_full_bytes"

_state: dict = {}


def _prepare() -> None:
    requester = Requester()
    _state["requester"] = requester
    _state["prepared"] = Prepared.of(Call("GET", BASELINE_PATH, user=CUSTOMER), requester)
    _state["key"] = requester.auth_headers(CUSTOMER)["Authorization"].split()[1]


def _postgres() -> Sample:
    """The ping with the token looked up in PostgreSQL, as before any cache: local_cache and
    cache_aside off."""
    flags = {**SCENARIO.flags(False), "cache_aside": False}
    return send(_state["requester"], _state["prepared"], flags=flags)


def _prepare_lookups() -> None:
    _prepare()
    if not Token.objects.filter(key=_state["key"]).exists():
        raise BenchError(f"{CUSTOMER} has no token")
    _state["l1_full_bytes"] = local_cache.full_l1_bytes(local_cache.TOKENS)


def _lookups(enabled: bool) -> Sample:
    key = _state["key"]
    database_lookup = TokenAuthentication().authenticate_credentials
    with toggles.override(**SCENARIO.flags(enabled)):
        local_cache.token_user(key, database_lookup)  # in Redis and (on) L1 before the clock
        started = perf_counter()
        for _ in range(LOOKUPS):
            user, _token = local_cache.token_user(key, database_lookup)
        elapsed_ms = (perf_counter() - started) * 1000
    return Sample(
        ms=elapsed_ms,
        queries={},
        bytes=0,
        status=200,
        answer=user.username,
        metrics={L1_FULL_BYTES: _state["l1_full_bytes"] if enabled else 0},
    )


def after() -> list[str]:
    requester = _state.pop("requester", None)
    if requester is not None:
        requester.close()
    _state.clear()
    return []


SCENARIO = Scenario(
    name="local_cache",
    title="authenticated ping: the token's user from Redis (off) or from the process (on)",
    prepare=_prepare,
    call=lambda: Call("GET", BASELINE_PATH, user=CUSTOMER),
    hold=holds.LOCAL_CACHE,
    arms=(
        ExtraArm(
            label="postgres",
            title="the token looked up in PostgreSQL (no cache)",
            run=_postgres,
        ),
    ),
    targets=(
        Target("on.queries", at_most=0, label="on, queries"),
        Target("speedup_p50", at_least=2, label="on against off (Redis), p50"),
        Target(
            "arms.postgres.on_multiple_p50",
            at_most=0.5,
            label="on against a query a request (no cache), p50 multiple",
        ),
    ),
    notes="Off asks Redis for the token's user on every request; on asks a dict in the "
    "process, for LOCAL_CACHE_TOKEN_TTL_S (5 s) after Redis answered. The postgres arm is the "
    "ping with no cache at all: a query a request.",
)

EXTRA_SCENARIOS = [
    Scenario(
        name="local_cache",
        title=f"{LOOKUPS} token lookups, no request around them: Redis (off) or L1 (on)",
        prepare=_prepare_lookups,
        run=_lookups,
        hold=holds.LOCAL_CACHE,
        path=f"local_cache.token_user × {LOOKUPS}",
        notes="l1_full_bytes: the memory of a full token L1 (10 000 entries, tracemalloc), "
        "what L1 costs each worker at most.",
    ),
]
