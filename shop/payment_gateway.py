"""The client of the payment gateway: charge an amount once per idempotency key, with timeouts.

Every call has a connect and a read timeout (PAYMENT_GATEWAY_TIMEOUT_S): a gateway that stops
answering costs a request that long, never a hung worker. Every failure becomes one of three
errors, each a clear API answer (shop.api_errors renders DomainError):

    PaymentDeclined     402  the gateway answered no (a declined card)
    GatewayUnavailable  502  it could not be reached, or answered something unusable
    GatewayTimeout      504  no answer in time: the charge may or may not have been taken, so
                             the caller voids it by its key (`void`) before giving up on it

and, with the circuit_breaker technique on, a fourth that is no call at all:

    GatewayCircuitOpen  503  the gateway failed often enough lately that the charge was not
                             sent (shop/techniques/circuit_breaker.py); Retry-After says when
                             to try again

Each charge goes out through `circuit_breaker.call`: timeouts, refused connections and 5xx
answers count as the gateway's failures; a declined card (402) is an answer, not a failure.
`void` does not go through the breaker: it follows a charge that was sent and timed out, and
whether that charge is taken must be settled even while the breaker opens.

The idempotency key is what makes a retry safe: the gateway charges a key once and answers a
repeat with the first answer. The local stub (shop/payment_gateway_stub.py) keeps that promise.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal

import urllib3
from django.conf import settings

from shop.errors import DomainError
from shop.techniques import circuit_breaker

logger = logging.getLogger(__name__)

# One pool of keep-alive connections per process, shared by threads (urllib3's is thread-safe).
# maxsize: as many connections as a process's concurrent requests (gunicorn threads, bench buyers).
_http = urllib3.PoolManager(maxsize=32, retries=False)


class PaymentError(DomainError):
    """The charge was not taken (after a timeout: voided, see `void`)."""


class PaymentDeclined(PaymentError):
    status = 402
    code = "payment_declined"


class GatewayUnavailable(PaymentError):
    status = 502
    code = "payment_gateway_unavailable"


class GatewayTimeout(PaymentError):
    status = 504
    code = "payment_gateway_timeout"


class GatewayCircuitOpen(PaymentError):
    status = 503
    code = "payment_gateway_circuit_open"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


BREAKER = "payment_gateway"  # the name of its circuit breaker


@dataclass(frozen=True)
class Charge:
    reference: str  # the gateway's id of the charge
    status: str  # "captured"
    replayed: bool  # the gateway had this key already and answered with its first answer


def charge(*, idempotency_key: str, amount: Decimal, currency: str = "EUR") -> Charge:
    """Take `amount`, once for `idempotency_key`, or raise a PaymentError."""
    url = f"{settings.PAYMENT_GATEWAY_URL.rstrip('/')}/v1/charges"
    body = json.dumps({"amount": str(amount), "currency": currency}).encode()
    try:
        response = circuit_breaker.call(
            BREAKER,
            lambda: _http.request(
                "POST",
                url,
                body=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
                timeout=_timeout(),
            ),
            errors=(urllib3.exceptions.HTTPError,),
            failed=lambda response: response.status >= 500,
        )
    except circuit_breaker.Open as exc:
        raise GatewayCircuitOpen(
            "The payment gateway is failing; payments are paused for a moment. Nothing was "
            f"charged. Try again in {exc.retry_after} s.",
            retry_after_s=exc.retry_after,
        ) from exc
    except urllib3.exceptions.NewConnectionError as exc:  # refused: a subclass of timeouts
        logger.warning("payment gateway unreachable at %s: %s", url, exc)
        raise GatewayUnavailable("The payment gateway could not be reached.") from exc
    except urllib3.exceptions.TimeoutError as exc:
        raise GatewayTimeout(
            f"The payment gateway did not answer within {settings.PAYMENT_GATEWAY_TIMEOUT_S:g} s."
        ) from exc
    except urllib3.exceptions.HTTPError as exc:
        logger.warning("payment gateway unreachable at %s: %s", url, exc)
        raise GatewayUnavailable("The payment gateway could not be reached.") from exc
    data = _json(response)
    if response.status in (200, 201) and data.get("status") == "captured":
        return Charge(
            reference=str(data.get("id", "")),
            status="captured",
            replayed=response.headers.get("Idempotent-Replayed") == "true",
        )
    if response.status == 402:
        raise PaymentDeclined(
            "The payment was declined; nothing was charged.", reason=data.get("code", "declined")
        )
    logger.warning("payment gateway answered %s: %r", response.status, data)
    raise GatewayUnavailable(f"The payment gateway answered {response.status}.")


def void(*, idempotency_key: str) -> bool:
    """Make sure the charge under the key is never taken (after a timeout, when nobody knows
    whether it was). Best effort: False, and a warning, when the gateway cannot be told."""
    url = f"{settings.PAYMENT_GATEWAY_URL.rstrip('/')}/v1/charges/{idempotency_key}/void"
    try:
        response = _http.request("POST", url, timeout=_timeout())
    except urllib3.exceptions.HTTPError as exc:
        logger.warning("could not void charge %s: %s", idempotency_key, exc)
        return False
    return response.status == 200


def _timeout() -> urllib3.Timeout:
    seconds = settings.PAYMENT_GATEWAY_TIMEOUT_S
    return urllib3.Timeout(connect=min(seconds, 1.0), read=seconds)


def _json(response: urllib3.BaseHTTPResponse) -> dict:
    try:
        data = json.loads(response.data or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
