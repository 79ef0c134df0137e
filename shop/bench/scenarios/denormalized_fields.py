"""Three pages that show a derived value, each read from its stored copy (on) or computed by
the page's own queries (off): the product list's ratings, a review list's author names, and
an order history's totals."""

from catalog.selectors import most_reviewed_product_id
from orders.selectors import busiest_customer
from shop.bench.scenario import Call, Scenario

_ids: dict[str, object] = {}


def _prepare() -> None:
    # The most reviewed product and the customer with the most orders: the longest lists.
    product_id, busiest = most_reviewed_product_id(), busiest_customer()
    if product_id is None or busiest is None:
        raise LookupError("no reviews or no orders: seed the database first")
    _ids["product"] = product_id
    _ids["customer"] = busiest[0].username


SCENARIO = Scenario(
    name="denormalized_fields",
    title="product list, 50 rows with rating and review count",
    call=lambda: Call("GET", "/api/products/?page_size=50"),
    notes="Off, the page and its COUNT(*) both JOIN the reviews and GROUP BY product. The "
    "write side pays instead: each new review locks its product and recomputes both columns.",
)

EXTRA_SCENARIOS = [
    Scenario(
        name="denormalized_fields",
        title="reviews of the most reviewed product, 50 rows with author names",
        prepare=_prepare,
        call=lambda: Call("GET", f"/api/products/{_ids['product']}/reviews/?page_size=50"),
        notes="Off, the page JOINs auth_user for each review's author name.",
    ),
    Scenario(
        name="denormalized_fields",
        title="order history, 50 orders with item count and total",
        prepare=_prepare,
        call=lambda: Call("GET", "/api/orders/?page_size=50", user=_ids["customer"]),
        notes="Off, the page and its COUNT(*) JOIN the order items and GROUP BY order.",
    ),
]
