"""A client revalidating the 50-row product list it already holds: `If-None-Match` with the
ETag of its copy, over real HTTP, bytes counted on the wire (shop/bench/wire.py).

- off: no validators. The view runs and the whole page comes back, 200.
- on: the validator from Redis matches before the view: 304, headers only, no query.
- rendered (an extra arm): Django's ConditionalGetMiddleware in http_caching's place
  (`HTTP_CACHING_VALIDATOR=rendered`, a gunicorn of its own). The view runs and renders, the
  body is hashed, and the 304 saves the bytes only.

Each run is one exchange with a gunicorn of one worker (`Connection: close`), timed from the
connect to the last byte. Its answer is the page the client ends up with: the body of a 200,
or for a 304 its own copy, fetched once when the side starts; so the three answers compare.
Its `bytes` are the response's on the wire, headers included, less the headers only the
bench's settings send (`bench_header_bytes`: X-DB-Queries, X-Cache-Ops, Server-Timing,
X-Perf-Toggles; shop/bench/wire.py), so what a production client receives;
`share_of_full_200` is those bytes over the full 200's (the target). Held off (shop/bench/holds.py says why): compression,
cache_aside and local_cache.
"""

from __future__ import annotations

import json
import time

from shop import toggles
from shop.bench import holds
from shop.bench.samples import Sample
from shop.bench.scenario import ExtraArm, Scenario
from shop.bench.targets import Target
from shop.bench.wire import Exchange, Servers, exchange
from shop.perf_headers import TOGGLE_HEADER, parse_query_counts

TECHNIQUE = "http_caching"
PATH = "/api/products/?page_size=50"
NOT_MODIFIED = "not_modified"  # 1 when the run got a 304
SHARE = "share_of_full_200"  # the run's response bytes over the full 200's
REQUEST_BYTES = "request_bytes"
INSTRUMENTATION_BYTES = "bench_header_bytes"  # the bench's own headers, not in `bytes`
SETTLE_WAIT_S = 60  # longer than any settling window (READ_REPLICA_PIN_SECONDS: 5 s)

_servers = Servers()
# Per arm: the ETag of the copy the client holds, and that copy.
_copies: dict[str, tuple[str, bytes]] = {}
_full: dict[str, int] = {}


def _server(arm: str) -> str:
    if arm == "rendered":
        return _servers.url("rendered", {"HTTP_CACHING_VALIDATOR": "rendered"})
    return _servers.url("token")


def _headers(enabled: bool) -> dict[str, str]:
    flags = {**holds.HTTP_CACHING, TECHNIQUE: enabled}
    return {
        # One Host for every server: the pagination links in the body name it.
        "Host": "localhost",
        "Accept": "application/json",
        TOGGLE_HEADER: toggles.format_flags(flags),
    }


def _prime(arm: str) -> None:
    """The client's copy, with the ETag the arm's server gives it (on's for off: a client
    holding an ETag it cannot use). A token just started gives no ETag until it has settled
    (the replica's bound, http_caching.settle_ns): asked again each second until then."""
    server_arm = "token" if arm in ("off", "on") else arm
    deadline = time.monotonic() + SETTLE_WAIT_S
    while True:
        got = exchange(_server(server_arm), PATH, _headers(True))
        if got.status == 200 and "etag" in got.headers:
            _copies[arm] = (got.headers["etag"], got.body)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"http_caching {arm}: no ETag on {PATH}: {got.status} {got.headers}")
        time.sleep(1)


def _prepare() -> None:
    for arm in ("off", "on", "rendered"):
        _prime(arm)
    full = exchange(_server("token"), PATH, _headers(False))
    _full["bytes"] = full.production_bytes


def _revalidate(arm: str) -> Sample:
    enabled = arm != "off"
    etag, copy = _copies[arm]
    server_arm = "rendered" if arm == "rendered" else "token"
    got = exchange(_server(server_arm), PATH, {**_headers(enabled), "If-None-Match": etag})
    if got.status == 200 and "etag" in got.headers:
        # The validator moved (a token renewed after TOKEN_TTL_S): a real miss, and the
        # client's new copy from now on.
        _copies[arm] = (got.headers["etag"], got.body)
    return _sample(got, copy)


def _sample(got: Exchange, copy: bytes) -> Sample:
    body = copy if got.status == 304 else got.body
    return Sample(
        ms=got.ms,
        queries=parse_query_counts(got.headers.get("x-db-queries", "default=0")),
        bytes=got.production_bytes,
        # What the client's application sees: a 304 is answered from its copy.
        status=200 if got.status == 304 else got.status,
        answer=json.loads(body),
        metrics={
            NOT_MODIFIED: int(got.status == 304),
            SHARE: round(got.production_bytes / _full["bytes"], 4),
            REQUEST_BYTES: got.request_bytes,
            INSTRUMENTATION_BYTES: got.instrumentation_bytes,
        },
    )


def after() -> list[str]:
    _copies.clear()
    return _servers.close()


SCENARIO = Scenario(
    name=TECHNIQUE,
    title="revalidating the 50-row product list (If-None-Match), over HTTP",
    path=f"GET {PATH} with If-None-Match, over HTTP (bytes on the wire)",
    prepare=_prepare,
    run=lambda enabled: _revalidate("on" if enabled else "off"),
    arms=(
        ExtraArm(
            label="rendered",
            title="ConditionalGetMiddleware (render, then hash)",
            run=lambda: _revalidate("rendered"),
        ),
    ),
    hold=holds.HTTP_CACHING,
    targets=(
        Target(f"on.metrics.{SHARE}.p50", at_most=0.05, label="304 bytes / full 200 bytes"),
        Target(f"on.metrics.{NOT_MODIFIED}.p50", at_least=1, label="on answers 304"),
        Target("on.queries", at_most=0, label="queries per 304"),
    ),
    notes="Over HTTP to gunicorns of one worker, one exchange per run with Connection: close. "
    "Bytes are the response's on the wire (status line, headers, body) less the bench's own "
    f"headers (`{INSTRUMENTATION_BYTES}`), which production never sends; a run's status is "
    "what the client's application sees (a 304 is answered from the client's copy), and "
    f"`{NOT_MODIFIED}` counts the 304s. The rendered arm is Django's ConditionalGetMiddleware: "
    "its 304 runs the view's queries.",
)
