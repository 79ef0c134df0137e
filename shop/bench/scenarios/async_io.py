"""A shipping estimate from three carriers answering after 100, 200 and 300 ms, asked one after
another (off) or all at once (on).

The carriers are stubs of this scenario's own on loopback (shop/carrier_stub.py), started in
`prepare` on free ports and stopped in `after`, so the figures do not depend on the local
stack's carriers. Off should take about the sum (600 ms), on about the slowest (300 ms).

In-process, the bench's test client is Django's sync handler: it runs the async view on an
event loop of its own per request (`async_to_sync`), as gunicorn's WSGI workers would. The
three calls overlap just the same; what that adds per request (a thread and a loop) is in the on
side's figure. Under the ASGI server (uvicorn, the `asgi` process) the view runs on the
server's loop instead: `manage.py bench async_io --http --url http://127.0.0.1:8001` measures it
there (docs/techniques/async_io.md).
"""

from django.conf import settings

from shop import carrier_stub
from shop.bench.scenario import Call, Scenario
from shop.bench.targets import Target

LATENCIES_MS = {"rapid": 100, "national": 200, "economy": 300}
QUERY = "country=de&postcode=10115&weight_grams=1200"

_state: dict = {}


def _prepare() -> None:
    after()
    stubs = [
        carrier_stub.CarrierStub(name, latency_s=latency / 1000)
        for name, latency in LATENCIES_MS.items()
    ]
    running = carrier_stub.running(*stubs)
    _state["previous"] = settings.SHIPPING_CARRIERS
    settings.SHIPPING_CARRIERS = running.__enter__()
    _state["running"] = running


def _call() -> Call:
    return Call("GET", f"/api/shipping/quotes/?{QUERY}")


def after() -> list[str]:
    """Stop this scenario's carriers and point the settings back at the usual ones."""
    running = _state.pop("running", None)
    if running is None:
        return []
    running.__exit__(None, None, None)
    settings.SHIPPING_CARRIERS = _state.pop("previous")
    return ["stopped the 100/200/300 ms stub carriers"]


SCENARIO = Scenario(
    name="async_io",
    title="shipping estimate, three carriers at 100, 200 and 300 ms",
    prepare=_prepare,
    call=_call,
    repeat=10,  # 0.9 s a pair; the spread is the stubs' sleep, not the shop
    targets=(
        Target("on.p50_ms", at_most=350, label="on, p50: about the slowest carrier (300 ms)"),
        Target("off.p50_ms", at_least=600, label="off, p50: the sum of the three"),
    ),
    notes=(
        "In-process the async view runs under Django's sync handler, an event loop per request; "
        "`bench async_io --http --url` against the ASGI server measures it under uvicorn."
    ),
)
