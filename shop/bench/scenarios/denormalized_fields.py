"""Three pages that show a derived value, each read from its stored copy (on) or computed by
the page's own queries (off): the product list's ratings, a review list's author names, and
an order history's totals. And what keeping the copies costs a write: a new review.

The toggle switches the reads only; the database triggers keep the copies on every write.
So for the write's off side, `before(False)` disables catalog_review's upkeep triggers (ALTER
TABLE ... DISABLE TRIGGER; a review's INSERT fires two of them), and `before(True)` and
`after()` enable every upkeep trigger again. Only catalog_review: ALTER TABLE locks its table
(ACCESS EXCLUSIVE) until it commits, and auth_user (read by every token request) and
orders_orderitem keep their upkeep for anyone writing to them meanwhile.
The runs happen in blocks, reads included: a read fires no trigger, so the reads measure
the same either way. Every write run is rolled back, so the bench writes nothing while they
are off; if the process dies in between, the next bench's start-up calls `after()`, and
`manage.py denormalized_check` would find any review written meanwhile by someone else.
Before anything is timed, `_review_prepare()` checks that `before()` does what the off side
claims: a review inserted after `before(False)` leaves the product's stored count alone.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpResponse

from catalog import services
from catalog.models import Product
from shop.bench import holds
from shop.bench.dataset import busiest_username, most_reviewed_product
from shop.bench.scenario import Call, Scenario
from shop.bench.statements import expect
from shop.techniques import denormalized_fields

TECHNIQUE = "denormalized_fields"
# What the measured write (a review INSERT) fires: the off side disables only these.
WRITE_TABLES = ["catalog_review"]

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
    for enabled in (False, True):
        added = _review_count_added(enabled)
        expect(
            added == int(enabled),
            TECHNIQUE,
            f"after before({enabled}) a new review added {added} to the stored review_count",
        )


def _review_count_added(enabled: bool) -> int:
    """What one review, written after `before(enabled)`, adds to its product's stored
    review_count. All inside one transaction rolled back: the review and the ALTER TABLE
    (PostgreSQL's DDL is transactional) are undone, whatever state the triggers were in."""
    product_id, author = _reviewer["product_id"], _reviewer["username"]
    stored = Product.objects.filter(pk=product_id).values_list("review_count", flat=True)
    with transaction.atomic():
        before(enabled)  # first: ALTER TABLE refuses a table with pending trigger events
        count = stored.get()
        services.review_create(
            product_id=product_id,
            author=get_user_model().objects.get(username=author),
            **REVIEW,
        )
        added = stored.get() - count
        transaction.set_rollback(True)
    return added


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
    hold=holds.DENORMALIZED_FIELDS,  # cache_aside off: the page is built every time
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
        notes="Off, the INSERT runs with catalog_review's upkeep triggers disabled (checked before "
        "timing); on, the triggers copy "
        "the author's name under a row lock and recompute the product's rating and count "
        "from all its reviews. Same queries from Django both ways: the work is inside the INSERT.",
    ),
]


def before(enabled: bool) -> None:
    if enabled:
        denormalized_fields.upkeep_triggers(enabled=True)
    else:
        denormalized_fields.upkeep_triggers(enabled=False, tables=WRITE_TABLES)


def after() -> list[str]:
    """Safe to call at any time: enables every upkeep trigger that is disabled, on any table,
    and returns their names."""
    return denormalized_fields.upkeep_triggers(enabled=True)
