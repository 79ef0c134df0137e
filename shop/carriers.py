"""The clients of the shipping carriers' quote APIs (settings.SHIPPING_CARRIERS), with a time
limit on every call: a blocking one (`quote`) and an asyncio one (`aquote`), which send the same
request and read the answer the same way, so the async_io technique compares only how the calls
are scheduled.

A call never raises for the carrier's sake: it returns the carrier's `Quote`, or a `Failure`
saying why there is none (`timeout`, `unreachable`, `error`), so one carrier's trouble costs the
customer that carrier's quote, not the page. Locally the carriers are stubs on loopback
(shop/carrier_stub.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation

import httpx
from django.conf import settings

from shop.errors import DomainError

logger = logging.getLogger(__name__)

REASONS = ("timeout", "unreachable", "error")


@dataclass(frozen=True)
class Destination:
    country: str  # ISO 3166-1 alpha-2, upper case
    postcode: str


@dataclass(frozen=True)
class Quote:
    carrier: str
    service: str
    price: Decimal
    currency: str
    days: int


@dataclass(frozen=True)
class Failure:
    carrier: str
    reason: str  # one of REASONS
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


Result = Quote | Failure


class CarriersUnavailable(DomainError):
    """No carrier answered: there is no price to show, and retrying later may find one."""

    status = 503
    code = "carriers_unavailable"


def configured() -> dict[str, str]:
    """Carrier name → base URL, in the order the answers list them."""
    return dict(settings.SHIPPING_CARRIERS)


def timeout_s() -> float:
    return settings.CARRIER_TIMEOUT_S


def timeout() -> httpx.Timeout:
    """httpx's limits apply to each phase (connect, each read...): the per-call total is
    enforced by the callers (`aquote`'s asyncio.timeout); the stubs send their answer in one
    piece, so for them the read limit is the total."""
    return httpx.Timeout(timeout_s())


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One for the process: httpx builds one per client otherwise, loading the CA bundle each
    time (about 20 ms here), which a client per request would pay on every estimate."""
    return ssl.create_default_context()


def client_options() -> dict:
    """What both clients are built with, so the two sides differ only in how they wait."""
    return {"timeout": timeout(), "verify": ssl_context()}


def _body(destination: Destination, weight_grams: int) -> dict:
    return {
        "country": destination.country,
        "postcode": destination.postcode,
        "weight_grams": weight_grams,
    }


def quote(
    client: httpx.Client, *, carrier: str, url: str, destination: Destination, weight_grams: int
) -> Result:
    """Ask one carrier, blocking until it answers or its time is up."""
    try:
        response = client.post(f"{url.rstrip('/')}/quote", json=_body(destination, weight_grams))
    except httpx.TimeoutException:
        return _timed_out(carrier)
    except httpx.HTTPError as exc:
        return _unreachable(carrier, url, exc)
    return _read(carrier, response)


async def aquote(
    client: httpx.AsyncClient,
    *,
    carrier: str,
    url: str,
    destination: Destination,
    weight_grams: int,
) -> Result:
    """Ask one carrier without blocking the event loop; at most `timeout_s()` in all."""
    try:
        async with asyncio.timeout(timeout_s()):
            response = await client.post(
                f"{url.rstrip('/')}/quote", json=_body(destination, weight_grams)
            )
    except (TimeoutError, httpx.TimeoutException):
        return _timed_out(carrier)
    except httpx.HTTPError as exc:
        return _unreachable(carrier, url, exc)
    return _read(carrier, response)


def _timed_out(carrier: str) -> Failure:
    return Failure(carrier, "timeout", f"no answer within {timeout_s():g} s")


def _unreachable(carrier: str, url: str, exc: Exception) -> Failure:
    logger.warning("carrier %s unreachable at %s: %s", carrier, url, exc)
    return Failure(carrier, "unreachable", "could not connect")


MAX_PRICE = Decimal("1e8")  # the answer's price field: max_digits=10, decimal_places=2
MAX_DAYS = 365


def _read(carrier: str, response: httpx.Response) -> Result:
    try:
        data = json.loads(response.content or b"{}")
    except ValueError:
        data = None
    if response.status_code != 200 or not isinstance(data, dict):
        logger.warning("carrier %s answered %s", carrier, response.status_code)
        return Failure(carrier, "error", f"answered HTTP {response.status_code}")
    try:
        quote = Quote(
            carrier=carrier,
            service=str(data["service"]),
            price=Decimal(str(data["price"])),
            currency=str(data["currency"]),
            days=int(data["days"]),
        )
        # Another company's answer: a price or a delay the response's fields cannot hold
        # (NaN, Infinity, 1e20) is as unusable as a missing one.
        if not (quote.price.is_finite() and 0 <= quote.price < MAX_PRICE):
            raise ValueError(quote.price)
        if not 0 <= quote.days <= MAX_DAYS:
            raise ValueError(quote.days)
        return quote
    except (KeyError, TypeError, ValueError, OverflowError, InvalidOperation):
        logger.warning("carrier %s answered an unusable quote: %r", carrier, data)
        return Failure(carrier, "error", "answered an unusable quote")
