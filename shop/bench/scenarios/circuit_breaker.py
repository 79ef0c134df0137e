"""One order placed while the payment gateway is down, with no breaker (off) and with the
breaker open (on).

"Down" is the worst kind of down: a gateway that accepts the connection and never answers in
time (a stub of its own on loopback whose charges take GATEWAY_LATENCY_S, past the client's
PAYMENT_GATEWAY_TIMEOUT_S). A refused port would fail in a millisecond on both sides and show
nothing; a hung gateway costs every naive call its full read timeout. Off, each order waits for
it (then voids the charge, the stub answering the void at once) and answers 504. On, `before`
opens the breaker (what CIRCUIT_BREAKER_FAILURES timeouts would do, without spending their
seconds untimed) and each order fails at once with 503 and Retry-After.

Both sides answer an error and leave nothing behind (short_transactions held on: the order is
written `pending`, then cancelled with its stock back). The status is compared by its class
(5xx): 504 against 503 is the contract change the catalog names. The answer compared is what
the database kept: the order cancelled, no stock taken, nothing charged. Each run also counts
the charges that reached the gateway (off 1, on 0) and the errors (1 a run on both sides: the
gateway is down either way; what the breaker changes is how long an error takes).

The sides time themselves (`run`): each sends the order through the full request path with
the bench's sender, in a transaction rolled back afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace
from decimal import Decimal
from time import perf_counter

import redis
from django.conf import settings

from shop import payment_gateway, payment_gateway_stub, toggles
from shop.bench import holds
from shop.bench.measure import Prepared, QueryCounter, Requester, send
from shop.bench.samples import Sample
from shop.bench.scenario import Call, Scenario
from shop.bench.targets import Target
from shop.techniques import circuit_breaker

CUSTOMER = "user1"
LINES = 2
# Past the client's read timeout (PAYMENT_GATEWAY_TIMEOUT_S, 3 s): every charge times out.
GATEWAY_LATENCY_S = 30.0
RUNS = 10  # a side: the off side's runs take the full timeout each (30 s of the 60 s budget)
AMOUNT = Decimal("19.90")
GATEWAY_CALLS = "gateway_calls"
ERRORS = "errors"

_state: dict = {}


def _prepare() -> None:
    from catalog.models import Variant

    after()
    variants = Variant.objects.filter(product__is_active=True, stock__gte=1).order_by("id")
    skus = list(variants.values_list("sku", flat=True)[:LINES])
    stub = payment_gateway_stub.GatewayStub(latency_s=GATEWAY_LATENCY_S)
    running = payment_gateway_stub.running(stub)
    _state["previous_url"] = settings.PAYMENT_GATEWAY_URL
    settings.PAYMENT_GATEWAY_URL = running.__enter__()
    _state.update(running=running, stub=stub)
    requester = Requester()
    _state["requester"] = requester
    call = Call(
        "POST",
        "/api/orders/",
        data={"items": [{"sku": sku, "quantity": 1} for sku in skus]},
        user=CUSTOMER,
    )
    _state["prepared"] = Prepared.of(call, requester)


def before(enabled: bool) -> None:
    """On: the breaker open, as the gateway's first timeouts left it; off: closed (the toggle
    is off then, so its state is not even read)."""
    circuit_breaker.reset(payment_gateway.BREAKER)
    if enabled:
        # Longer than a block of on runs lasts; each block opens it afresh.
        circuit_breaker.force_open(payment_gateway.BREAKER, seconds=60)


def _order_answer(response) -> dict:
    from orders.models import Order

    order = Order.objects.filter(pk=response.json().get("order_id")).first()
    return {
        "order": None if order is None else order.status,
        "stock taken": 0 if order is None or order.status == "cancelled" else order.item_count,
        "charged": _state["stub"].captured_count,
    }


def _run(enabled: bool) -> Sample:
    stub = _state["stub"]
    received = stub.received
    sample = send(
        _state["requester"],
        _state["prepared"],
        flags=SCENARIO.flags(enabled),
        writes=True,
        answer=_order_answer,
    )
    return replace(
        sample,
        status=sample.status // 100 * 100,  # compared by class: 504 off, 503 on
        metrics={
            **sample.metrics,
            GATEWAY_CALLS: stub.received - received,
            ERRORS: int(sample.status >= 500),
        },
    )


def _charge(enabled: bool) -> Sample:
    """The gateway call alone, as the order makes it (a timed-out charge voided): what the
    breaker itself costs, without the order's statements (which a busy database stretches)."""
    stub = _state["stub"]
    received = stub.received
    with toggles.override(**SCENARIO.flags(enabled)), QueryCounter() as counter:
        started = perf_counter()
        key = f"bench-{uuid.uuid4().hex}"
        try:
            payment_gateway.charge(idempotency_key=key, amount=AMOUNT)
            status = 201
        except payment_gateway.GatewayTimeout as exc:
            # As the order does (orders.services): else the hung charge is taken later.
            payment_gateway.void(idempotency_key=key)
            status = exc.status
        except payment_gateway.PaymentError as exc:
            status = exc.status
        elapsed_ms = (perf_counter() - started) * 1000
    return Sample(
        ms=elapsed_ms,
        queries=dict(counter.counts),
        bytes=0,
        status=status // 100 * 100,  # compared by class: 504 off, 503 on
        answer={"charged": stub.captured_count},
        metrics={GATEWAY_CALLS: stub.received - received, ERRORS: int(status >= 500)},
    )


