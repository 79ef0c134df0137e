"""The order history's first page: 50 orders with their items, for the customer with the most
orders (402 on the medium data set)."""

from shop.bench.dataset import busiest_username
from shop.bench.scenario import Call, Scenario

SCENARIO = Scenario(
    name="prefetch_related",
    title="order history, 50 orders with their items",
    call=lambda: Call("GET", "/api/orders/?page_size=50", user=busiest_username()),
)
