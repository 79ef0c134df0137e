"""Placing an order with as many lines as an order may have: ORDER_MAX_LINES, 100 by default.

The checks this technique changes cost O(n²) off and O(n) on, so the gap grows with the number
of lines, and at the default 100 it is well under a millisecond. Rather than an endpoint that
exists only for the benchmark, the scenario stays a real order and follows the real limit:
`ORDER_MAX_LINES=2000 python manage.py bench algorithmic_complexity` shows the curve through
the whole request. The chapter has the same checks timed on their own at 100, 1,000 and 10,000.
"""

from django.conf import settings

from catalog.models import Variant
from shop.bench.scenario import Call, Scenario
from shop.bench.scenarios.bulk_writes import order_answer

CUSTOMER = "user1"

_skus: list[str] = []


def _prepare() -> None:
    # Distinct SKUs of active products, the most an order may hold; every seeded variant has
    # at least 50 in stock, so each line of 1 is always available.
    variants = Variant.objects.filter(product__is_active=True, stock__gte=1).order_by("id")
    _skus[:] = variants.values_list("sku", flat=True)[: settings.ORDER_MAX_LINES]


def _call() -> Call:
    items = [{"sku": sku, "quantity": 1} for sku in _skus]
    return Call("POST", "/api/orders/", data={"items": items}, user=CUSTOMER)


SCENARIO = Scenario(
    name="algorithmic_complexity",
    title=f"place an order with {settings.ORDER_MAX_LINES} lines (ORDER_MAX_LINES)",
    prepare=_prepare,
    call=_call,
    writes=True,
    answer=order_answer,
    # bulk_writes on: a statement per line (its naive path) would hide the Python work this
    # technique changes. No other technique's code stands in for the nested loops.
    hold={"bulk_writes": True},
    notes="The gap grows with the number of lines (O(n²) against O(n)): raise "
    "ORDER_MAX_LINES to see it grow.",
)