def after() -> list[str]:
    """Close the breaker, stop this scenario's gateway, point the settings back."""
    done = []
    running = _state.pop("running", None)
    if running is not None:
        running.__exit__(None, None, None)
        settings.PAYMENT_GATEWAY_URL = _state.pop("previous_url")
        done.append("stopped the hung stub gateway")
    requester = _state.pop("requester", None)
    if requester is not None:
        requester.close()
    with contextlib.suppress(redis.RedisError):  # Redis down: nothing of ours is left there
        circuit_breaker.reset(payment_gateway.BREAKER)
    return done


SCENARIO = Scenario(
    name="circuit_breaker",
    title="place an order while the payment gateway hangs past its timeout",
    prepare=_prepare,
    run=_run,
    path="POST /api/orders/ (gateway hung; on: breaker open)",
    writes=True,
    repeat=RUNS,
    hold=holds.CIRCUIT_BREAKER,
    notes=(
        "Off waits the client's read timeout (PAYMENT_GATEWAY_TIMEOUT_S) and answers 504; on, "
        "with the breaker open, answers 503 and Retry-After at once. Status compared by class "
        "(5xx). Every run is an error on both sides: the gateway is down."
    ),
    targets=(
        Target("on.p95_ms", at_most=50, label="p95 while the breaker is open, ms"),
        Target(f"on.metrics.{GATEWAY_CALLS}.total", at_most=0, label="charges sent while open"),
        Target(
            f"off.metrics.{GATEWAY_CALLS}.p50", at_least=1, label="charges sent a run, no breaker"
        ),
    ),
)

EXTRA_SCENARIOS = [
    Scenario(
        name="circuit_breaker",
        title="the charge alone, while the payment gateway hangs",
        prepare=_prepare,
        run=_charge,
        path="CALL payment_gateway.charge() (gateway hung; on: breaker open)",
        repeat=RUNS,
        hold=holds.CIRCUIT_BREAKER,
        notes=(
            "No request, no database: the client's call through the breaker. Off it waits the "
            "read timeout; on, one Redis script (EVAL) answers that the breaker is open."
        ),
        targets=(
            Target("on.p95_ms", at_most=50, label="p95 of a charge while open, ms"),
            Target(f"on.metrics.{GATEWAY_CALLS}.total", at_most=0, label="charges sent while open"),
        ),
    ),
]
