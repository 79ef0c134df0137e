"""The order history's first page: 50 orders with their items, for the customer with the most
orders (402 on the medium data set)."""

from django.db.models import Count

from orders.models import Order
from shop.bench.scenario import Call, Scenario

_customer: dict[str, str] = {}


def _prepare() -> None:
    top = (
        Order.objects.values("user__username")
        .annotate(orders=Count("id"))
        .order_by("-orders", "user__username")
        .first()
    )
    _customer["username"] = top["user__username"]


SCENARIO = Scenario(
    name="prefetch_related",
    title="order history, 50 orders with their items",
    prepare=_prepare,
    call=lambda: Call("GET", "/api/orders/?page_size=50", user=_customer["username"]),
)
