"""Browsing the catalog and posting reviews through the API."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from catalog.models import Category, Product, Review
from tests.factories import (
    CategoryFactory,
    ProductFactory,
    ReviewFactory,
    UserFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


def test_product_list_is_newest_first_with_category_and_brand(api_client):
    older = ProductFactory(name="Older")
    newer = ProductFactory(
        name="Newer", created_at=older.created_at.replace(year=older.created_at.year + 1)
    )
    ProductFactory(name="Hidden", is_active=False)

    page = api_client.get("/api/products/").json()
    assert page["count"] == 2
    assert [p["id"] for p in page["results"]] == [newer.pk, older.pk]
    assert page["results"][0]["category"] == {"id": newer.category_id, "name": newer.category.name}
    assert page["results"][0]["brand"] == {"id": newer.brand_id, "name": newer.brand.name}
    assert "description" not in page["results"][0]


def test_category_filter_includes_subcategories(api_client):
    shoes = CategoryFactory(name="Shoes")
    boots = CategoryFactory(name="Boots", parent=shoes)
    in_parent, in_child = ProductFactory(category=shoes), ProductFactory(category=boots)
    ProductFactory()  # elsewhere

    ids = {p["id"] for p in api_client.get(f"/api/products/?category={shoes.pk}").json()["results"]}
    assert ids == {in_parent.pk, in_child.pk}
    ids = {p["id"] for p in api_client.get(f"/api/products/?category={boots.pk}").json()["results"]}
    assert ids == {in_child.pk}


def test_text_search_matches_names_case_insensitively(api_client):
    match = ProductFactory(name="Trail Running Shoe")
    ProductFactory(name="Rain Jacket")
    results = api_client.get("/api/products/?search=running").json()["results"]
    assert [p["id"] for p in results] == [match.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("category=abc", "category"),
        ("category=0", "category"),
        ("category=99999999999999999999", "category"),
        ("category=424242", "category"),
        ("search=a", "search"),
        ("search=" + "x" * 101, "search"),
        ("search=%00null", "search"),
    ],
)
def test_bad_filters_are_400_with_field_messages(api_client, query, field):
    response = api_client.get(f"/api/products/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_page_size_is_capped_and_bad_pages_are_404(api_client):
    ProductFactory.create_batch(3)
    assert len(api_client.get("/api/products/?page_size=2").json()["results"]) == 2
    assert api_client.get("/api/products/?page=9").status_code == 404
    assert api_client.get("/api/products/?page=abc").status_code == 404


def test_product_detail_has_description_and_variants(api_client):
    product = ProductFactory()
    variants = [VariantFactory(product=product, price="9.99"), VariantFactory(product=product)]
    body = api_client.get(f"/api/products/{product.pk}/").json()
    assert body["description"] == product.description
    assert [v["sku"] for v in body["variants"]] == [v.sku for v in variants]
    assert body["variants"][0]["price"] == "9.99"


def test_missing_or_inactive_product_is_404(api_client):
    assert api_client.get("/api/products/424242/").status_code == 404
    hidden = ProductFactory(is_active=False)
    assert api_client.get(f"/api/products/{hidden.pk}/").status_code == 404
    assert api_client.get(f"/api/products/{hidden.pk}/reviews/").status_code == 404


def test_reviews_are_listed_newest_first(api_client):
    product = ProductFactory()
    first = ReviewFactory(product=product)
    second = ReviewFactory(
        product=product, created_at=first.created_at.replace(year=first.created_at.year + 1)
    )
    ReviewFactory()  # another product's
    page = api_client.get(f"/api/products/{product.pk}/reviews/").json()
    assert [r["id"] for r in page["results"]] == [second.pk, first.pk]
    assert page["results"][0]["author_username"] == second.author.username


def _review_client(user=None):
    client = APIClient()
    client.force_authenticate(user or UserFactory())
    return client


def test_posting_reviews_keeps_rating_avg_and_count_exact():
    product = ProductFactory()
    for rating in (5, 4, 4):
        response = _review_client().post(
            f"/api/products/{product.pk}/reviews/",
            {"rating": rating, "title": "t", "body": "b"},
            format="json",
        )
        assert response.status_code == 201
    product.refresh_from_db()
    assert product.review_count == 3
    assert product.rating_avg == Decimal("4.33")


def test_rating_avg_rounds_half_up_exactly():
    # 161/40 = 4.025 exactly; a float average would round it down to 4.02.
    product = ProductFactory()
    for rating in [5] + [4] * 39:
        ReviewFactory(product=product, rating=rating)
    product.refresh_from_db()
    assert (product.review_count, product.rating_avg) == (40, Decimal("4.03"))


def test_a_review_copies_the_author_username():
    author = UserFactory(username="reviewer-7")
    product = ProductFactory()
    body = (
        _review_client(author)
        .post(
            f"/api/products/{product.pk}/reviews/",
            {"rating": 3, "title": "Fine", "body": "ok"},
            format="json",
        )
        .json()
    )
    assert body["author_username"] == "reviewer-7"
    assert Review.objects.get(pk=body["id"]).author_username == "reviewer-7"


def test_renaming_a_user_renames_their_reviews():
    review = ReviewFactory()
    review.author.username = "renamed"
    review.author.save()
    review.refresh_from_db()
    assert review.author_username == "renamed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0, "title": "t", "body": "b"}, "rating"),
        ({"rating": 6, "title": "t", "body": "b"}, "rating"),
        ({"rating": "great", "title": "t", "body": "b"}, "rating"),
        ({"rating": 3, "body": "b"}, "title"),
        ({"rating": 3, "title": "t" * 201, "body": "b"}, "title"),
        ({"rating": 3, "title": "t", "body": ""}, "body"),
    ],
)
def test_bad_reviews_are_400_and_change_nothing(body, field):
    product = ProductFactory()
    response = _review_client().post(f"/api/products/{product.pk}/reviews/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    product.refresh_from_db()
    assert (product.review_count, Review.objects.count()) == (0, 0)


def test_a_second_review_by_the_same_author_is_a_conflict():
    author, product = UserFactory(), ProductFactory()
    client = _review_client(author)
    url = f"/api/products/{product.pk}/reviews/"
    assert (
        client.post(url, {"rating": 5, "title": "t", "body": "b"}, format="json").status_code == 201
    )
    response = client.post(url, {"rating": 1, "title": "t", "body": "b"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_reviewed"
    product.refresh_from_db()
    assert (product.review_count, product.rating_avg) == (1, Decimal("5.00"))


def test_reviewing_needs_a_login_and_an_existing_product(api_client):
    product = ProductFactory()
    body = {"rating": 5, "title": "t", "body": "b"}
    assert (
        api_client.post(f"/api/products/{product.pk}/reviews/", body, format="json").status_code
        == 401
    )
    assert (
        _review_client().post("/api/products/424242/reviews/", body, format="json").status_code
        == 404
    )
    assert not Product.objects.filter(review_count__gt=0).exists()


def test_deleting_reviews_keeps_rating_avg_and_count_exact():
    product = ProductFactory()
    kept = ReviewFactory(product=product, rating=5)
    gone = ReviewFactory(product=product, rating=1)

    gone.delete()
    product.refresh_from_db()
    assert (product.review_count, product.rating_avg) == (1, Decimal("5.00"))

    kept.author.delete()  # CASCADE takes the user's reviews with them
    product.refresh_from_db()
    assert (product.review_count, product.rating_avg) == (0, Decimal("0.00"))


def test_a_category_cycle_made_by_hand_does_not_hang_the_list(api_client):
    a = CategoryFactory()
    b = CategoryFactory(parent=a)
    Category.objects.filter(pk=a.pk).update(parent=b)  # bypasses clean(), as raw SQL would
    in_b = ProductFactory(category=b)
    response = api_client.get(f"/api/products/?category={a.pk}")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [in_b.pk]


def test_a_category_cannot_be_put_inside_itself():
    top = CategoryFactory()
    child = CategoryFactory(parent=top)
    top.parent = child
    with pytest.raises(ValidationError, match="inside itself"):
        top.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Category.objects.filter(pk=top.pk).update(parent=top)


def test_unknown_api_paths_are_json_404s(api_client, settings):
    settings.DEBUG = False
    response = api_client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
