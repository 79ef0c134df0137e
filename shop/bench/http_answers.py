"""Verify before measuring, over HTTP: one answer per side, compared as in-process.

Before a side's requests are timed, its request is sent once more, untimed, and the answer is
kept: the status, and what the scenario's `answer` callable makes of the response (by default
the body, JSON decoded when JSON). That callable expects a Django `HttpResponse`, so one is
built from the HTTP response's status, headers and body; the same callable then serves both
transports. The two answers go through `shop.bench.answers.compare`, as the in-process pairs'
first answers do, so a difference reads the same way: `answer.results[3].price: ... off, ... on`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import urllib3
from django.http import HttpResponse

from shop.bench.http_request import send
from shop.bench.measure import Prepared, default_answer
from shop.bench.open_loop import error_kind
from shop.bench.samples import Sample

# Set by the transport, not by the application: left out of the rebuilt response, where
# Django would otherwise keep a `chunked` that no longer describes the body it holds.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding"}


class NoAnswer(Exception):
    """The request meant to fetch a side's answer got none (refused, reset, timed out)."""


def response_of(status: int, headers: urllib3.HTTPHeaderDict, body: bytes) -> HttpResponse:
    """The HTTP response as the `HttpResponse` a scenario's `answer` callable receives
    in-process (there, a streamed body also arrives whole, in a plain `HttpResponse`)."""
    kept = {name: value for name, value in headers.items() if name.lower() not in _HOP_BY_HOP}
    return HttpResponse(body, status=status, headers=kept)


def fetch(
    pool: urllib3.PoolManager,
    url: str,
    prepared: Prepared,
    headers: dict[str, str],
    *,
    answer: Callable[[HttpResponse], Any] | None,
    timeout_s: float,
) -> Sample:
    """Send the request once, read the whole body, and keep its answer (not its time)."""
    try:
        response = send(pool, url, prepared, headers, timeout_s=timeout_s)
    except urllib3.exceptions.HTTPError as exc:
        raise NoAnswer(error_kind(exc)) from exc
    readable = response_of(response.status, response.headers, response.data)
    return Sample(
        ms=0.0,  # untimed
        queries={},
        bytes=len(response.data),
        status=response.status,
        answer=(answer or default_answer)(readable),
    )
