"""Three pages that show a derived value, each read from its stored copy (on) or computed by
the page's own queries (off): the product list's ratings, a review list's author names, and
an order history's totals."""

from django.db.models import Count

from catalog.models import Review
from orders.models import Order
from shop.bench.scenario import Call, Scenario

_ids: dict[str, object] = {}


def _prepare() -> None:
    # The most reviewed product and the customer with the most orders: the longest lists.
    _ids["product"] = (
        Review.objects.values("product_id")
        .annotate(reviews=Count("id"))
        .order_by("-reviews", "product_id")
        .first()["product_id"]
    )
    _ids["customer"] = (
        Order.objects.values("user__username")
        .annotate(orders=Count("id"))
        .order_by("-orders", "user__username")
        .first()["user__username"]
    )


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
