"""The 50-row product list as a browser asks for it (`Accept-Encoding: gzip, deflate, br,
zstd`), over real HTTP, bytes counted on the wire (shop/bench/wire.py).

- off: identity, whatever the client accepts.
- on: the coding negotiated (brotli: first in the server's order on a tie).
- gzip, zstd (extra arms, on): a client that accepts only that coding.

Each run is one exchange with a gunicorn of one worker (`Connection: close`), timed from the
connect to the last byte. Its answer is the decoded body, so every arm's must be off's. Its
`bytes` are the response's on the wire, headers included, less the headers only the bench's
settings send (`bench_header_bytes`, as in http_caching's pair); `share_of_identity` is that over the
identity response's (the target: at most 0.40, 60 % smaller); `compress_cpu_ms` is the CPU the
server's coding took (`time.process_time()` around it, sent in `Server-Timing: compress`).
http_caching and cache_aside are held off (shop/bench/holds.py says why).
"""

from __future__ import annotations

import gzip
import json
import re

import brotli
import zstandard

from shop import toggles
from shop.bench import holds
from shop.bench.samples import Sample
from shop.bench.scenario import ExtraArm, Scenario
from shop.bench.targets import Target
from shop.bench.wire import Servers, exchange
from shop.perf_headers import TOGGLE_HEADER, parse_query_counts

TECHNIQUE = "compression"
PATH = "/api/products/?page_size=50"
BROWSER = "gzip, deflate, br, zstd"  # what Chrome and Firefox send
SHARE = "share_of_identity"  # the run's response bytes over the identity response's
CPU_MS = "compress_cpu_ms"
INSTRUMENTATION_BYTES = "bench_header_bytes"  # the bench's own headers, not in `bytes`
DECODERS = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda body: zstandard.ZstdDecompressor().decompress(body),
}
_TIMING = re.compile(r"compress;dur=([0-9.]+)")

_servers = Servers()
_identity: dict[str, int] = {}


def _get(enabled: bool, accept_encoding: str):
    flags = {**holds.COMPRESSION, TECHNIQUE: enabled}
    headers = {
        # One Host for every server: the pagination links in the body name it.
        "Host": "localhost",
        "Accept": "application/json",
        "Accept-Encoding": accept_encoding,
        TOGGLE_HEADER: toggles.format_flags(flags),
    }
    return exchange(_servers.url("web"), PATH, headers)


def _prepare() -> None:
    _identity["bytes"] = _get(False, "identity").production_bytes


def _run(enabled: bool, accept_encoding: str = BROWSER) -> Sample:
    got = _get(enabled, accept_encoding)
    coding = got.headers.get("content-encoding")
    body = DECODERS[coding](got.body) if coding else got.body
    timing = _TIMING.search(got.headers.get("server-timing", ""))
    return Sample(
        ms=got.ms,
        queries=parse_query_counts(got.headers.get("x-db-queries", "default=0")),
        bytes=got.production_bytes,
        status=got.status,
        answer=json.loads(body),
        metrics={
            SHARE: round(got.production_bytes / _identity["bytes"], 4),
            INSTRUMENTATION_BYTES: got.instrumentation_bytes,
            CPU_MS: float(timing[1]) if timing else 0.0,
        },
    )


def after() -> list[str]:
    return _servers.close()


SCENARIO = Scenario(
    name=TECHNIQUE,
    title="the 50-row product list to a browser's Accept-Encoding, over HTTP",
    path=f"GET {PATH} with Accept-Encoding: {BROWSER}, over HTTP (bytes on the wire)",
    prepare=_prepare,
    run=_run,
    arms=tuple(
        ExtraArm(
            label=coding,
            title=f"{coding} only",
            run=lambda coding=coding: _run(True, coding),
        )
        for coding in ("gzip", "zstd")
    ),
    hold=holds.COMPRESSION,
    targets=(
        Target(f"on.metrics.{SHARE}.p50", at_most=0.40, label="on the wire / identity (60 % less)"),
    ),
    notes="Over HTTP to a gunicorn of one worker, one exchange per run with Connection: close. "
    "Bytes are the response's on the wire (status line, headers, body as encoded) less the "
    f"bench's own headers (`{INSTRUMENTATION_BYTES}`); the answer "
    f"is the decoded body. `{CPU_MS}` is the server's CPU for the coding alone.",
)
