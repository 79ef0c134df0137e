"""denormalized_fields: the same answers computed at read time (off) or read from the copies
the writes keep (on), with the JOINs and aggregates only in the off path's SQL."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from catalog.models import Review
from orders import services as order_services
from orders.models import Order, OrderItem
from tests.factories import ProductFactory, VariantFactory, review_by_service

pytestmark = pytest.mark.django_db

User = get_user_model()


def _reviewed(*ratings):
    """A product with these ratings, each review written by the service, as the API does."""
    product = ProductFactory()
    for rating in ratings:
        review_by_service(product, rating)
    return product


@pytest.fixture
def rated_products():
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


def test_product_list_same_answer_with_exact_rounding(api_client, rated_products):
    answers = _both(api_client, "/api/products/?page_size=10")
    (off, off_sql), (on, on_sql) = answers["off"], answers["on"]
    assert off == on
    shown = {row["id"]: (row["rating_avg"], row["review_count"]) for row in on["results"]}
    assert {name: shown[product.pk] for name, product in rated_products.items()} == {
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
def test_product_detail_same_answer(api_client, rated_products, name):
    answers = _both(api_client, f"/api/products/{rated_products[name].pk}/")
    assert answers["off"][0] == answers["on"][0]
    assert any('JOIN "catalog_review"' in sql for sql in answers["off"][1])
    assert not any('JOIN "catalog_review"' in sql for sql in answers["on"][1])


def test_review_list_same_answer_and_no_join_when_on(api_client, rated_products):
    product = rated_products["4.125"]
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
        (7, "1039.99", "confirmed"),
        (8, "20.06", "cancelled"),
        (3, "59.97", "confirmed"),
    ]
    assert any("SUM(" in sql for sql in off_sql)
    assert not any("SUM(" in sql for sql in on_sql)
    for order in orders:
        answers = _both(customer_client, f"/api/orders/{order.pk}/")
        assert answers["off"][0] == answers["on"][0]


def _drift() -> dict[str, int]:
    """Rows whose stored copy differs from the value computed from its source rows, written
    here independently of the triggers and of denormalized_check."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT
              (SELECT count(*) FROM catalog_review r JOIN auth_user u ON u.id = r.author_id
               WHERE r.author_username <> u.username),
              (SELECT count(*) FROM catalog_product p
               WHERE (p.rating_avg, p.review_count) <> (
                   SELECT coalesce(round(avg(r.rating), 2), 0), count(*)
                   FROM catalog_review r WHERE r.product_id = p.id)),
              (SELECT count(*) FROM orders_order o
               WHERE (o.item_count, o.total_amount) <> (
                   SELECT coalesce(sum(i.quantity), 0), coalesce(sum(i.unit_price * i.quantity), 0)
                   FROM orders_orderitem i WHERE i.order_id = o.id))""")
        names, counts = ("author names", "ratings", "order totals"), cursor.fetchone()
    return dict(zip(names, counts, strict=True))


NO_DRIFT = {"author names": 0, "ratings": 0, "order totals": 0}


def test_writes_that_bypass_the_models_keep_the_copies_right(api_client, rated_products, orders):
    """A queryset update(), raw SQL and Django's cascades never run model code, and each of
    them changes the copies' sources: the database triggers keep every copy right anyway."""
    assert _drift() == NO_DRIFT
    one, other = rated_products["one"], rated_products["4.125"]  # ratings 1, and 4 x 7 and 5
    Review.objects.filter(product=one).update(rating=5)  # a queryset update(): 1 -> 5
    moved = Review.objects.filter(product=other, rating=4).order_by("id").first()
    Review.objects.filter(pk=moved.pk).update(product=one)  # a 4 moves to `one`
    review = Review.objects.get(product=other, rating=5)
    with connection.cursor() as cursor:
        cursor.execute(  # a raw rename, and a raw INSERT with a wrong copy of the name
            "UPDATE auth_user SET username = 'raw-rename' WHERE id = %s", [review.author_id]
        )
        cursor.execute(
            "INSERT INTO catalog_review (product_id, author_id, author_username, rating, title, "
            "body, created_at) VALUES (%s, %s, 'wrong', 1, 't', 'b', now())",  # `one`: 5, 4, 1
            [one.pk, review.author_id],
        )
        cursor.execute(
            "DELETE FROM catalog_review WHERE product_id = %s AND rating = 4", [other.pk]
        )
        cursor.execute(  # raw changes to a placed order's items
            "UPDATE orders_orderitem SET quantity = quantity + 2 WHERE order_id = %s",
            [orders[0].pk],
        )
        cursor.execute("DELETE FROM orders_orderitem WHERE order_id = %s", [orders[1].pk])
    OrderItem.objects.filter(order=orders[2]).update(unit_price=F("unit_price") * 2)
    assert _drift() == NO_DRIFT

    assert set(
        Review.objects.filter(author_id=review.author_id).values_list("author_username", flat=True)
    ) == {"raw-rename"}
    answers = _both(api_client, f"/api/products/{one.pk}/")
    assert answers["off"][0] == answers["on"][0]
    assert (answers["on"][0]["rating_avg"], answers["on"][0]["review_count"]) == ("3.33", 3)
    assert Order.objects.get(pk=orders[1].pk).item_count == 0

    # Django's cascades: a user's delete takes their reviews of several products with it,
    # and a product's delete takes its reviews.
    User.objects.get(pk=review.author_id).delete()
    rated_products["4.025"].delete()
    assert _drift() == NO_DRIFT
