"""Placing an order with as many lines as an order may have: ORDER_MAX_LINES, 100 by default.

The checks this technique changes cost O(n²) off and O(n) on, so the gap grows with the number
of lines, and at the default 100 it is well under a millisecond. Rather than an endpoint that
exists only for the benchmark, the scenario stays a real order and follows the real limit:
`ORDER_MAX_LINES=2000 python manage.py bench algorithmic_complexity` shows one larger point,
and `manage.py bench --sweep algorithmic_complexity` the curve from 10 to 10,000 lines. The chapter has the same checks timed on their own at 100, 1,000 and 10,000.
"""

from dataclasses import replace

from django.conf import settings

from catalog.models import Variant
from shop.bench import holds
from shop.bench.scenario import Call, Scenario
from shop.bench.scenarios.bulk_writes import order_answer
from shop.bench.sweep import Sweep

CUSTOMER = "user1"

_skus: list[str] = []


def _available():
    return Variant.objects.filter(product__is_active=True, stock__gte=1).order_by("id")


def _prepare(lines: int | None = None) -> None:
    # Distinct SKUs of active products, the most an order may hold; every seeded variant has
    # at least 50 in stock, so each line of 1 is always available.
    lines = settings.ORDER_MAX_LINES if lines is None else lines
    _skus[:] = _available().values_list("sku", flat=True)[:lines]


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
    hold=holds.ALGORITHMIC_COMPLEXITY,
    notes="The gap grows with the number of lines (O(n²) against O(n)): raise "
    "ORDER_MAX_LINES to see it grow.",
)


# --- the sweep: orders of 10, 100, 1,000 and 10,000 lines --------------------------------------
# Off, the checks cost O(n²); on, O(n); the rest of placing an order (the insert of every line,
# the response) is O(n) on both sides. Past ORDER_MAX_LINES the API refuses the order (400),
# so for those points the bench raises the limit in its own process, and after() puts it
# back: every point is the same real request, only longer. A 10,000-line order takes seconds
# a run off, so the long points run fewer times.
_limit: list[int] = []  # the limit as it was before the sweep raised it, while raised


def _raise_limit(lines: int) -> None:
    if lines > settings.ORDER_MAX_LINES:
        if not _limit:
            _limit.append(settings.ORDER_MAX_LINES)
        settings.ORDER_MAX_LINES = lines


def after() -> list[str]:
    """The limit back, when the sweep raised it; returns what it restored."""
    if not _limit:
        return []
    settings.ORDER_MAX_LINES = _limit.pop()
    return [f"ORDER_MAX_LINES back to {settings.ORDER_MAX_LINES}"]


def _scenario_at(lines: int) -> Scenario:
    def prepare() -> None:
        _raise_limit(lines)
        _prepare(lines)

    return replace(
        SCENARIO,
        title=f"place an order with {lines:,} lines",
        prepare=prepare,
        repeat=None if lines <= 100 else 5 if lines <= 1_000 else 3,
    )


SWEEP = Sweep(
    axis="lines in the order",
    points=(10, 100, 1_000, 10_000),
    scenario_at=_scenario_at,
    # As many distinct in-stock SKUs as lines, or the point is skipped.
    fit=lambda lines: lines if _available()[:lines].count() == lines else None,
    shape="off: quadratic in the lines (the checks), on: linear (the inserts and the response)",
)
