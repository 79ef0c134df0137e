"""One order placed while the payment gateway takes 200 ms, with the gateway call inside the
stock transaction (off) and outside it (on).

Alone, a buyer waits for the gateway either way: the two sides take about the same time, and
that is the point of this pair, that the technique costs a lone request nothing (the same
statements, in two short transactions instead of one). What it buys shows only when buyers of the
same item overlap, which needs orders that really commit: `manage.py bench_contention` runs
that (shop/bench/gateway_contention.py), and the chapter quotes it.

The gateway is a stub of its own on loopback with GATEWAY_LATENCY_MS, started in `prepare` and
stopped in `after`, so the figures do not depend on the latency the local stack's stub has.
"""

from django.conf import settings

from shop import payment_gateway_stub
from shop.bench import holds
from shop.bench.scenario import Call, Scenario
from shop.bench.scenarios.bulk_writes import order_answer

GATEWAY_LATENCY_MS = 200
CUSTOMER = "user1"
LINES = 2

_state: dict = {}


def _prepare() -> None:
    from catalog.models import Variant

    after()
    variants = Variant.objects.filter(product__is_active=True, stock__gte=1).order_by("id")
    _state["skus"] = list(variants.values_list("sku", flat=True)[:LINES])
    stub = payment_gateway_stub.GatewayStub(latency_s=GATEWAY_LATENCY_MS / 1000)
    running = payment_gateway_stub.running(stub)
    _state["previous_url"] = settings.PAYMENT_GATEWAY_URL
    settings.PAYMENT_GATEWAY_URL = running.__enter__()
    _state["running"] = running


def _call() -> Call:
    items = [{"sku": sku, "quantity": 1} for sku in _state["skus"]]
    return Call("POST", "/api/orders/", data={"items": items}, user=CUSTOMER)


def after() -> list[str]:
    """Stop this scenario's gateway and point the settings back at the usual one."""
    running = _state.pop("running", None)
    if running is None:
        return []
    running.__exit__(None, None, None)
    settings.PAYMENT_GATEWAY_URL = _state.pop("previous_url")
    return ["stopped the 200 ms stub gateway"]


SCENARIO = Scenario(
    name="short_transactions",
    title=f"place an order, {GATEWAY_LATENCY_MS} ms payment gateway, one buyer",
    prepare=_prepare,
    call=_call,
    writes=True,
    answer=order_answer,
    # Held on so the stock and row writes are the same few statements on both sides.
    hold=holds.SHORT_TRANSACTIONS,
    notes=(
        "A lone buyer waits for the gateway either way; concurrent buyers of the same item are "
        "measured by `manage.py bench_contention` (orders committed for real)."
    ),
)
