"""The order history's first page: 50 orders with their items, for the customer with the most
orders (402 on the medium data set)."""

from orders.models import Order
from shop.bench.dataset import busiest_username
from shop.bench.scenario import Call, Scenario
from shop.bench.statements import expect, lazy_sql, sent

TECHNIQUE = "prefetch_related"
# The naive code is lazy model access: the serializer reads `order.items.all()` and Django
# runs `SELECT ... WHERE order_id = %s` for it. fast_serialization (on by default) would stand
# in for that with its own per-row values() query (and, on, an `= ANY(array)` query instead of
# Django's prefetch), so it is held off: both sides build model instances and go through DRF's
# serializer, and only the prefetch differs.
HOLD = {"fast_serialization": False}


def _call() -> Call:
    return Call("GET", "/api/orders/?page_size=50", user=busiest_username())


def _prepare() -> None:
    """Off must send one lazy items query per order on the page; on, none of them."""
    order = Order.objects.first()
    if order is None:
        return  # no orders: both sides send the same query, nothing to verify
    lazy = lazy_sql(order, "items")
    off = sent(_call(), {**HOLD, TECHNIQUE: False})
    on = sent(_call(), {**HOLD, TECHNIQUE: True})
    expect(off.times(lazy) == off.rows, TECHNIQUE, f"off sent {off.times(lazy)} of {lazy!r}")
    expect(on.times(lazy) == 0, TECHNIQUE, f"on still sent {lazy!r}")
    expect(
        len(off.statements) == len(on.statements) - 1 + off.rows,
        TECHNIQUE,
        f"off sent {len(off.statements)} queries, on {len(on.statements)}: not 1 + N against 2",
    )


SCENARIO = Scenario(
    name=TECHNIQUE,
    title="order history, 50 orders with their items",
    prepare=_prepare,
    call=_call,
    hold=HOLD,
    notes="fast_serialization is held off: its values() path would replace the lazy "
    "`order.items.all()` that is the naive code here. Checked before timing: off sends one "
    "items query per order.",
)
