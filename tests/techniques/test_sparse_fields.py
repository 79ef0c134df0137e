"""sparse_fields: `?fields=` gives the same body off and on; on, the SQL reads only what the
shown fields need; anything but a public field is a 400 that names the allowed ones."""

import itertools
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shop import toggles
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    OrderFactory,
    ProductFactory,
    ReviewFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/products/?page_size=8"
ORDERS = "/api/orders/?page_size=5"
# The techniques that change how the page is read, each combination tried.
READERS = ("fast_serialization", "select_related", "prefetch_related", "denormalized_fields")


@pytest.fixture
def catalog():
    categories = CategoryFactory.create_batch(2)
    brands = BrandFactory.create_batch(3)
    products = [
        ProductFactory(category=categories[i % 2], brand=brands[i % 3], description=f"{i} " * 900)
        for i in range(8)
    ]
    for rating in (5, 4, 4):
        ReviewFactory(product=products[0], rating=rating)
    for product in products[:2]:
        VariantFactory.create_batch(2, product=product)
    return products


@pytest.fixture
def orders(customer):
    variants = VariantFactory.create_batch(3)
    return [
        OrderFactory(user=customer, lines=[(variants[i % 3], 1 + i), (variants[(i + 1) % 3], 2)])
        for i in range(3)
    ]


def _get(client, url, **flags):
    """The response and every statement it sent, with the toggles given."""
    with toggles.override(**flags), CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response, [q["sql"] for q in queries]


def _page_sql(statements, table):
    [sql] = [s for s in statements if f'FROM "{table}"' in s and "LIMIT" in s]
    return sql


def _selected(sql):
    """The SELECT list of a statement: `"table"."column"` names, in order."""
    head = sql.split(" FROM ", 1)[0]
    return re.findall(r'"(\w+)"\."(\w+)"', head)


LIST_FIELDS = ["id,name", "name,rating_avg", "category", "brand,created_at,id", "slug,slug"]


@pytest.mark.parametrize("fields", LIST_FIELDS)
def test_the_product_list_is_the_same_off_and_on_whatever_reads_it(api_client, catalog, fields):
    url = f"{PRODUCTS}&fields={fields}"
    bodies = set()
    for states in itertools.product((False, True), repeat=len(READERS)):
        flags = dict(zip(READERS, states, strict=True))
        for on in (False, True):
            response, _ = _get(api_client, url, sparse_fields=on, **flags)
            assert response.status_code == 200, response.content
            bodies.add(response.content)
    assert len(bodies) == 1
    [body] = bodies
    full = api_client.get(PRODUCTS).json()["results"]
    wanted = [name.strip() for name in fields.split(",")]
    expected = [{key: row[key] for key in row if key in wanted} for row in full]
    assert api_client.get(url).json()["results"] == expected
    assert b'"count":8' in body


@pytest.mark.parametrize("fields", ["id,name", "variants", "rating_avg,category,description"])
def test_the_product_page_is_the_same_off_and_on(api_client, catalog, fields):
    url = f"/api/products/{catalog[0].pk}/?fields={fields}"
    bodies = set()
    for states in itertools.product((False, True), repeat=len(READERS)):
        flags = dict(zip(READERS, states, strict=True))
        for on in (False, True):
            response, _ = _get(api_client, url, sparse_fields=on, **flags)
            assert response.status_code == 200, response.content
            bodies.add(response.content)
    assert len(bodies) == 1
    assert list(api_client.get(url).json()) == [
        name for name in api_client.get(f"/api/products/{catalog[0].pk}/").json() if name in fields
    ]


@pytest.mark.parametrize("fields", ["id,status", "total_amount,item_count", "items,id"])
def test_the_order_list_is_the_same_off_and_on(customer_client, orders, fields):
    url = f"{ORDERS}&fields={fields}"
    bodies = set()
    for states in itertools.product((False, True), repeat=len(READERS)):
        flags = dict(zip(READERS, states, strict=True))
        for on in (False, True):
            response, _ = _get(customer_client, url, sparse_fields=on, **flags)
            assert response.status_code == 200, response.content
            bodies.add(response.content)
    assert len(bodies) == 1


