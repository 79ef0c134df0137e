"""A scenario's prepared request sent over HTTP with urllib3, as both HTTP paths send it: the
timed requests of a closed-loop side (shop.bench.http) and the untimed one that fetches its
answer (shop.bench.http_answers)."""

from __future__ import annotations

import urllib3

from shop.bench.measure import Prepared


def send(
    pool: urllib3.PoolManager,
    url: str,
    prepared: Prepared,
    headers: dict[str, str],
    *,
    timeout_s: float,
) -> urllib3.BaseHTTPResponse:
    """The whole body is read before this returns (urllib3 preloads it): part of the request's
    time. Raises urllib3's HTTPError when no answer came (refused, reset, timed out); the pool
    is made without retries, so that is the first attempt's fate."""
    return pool.request(
        prepared.method,
        url,
        body=prepared.body or None,
        headers=headers,
        timeout=urllib3.Timeout(total=timeout_s),
    )
