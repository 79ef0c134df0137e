"""denormalized_fields: the same answers computed at read time (off) or read from the copies
the writes keep (on), with the JOINs and aggregates only in the off path's SQL."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import services as catalog_services
from catalog.models import Review
from orders import services as order_services
from tests.factories import ProductFactory, ReviewFactory, VariantFactory

pytestmark = pytest.mark.django_db


def _reviewed(*ratings):
    """A product with these ratings, its stored rating_avg and review_count recomputed by the
    same service function the writes use."""
    product = ProductFactory()
    for rating in ratings:
        ReviewFactory(product=product, rating=rating)
    catalog_services.product_rating_refresh(product_id=product.pk)
    return product


@pytest.fixture
def products():
    """Averages that catch a wrong rounding: 4.025 and 4.125 round half up to 4.03 and 4.13,
    where floats or half-even rounding give 4.02 and 4.12."""
    return {
        "no reviews": _reviewed(),
        "one": _reviewed(1),
        "4.333…": _reviewed(5, 4, 4),
        "4.025": _reviewed(*[4] * 39, 5),
        "4.125": _reviewed(*[4] * 7, 5),
    }


@pytest.fixture
def orders(customer):
    """Orders placed by the service, with several lines, quantities and prices in cents, and a
    cancelled one (its totals stay what was charged)."""
    variants = [
        VariantFactory(price=Decimal(price), stock=100) for price in ("19.99", "0.01", "250.00")
    ]
    placed = []
    for lines in ([(0, 3)], [(0, 1), (1, 7)], [(0, 2), (1, 1), (2, 4)]):
        placement = order_services.order_place(
            user=customer,
            lines=[order_services.OrderLine(sku=variants[i].sku, quantity=q) for i, q in lines],
        )
        placed.append(placement.order)
    order_services.order_cancel(user=customer, order_id=placed[1].pk)
    return placed


def _both(client, path):
    """The response off and on, each with the SQL it ran."""
    answers = {}
    for state in ("off", "on"):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path, HTTP_X_PERF_TOGGLES=f"denormalized_fields={state}")
        assert response.status_code == 200, response.content
        answers[state] = response.json(), [q["sql"] for q in queries]
    return answers


def test_product_list_same_answer_with_exact_rounding(api_client, products):
    answers = _both(api_client, "/api/products/?page_size=10")
    (off, off_sql), (on, on_sql) = answers["off"], answers["on"]
    assert off == on
    shown = {row["id"]: (row["rating_avg"], row["review_count"]) for row in on["results"]}
    assert {name: shown[product.pk] for name, product in products.items()} == {
        "no reviews": ("0.00", 0),
        "one": ("1.00", 1),
        "4.333…": ("4.33", 3),
        "4.025": ("4.03", 40),
        "4.125": ("4.13", 8),
    }
    # The same two queries (COUNT(*) and the page), each doing different work: off, both JOIN
    # every product's reviews and GROUP BY product; on, neither reads the reviews table.
    assert len(off_sql) == len(on_sql) == 2
    assert all('JOIN "catalog_review"' in sql and "GROUP BY" in sql for sql in off_sql)
    assert "AVG(" in off_sql[1]
    assert not any("catalog_review" in sql for sql in on_sql)


@pytest.mark.parametrize("name", ["no reviews", "4.025", "4.125"])
def test_product_detail_same_answer(api_client, products, name):
    answers = _both(api_client, f"/api/products/{products[name].pk}/")
    assert answers["off"][0] == answers["on"][0]
    assert any('JOIN "catalog_review"' in sql for sql in answers["off"][1])
    assert not any('JOIN "catalog_review"' in sql for sql in answers["on"][1])


def test_review_list_same_answer_and_no_join_when_on(api_client, products):
    product = products["4.125"]
    author = Review.objects.filter(product=product).order_by("id").first().author
    author.username = "renamed-reviewer"
    author.save()  # the post_save receiver renames the stored copies too

    answers = _both(api_client, f"/api/products/{product.pk}/reviews/")
    (off, off_sql), (on, on_sql) = answers["off"], answers["on"]
    assert off == on
    assert "renamed-reviewer" in {review["author_username"] for review in on["results"]}
    assert any('JOIN "auth_user"' in sql for sql in off_sql)
    assert not any("auth_user" in sql for sql in on_sql)


def test_order_list_and_detail_same_answer(customer_client, orders):
    answers = _both(customer_client, "/api/orders/")
    (off, off_sql), (on, on_sql) = answers["off"], answers["on"]
    assert off == on
    assert [(o["item_count"], o["total_amount"], o["status"]) for o in on["results"]] == [
        (7, "1039.99", "paid"),
        (8, "20.06", "cancelled"),
        (3, "59.97", "paid"),
    ]
    assert any("SUM(" in sql for sql in off_sql)
    assert not any("SUM(" in sql for sql in on_sql)
    for order in orders:
        answers = _both(customer_client, f"/api/orders/{order.pk}/")
        assert answers["off"][0] == answers["on"][0]


def test_a_write_that_bypasses_the_services_leaves_the_copies_stale(api_client, products):
    """Why the services matter: the stored copies are only as right as every write path.
    A bulk UPDATE skips them, so only the computed path sees it until they are recomputed."""
    product = products["one"]
    Review.objects.filter(product=product).update(rating=5)
    path = f"/api/products/{product.pk}/"
    stale, fresh = _both(api_client, path)["on"][0], _both(api_client, path)["off"][0]
    assert (stale["rating_avg"], fresh["rating_avg"]) == ("1.00", "5.00")

    catalog_services.product_rating_refresh(product_id=product.pk)
    answers = _both(api_client, path)
    assert answers["on"][0] == answers["off"][0]