@pytest.mark.parametrize("fast_serialization", [False, True])
def test_on_the_list_reads_only_the_asked_columns_off_it_reads_everything(
    api_client, catalog, fast_serialization
):
    url = f"{PRODUCTS}&fields=id,name"
    _, off = _get(api_client, url, sparse_fields=False, fast_serialization=fast_serialization)
    _, on = _get(api_client, url, sparse_fields=True, fast_serialization=fast_serialization)
    off_sql, on_sql = _page_sql(off, "catalog_product"), _page_sql(on, "catalog_product")
    assert _selected(on_sql) == [("catalog_product", "id"), ("catalog_product", "name")]
    assert "JOIN" not in on_sql
    # Off: the whole representation, its JOINs and stored rating included, for two fields.
    assert ("catalog_category", "name") in _selected(off_sql)
    assert ("catalog_product", "rating_avg") in _selected(off_sql)
    assert '"catalog_category"' in off_sql and '"catalog_brand"' in off_sql


@pytest.mark.parametrize("fast_serialization", [False, True])
def test_a_nested_object_joins_its_table_alone_and_reads_its_shown_columns(
    api_client, catalog, fast_serialization
):
    url = f"{PRODUCTS}&fields=category"
    _, on = _get(api_client, url, sparse_fields=True, fast_serialization=fast_serialization)
    sql = _page_sql(on, "catalog_product")
    selected = set(_selected(sql))
    # The category's id is read from the product's category_id (values() knows they match).
    assert ("catalog_category", "name") in selected
    assert ("catalog_product", "category_id") in selected
    assert ("catalog_category", "slug") not in selected
    assert ("catalog_category", "parent_id") not in selected
    assert not {column for table, column in selected if table == "catalog_product"} - {
        "id",
        "category_id",
    }
    assert '"catalog_brand"' not in sql


def test_the_aggregate_is_left_out_when_no_shown_field_reads_it(api_client, catalog):
    """denormalized_fields off computes the rating with a JOIN of the reviews and a GROUP BY:
    on, a page without the rating has neither."""
    url = f"{PRODUCTS}&fields=id,name"
    flags = {"denormalized_fields": False}
    _, off = _get(api_client, url, sparse_fields=False, **flags)
    _, on = _get(api_client, url, sparse_fields=True, **flags)
    assert '"catalog_review"' in _page_sql(off, "catalog_product")
    assert '"catalog_review"' not in _page_sql(on, "catalog_product")
    assert "GROUP BY" not in _page_sql(on, "catalog_product")


def test_the_order_list_without_items_or_totals_reads_the_orders_alone(customer_client, orders):
    url = f"{ORDERS}&fields=id,status"
    _, off = _get(customer_client, url, sparse_fields=False, denormalized_fields=False)
    _, on = _get(customer_client, url, sparse_fields=True, denormalized_fields=False)
    assert any('FROM "orders_orderitem"' in sql for sql in off)  # the items, prefetched
    assert not any('FROM "orders_orderitem"' in sql for sql in on)
    assert '"orders_orderitem"' not in _page_sql(on, "orders_order")
    assert _selected(_page_sql(on, "orders_order")) == [
        ("orders_order", "id"),
        ("orders_order", "status"),
    ]


def test_the_product_page_without_variants_does_not_prefetch_them(api_client, catalog):
    url = f"/api/products/{catalog[0].pk}/?fields=name"
    _, off = _get(api_client, url, sparse_fields=False)
    _, on = _get(api_client, url, sparse_fields=True)
    assert any('FROM "catalog_variant"' in sql for sql in off)
    assert not any('FROM "catalog_variant"' in sql for sql in on)
    assert len(on) == 1
    [sql] = on
    assert _selected(sql) == [("catalog_product", "id"), ("catalog_product", "name")]


def test_without_fields_nothing_changes(api_client, catalog):
    off, off_sql = _get(api_client, PRODUCTS, sparse_fields=False)
    on, on_sql = _get(api_client, PRODUCTS, sparse_fields=True)
    assert off.content == on.content
    assert off_sql == on_sql


def test_the_header_flips_it_like_override(api_client, catalog):
    url = f"{PRODUCTS}&fields=id"
    for state, joined in (("off", True), ("on", False)):
        with CaptureQueriesContext(connection) as queries:
            response = api_client.get(url, HTTP_X_PERF_TOGGLES=f"sparse_fields={state}")
        assert response.status_code == 200
        sql = _page_sql([q["sql"] for q in queries], "catalog_product")
        assert ('"catalog_category"' in sql) is joined


# --- bad input --------------------------------------------------------------------------


