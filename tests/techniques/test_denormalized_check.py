"""`manage.py denormalized_check [--fix]` finds the drift of every stored copy, says which rows,
exits 1, and repairs all of it in one transaction."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from catalog.models import Product, Review
from orders.models import Order
from shop.perf_headers import parse_query_counts
from shop.techniques import denormalized_fields
from tests.factories import (
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    VariantFactory,
    review_by_service,
)

pytestmark = pytest.mark.django_db

COPIES = [
    "Review.author_username",
    "Product.rating_avg",
    "Product.review_count",
    "Order.item_count",
    "Order.total_amount",
]


@pytest.fixture
def shop():
    products = ProductFactory.create_batch(2)
    for product, ratings in zip(products, ((5, 4), (2,)), strict=True):
        for rating in ratings:
            review_by_service(product, rating)
    variant = VariantFactory(price=Decimal("3.50"))
    orders = [OrderFactory(lines=[(variant, n)]) for n in (1, 2)]
    return {"products": products, "orders": orders}


def _check(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("denormalized_check", *args, stdout=out)
        status = 0
    except SystemExit as exc:
        status = exc.code
    return status, out.getvalue()


def _counts() -> dict[str, int]:
    return {item.copy.name: item.rows for item in denormalized_fields.drift()}


def test_no_drift_exits_0(shop):
    status, out = _check()
    assert status == 0
    assert "no drift" in out
    assert _counts() == dict.fromkeys(COPIES, 0)


def test_each_copy_written_directly_is_found_and_fixed(shop):
    """A direct UPDATE of a stored column is drift: the triggers watch the sources only."""
    first, second = shop["products"]
    review = Review.objects.filter(product=first).order_by("id").first()
    Review.objects.filter(pk=review.pk).update(author_username="typo")
    Product.objects.filter(pk=first.pk).update(rating_avg=Decimal("1.11"))
    Product.objects.filter(pk=second.pk).update(review_count=7)
    Order.objects.filter(pk__in=[o.pk for o in shop["orders"]]).update(item_count=99)
    Order.objects.filter(pk=shop["orders"][1].pk).update(total_amount=Decimal("0.01"))

    status, out = _check()
    assert status == 1
    assert _counts() == {
        "Review.author_username": 1,
        "Product.rating_avg": 1,
        "Product.review_count": 1,
        "Order.item_count": 2,
        "Order.total_amount": 1,
    }
    assert f"id {review.pk}: stored 'typo', computed '{review.author.username}'" in out
    assert f"id {first.pk}: stored 1.11, computed 4.50" in out
    assert "drift: 6 rows. Run with --fix" in out

    status, out = _check("--fix")
    assert status == 0
    assert "repaired 6 rows" in out and out.rstrip().endswith("equals what it copies")
    assert _counts() == dict.fromkeys(COPIES, 0)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.rating_avg, first.review_count) == (Decimal("4.50"), 2)
    assert (second.rating_avg, second.review_count) == (Decimal("2.00"), 1)
    assert [(o.item_count, o.total_amount) for o in Order.objects.order_by("id")] == [
        (1, Decimal("3.50")),
        (2, Decimal("7.00")),
    ]
    assert Review.objects.get(pk=review.pk).author_username == review.author.username


def test_writes_with_the_triggers_disabled_are_found(shop):
    """What the triggers cannot cover: a table whose triggers are switched off. The DDL is
    rolled back with the test's transaction."""
    product = shop["products"][1]
    with connection.cursor() as cursor:
        # Run the deferred foreign key checks now: ALTER TABLE refuses pending trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE catalog_review DISABLE TRIGGER USER")
        cursor.execute("ALTER TABLE orders_orderitem DISABLE TRIGGER USER")
    review_by_service(product, 5)
    # A new order's item, with the items' trigger off: the order keeps its 0 and 0.00.
    new = OrderFactory()
    OrderItemFactory(order=new, variant=VariantFactory(price=Decimal("2.25")), quantity=2)
    Order.objects.filter(pk=shop["orders"][0].pk).update(item_count=5)  # direct, still found

    new.refresh_from_db()
    assert (new.item_count, new.total_amount) == (0, Decimal("0.00"))
    counts = _counts()
    assert counts["Product.rating_avg"] == counts["Product.review_count"] == 1
    assert counts["Order.item_count"] == 2  # the new order and the direct write
    assert counts["Order.total_amount"] == 1  # the new order
    status, _ = _check("--fix")
    assert status == 0
    assert _counts() == dict.fromkeys(COPIES, 0)
    new.refresh_from_db()
    assert (new.item_count, new.total_amount) == (2, Decimal("4.50"))


def test_fix_invalidates_the_cached_pages_of_the_products_it_repaired(
    shop, django_capture_on_commit_callbacks
):
    """A repaired rating is shown at once: the pages of the products repaired are deleted
    once the repair commits, and the lists move to a new generation. A product the repair did
    not touch keeps its cached page."""
    drifted, untouched = shop["products"]
    client = APIClient()

    def read(path):
        response = client.get(path, HTTP_X_PERF_TOGGLES="cache_aside=on,denormalized_fields=on")
        assert response.status_code == 200, response.content
        return response.json(), sum(parse_query_counts(response["X-DB-Queries"]).values())

    def listed(product):
        return {p["id"]: p["rating_avg"] for p in read("/api/products/")[0]["results"]}[product.pk]

    Product.objects.filter(pk=drifted.pk).update(rating_avg=Decimal("1.11"))
    for product in shop["products"]:
        read(f"/api/products/{product.pk}/")  # cached
    assert listed(drifted) == "1.11"
    assert read(f"/api/products/{drifted.pk}/")[1] == 0  # a hit

    with django_capture_on_commit_callbacks(execute=True):
        status, _ = _check("--fix")
    assert status == 0

    page, queries = read(f"/api/products/{drifted.pk}/")
    assert page["rating_avg"] == "4.50" and queries > 0  # deleted on commit, built again
    assert listed(drifted) == "4.50"
    page, queries = read(f"/api/products/{untouched.pk}/")
    assert page["rating_avg"] == "2.00" and queries == 0  # not repaired: still cached
