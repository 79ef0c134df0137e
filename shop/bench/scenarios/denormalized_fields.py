"""Three pages that show a derived value, each read from its stored copy (on) or computed by
the page's own queries (off): the product list's ratings, a review list's author names, and
an order history's totals."""

from shop.bench.dataset import busiest_username, most_reviewed_product
from shop.bench.scenario import Call, Scenario

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
        call=lambda: Call("GET", f"/api/products/{most_reviewed_product()}/reviews/?page_size=50"),
        notes="Off, the page JOINs auth_user for each review's author name.",
    ),
    Scenario(
        name="denormalized_fields",
        title="order history, 50 orders with item count and total",
        call=lambda: Call("GET", "/api/orders/?page_size=50", user=busiest_username()),
        notes="Off, the page and its COUNT(*) JOIN the order items and GROUP BY order.",
    ),
]