LIST_ALLOWED = "id, name, slug, category, brand, rating_avg, review_count, created_at"


@pytest.mark.parametrize(
    ("query", "messages"),
    [
        ("fields=id,price", [f"unknown field 'price'; allowed: {LIST_ALLOWED}"]),
        # Columns of the table the list does not show, and other tables' private ones.
        ("fields=description", [f"unknown field 'description'; allowed: {LIST_ALLOWED}"]),
        ("fields=is_active", [f"unknown field 'is_active'; allowed: {LIST_ALLOWED}"]),
        (
            "fields=password,email",
            [
                f"unknown field 'password'; allowed: {LIST_ALLOWED}",
                f"unknown field 'email'; allowed: {LIST_ALLOWED}",
            ],
        ),
        ("fields=category__slug", [f"unknown field 'category__slug'; allowed: {LIST_ALLOWED}"]),
        ("fields=category.name", [f"not a field name 'category.name'; allowed: {LIST_ALLOWED}"]),
        ("fields=", [f"Name at least one field; allowed: {LIST_ALLOWED}."]),
        ("fields=id,,name", ["An empty name: separate the names with single commas."]),
        ("fields=id&fields=name", ["Give `fields` once, as a comma-separated list."]),
        ("fields=" + "x" * 501, ["At most 500 characters."]),
        ("fields=id%00", [f"not a field name 'id\\x00'; allowed: {LIST_ALLOWED}"]),
    ],
)
@pytest.mark.parametrize("on", [False, True])
def test_anything_but_a_public_field_is_a_400_with_field_messages(
    api_client, catalog, query, messages, on
):
    response, statements = _get(api_client, f"/api/products/?{query}", sparse_fields=on)
    assert response.status_code == 400
    assert response.json() == {"fields": messages}
    assert not any('"catalog_product"' in sql for sql in statements)  # nothing fetched


def test_a_long_unknown_name_is_quoted_cut_short(api_client, catalog):
    response = api_client.get("/api/products/?fields=" + "a" * 300)
    assert response.status_code == 400
    [message] = response.json()["fields"]
    assert message.startswith("unknown field '" + "a" * 40 + "...'")


def test_the_order_list_refuses_a_column_of_the_order_it_does_not_show(customer_client, orders):
    response = customer_client.get(f"{ORDERS}&fields=id,user,shipping_address,idempotency_key")
    assert response.status_code == 400
    assert len(response.json()["fields"]) == 3
    assert all("allowed: id, status, created_at" in m for m in response.json()["fields"])


def test_the_product_page_allows_its_own_fields(api_client, catalog):
    url = f"/api/products/{catalog[0].pk}/"
    assert api_client.get(url + "?fields=description,variants").status_code == 200
    response = api_client.get(url + "?fields=reviews")
    assert response.status_code == 400
    assert "variants" in response.json()["fields"][0]


def test_a_name_given_twice_and_spaces_are_accepted_once(api_client, catalog):
    once = api_client.get(f"{PRODUCTS}&fields=id,name")
    assert api_client.get(f"{PRODUCTS}&fields=name, id,name").content == once.content


def test_an_unknown_product_is_still_a_404(api_client, db):
    assert api_client.get("/api/products/999999/?fields=id").status_code == 404


# --- with cache_aside's page cache ------------------------------------------------------


@pytest.mark.parametrize("on", [False, True])
def test_a_sparse_page_bypasses_the_page_cache(api_client, catalog, on):
    """A whole page cached first never answers a sparse request, and a sparse page is never
    left in the cache for a whole request (catalog/payloads.py)."""
    detail = f"/api/products/{catalog[0].pk}/"
    with toggles.override(cache_aside=True, sparse_fields=on):
        whole_list, whole_detail = api_client.get(PRODUCTS), api_client.get(detail)
        for url in (f"{PRODUCTS}&fields=id", f"{detail}?fields=id"):
            for _ in range(2):  # the second would be a hit if the first had been stored
                response, statements = _get(api_client, url)
                assert any('FROM "catalog_product"' in sql for sql in statements), url
                body = response.json()
                assert list(body["results"][0] if "results" in body else body) == ["id"]
        _, statements = _get(api_client, PRODUCTS)
        assert statements == []  # the whole page: still the cached one
        assert api_client.get(PRODUCTS).content == whole_list.content
        assert api_client.get(detail).content == whole_detail.content
