"""Read values the writes keep stored, instead of JOINing or aggregating them on every read.

Three values the API shows can be derived from other rows at read time, or read from a
copy stored next to the row that shows them (docs/data.md lists who keeps each copy right):

| value                      | off: computed on every read          | on: the stored copy      |
|----------------------------|--------------------------------------|--------------------------|
| a review's author name     | JOIN auth_user, `username`           | `Review.author_username` |
| a product's rating, count  | `AVG`/`COUNT` over its reviews       | `Product.rating_avg`, `review_count` |
| an order's units, total    | `SUM` over its items                 | `Order.item_count`, `total_amount` |

Off, every page of products JOINs the reviews table and GROUPs BY product, and so does the
page's `COUNT(*)`; on, it reads two columns of the product row. The price is paid on
writes: `catalog.services.review_create` locks the product row, inserts the review, then
recomputes and updates both columns, where a plain insert would do.

Each function annotates the queryset under a name of its own (`average_rating`, ...) and the
serializers read that name: Django refuses an annotation named like a model field, and the
two paths must feed the same serializer field. The computed path rounds and types exactly as
the writes do, so the JSON is byte-identical either way.
"""

from decimal import Decimal

from django.db.models import Avg, Count, DecimalField, F, QuerySet, Sum
from django.db.models.functions import Coalesce, Round

from shop import toggles

TOGGLE = toggles.register(
    "denormalized_fields",
    group="data_access",
    description="Read stored copies (author name, rating, order totals) instead of JOIN/aggregate",
)

# The types of the stored columns: the computed values are cast to the same.
RATING = DecimalField(max_digits=3, decimal_places=2)
AMOUNT = DecimalField(max_digits=12, decimal_places=2)


def review_author(reviews: QuerySet) -> QuerySet:
    """Annotate `author_name`: the username shown with each review."""
    if not toggles.is_enabled(TOGGLE.name):
        return reviews.annotate(author_name=F("author__username"))  # naive: JOIN auth_user
    return reviews.annotate(author_name=F("author_username"))


def product_rating(products: QuerySet) -> QuerySet:
    """Annotate `average_rating` (rounded half up to 2 places, 0.00 without reviews) and
    `rating_count`."""
    if not toggles.is_enabled(TOGGLE.name):
        # naive: LEFT JOIN the reviews and GROUP BY product. AVG over integers is an exact
        # numeric in PostgreSQL, and ROUND(numeric, 2) rounds half away from zero, as the
        # write path's Decimal quantize(ROUND_HALF_UP) does: 4.025 is 4.03 both ways.
        average = Round(Avg("reviews__rating", output_field=DecimalField()), 2)
        return products.annotate(
            average_rating=Coalesce(average, Decimal("0.00"), output_field=RATING),
            rating_count=Count("reviews"),
        )
    return products.annotate(average_rating=F("rating_avg"), rating_count=F("review_count"))


def order_totals(orders: QuerySet) -> QuerySet:
    """Annotate `unit_count` (units, not lines) and `order_total`."""
    if not toggles.is_enabled(TOGGLE.name):
        # naive: JOIN the items and GROUP BY order.
        return orders.annotate(
            unit_count=Coalesce(Sum("items__quantity"), 0),
            order_total=Coalesce(
                Sum(F("items__unit_price") * F("items__quantity")),
                Decimal("0.00"),
                output_field=AMOUNT,
            ),
        )
    return orders.annotate(unit_count=F("item_count"), order_total=F("total_amount"))
