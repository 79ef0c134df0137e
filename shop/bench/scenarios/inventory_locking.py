"""inventory_locking: one order alone, off against on, then rounds of 50 buyers racing for 10
units, off and with each strategy.

The pair (`SCENARIO`) is an order of one unit with nobody else buying: the naive
read-modify-write against the default strategy's conditional UPDATE, rolled back as every
writing scenario is. Alone, both sell what there is; the pair shows what each costs a single
request.

The arms are where they differ (shop/bench/contention.py): each run is one round of 50
concurrent buyers, committed, through the whole request path, on 10 units of a variant of its
own. They report `units_oversold` (units sold beyond the stock: expected above 0 off, 0 for
every strategy), the buyers' throughput and p95, and the attempts that were started over.
"""

from django.conf import settings

from catalog.models import Variant
from shop.bench import contention, holds
from shop.bench.scenario import Call, ExtraArm, Scenario
from shop.bench.scenarios.bulk_writes import order_answer
from shop.bench.targets import Target
from shop.techniques import inventory_locking

CUSTOMER = "user1"
_sku: list[str] = []


def _prepare() -> None:
    variant = Variant.objects.filter(product__is_active=True, stock__gte=1).order_by("id").first()
    _sku[:] = [variant.sku]


def _call() -> Call:
    return Call(
        "POST", "/api/orders/", data={"items": [{"sku": _sku[0], "quantity": 1}]}, user=CUSTOMER
    )


def after() -> list[str]:
    """Deletes what an interrupted round left: its variants and their orders."""
    return contention.cleanup()


def _arm(strategy: str | None) -> ExtraArm:
    on = strategy is not None
    name = strategy or settings.INVENTORY_LOCKING_STRATEGY
    return contention.arm(
        label=f"contended_{strategy or 'off'}",
        title=f"{contention.BUYERS} buyers, {'on: ' + strategy if on else 'off'}",
        flags={**holds.INVENTORY_LOCKING, inventory_locking.TOGGLE.name: on},
        settings={"INVENTORY_LOCKING_STRATEGY": name},
        username=CUSTOMER,
    )


_STRATEGIES = settings.INVENTORY_LOCKING_STRATEGIES
_OVERSOLD = "side.metrics.units_oversold.total"

SCENARIO = Scenario(
    name="inventory_locking",
    title="place an order of one unit, alone; then 50 buyers for 10 units",
    prepare=_prepare,
    call=_call,
    writes=True,
    answer=order_answer,
    # The order's other writes are the same on both sides: only how stock is taken differs.
    hold=holds.INVENTORY_LOCKING,
    arms=(_arm(None), *(_arm(strategy) for strategy in _STRATEGIES)),
    # Each run of an arm is a round of 50 requests: a few rounds say enough.
    repeat=5,
    targets=(
        Target(f"arms.contended_off.{_OVERSOLD}", at_least=1, label="off oversells"),
        *(
            Target(f"arms.contended_{s}.{_OVERSOLD}", at_most=0, label=f"{s} oversells")
            for s in _STRATEGIES
        ),
    ),
    notes="An arm's run is a round of 50 concurrent buyers, committed: its time is the "
    "round's; the buyers' own p95 and throughput are in its metrics.",
)
