"""Three pages that show a derived value, each read from its stored copy (on) or computed by
the page's own queries (off): the product list's ratings, a review list's author names, and
an order history's totals. And what keeping the copies costs a write: a new review.

The toggle switches the reads only; the database triggers keep the copies on every write.
So for the write's off side, `before(False)` disables the upkeep triggers (ALTER TABLE ...
DISABLE TRIGGER; a review's INSERT fires two of them), and `before(True)` and `after()` enable
them again.
The runs happen in blocks, reads included: a read fires no trigger, so the reads measure
the same either way. Every write run is rolled back, so nothing is written while they are
off; if the process dies in between, the next bench's start-up calls `after()`, and
`manage.py denormalized_check` would find any row written meanwhile.
"""

from django.contrib.auth import get_user_model
from django.http import HttpResponse

from shop.bench.dataset import busiest_username, most_reviewed_product
from shop.bench.scenario import Call, Scenario
from shop.techniques import denormalized_fields

REVIEW = {"rating": 4, "title": "Measured", "body": "Written by the bench, then rolled back."}
_reviewer: dict[str, object] = {}


def _review_prepare() -> None:
    """The most reviewed product (its recompute reads the most reviews) and the first
    customer who has not reviewed it."""
    product_id = most_reviewed_product()
    reviewer = (
        get_user_model()
        .objects.filter(is_staff=False, is_active=True)
        .exclude(reviews__product_id=product_id)
        .order_by("id")
        .values_list("username", flat=True)
        .first()
    )
    if reviewer is None:
        raise LookupError(f"every customer has reviewed product {product_id}")
    _reviewer.update(product_id=product_id, username=reviewer)


def review_answer(response: HttpResponse) -> dict:
    """The status and the review as the API returned it, without its id and timestamp."""
    body = response.json()
    return {
        "status": response.status_code,
        "review": {key: value for key, value in body.items() if key not in {"id", "created_at"}},
    }


SCENARIO = Scenario(
    name="denormalized_fields",
    title="product list, 50 rows with rating and review count",
    call=lambda: Call("GET", "/api/products/?page_size=50"),
    notes="Off, the page and its COUNT(*) both JOIN the reviews and GROUP BY product. The "
    "writes pay instead: inside each review INSERT a trigger locks the product and recomputes "
    "both columns (the write-cost scenario measures it).",
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
    Scenario(
        name="denormalized_fields",
        title="write cost: a new review of the most reviewed product",
        prepare=_review_prepare,
        call=lambda: Call(
            "POST",
            f"/api/products/{_reviewer['product_id']}/reviews/",
            data=REVIEW,
            user=_reviewer["username"],
        ),
        writes=True,
        answer=review_answer,
        notes="Off, the INSERT runs with the upkeep triggers disabled; on, the triggers copy "
        "the author's name under a row lock and recompute the product's rating and count "
        "from all its reviews. Same queries from Django both ways: the work is inside the INSERT.",
    ),
]


def before(enabled: bool) -> None:
    denormalized_fields.upkeep_triggers(enabled=enabled)


def after() -> None:
    """Safe to call at any time: enables only what is disabled."""
    denormalized_fields.upkeep_triggers(enabled=True)
