"""The order history's first page: 50 orders with their items, for the customer with the most
orders (402 on the medium data set)."""

from orders.selectors import busiest_customer
from shop.bench.scenario import Call, Scenario

_customer: dict[str, str] = {}


def _prepare() -> None:
    busiest = busiest_customer()
    if busiest is None:
        raise LookupError("no orders: seed the database first")
    _customer["username"] = busiest[0].username


SCENARIO = Scenario(
    name="prefetch_related",
    title="order history, 50 orders with their items",
    prepare=_prepare,
    call=lambda: Call("GET", "/api/orders/?page_size=50", user=_customer["username"]),
)
