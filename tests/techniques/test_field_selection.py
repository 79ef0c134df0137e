"""field_selection: the same product list, without fetching each product's description."""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shop import toggles
from tests.factories import BrandFactory, CategoryFactory, ProductFactory, ReviewFactory

pytestmark = pytest.mark.django_db

LIST = "/api/products/?page_size=8"


@pytest.fixture
def described_products():
    """Eight products with long descriptions, the field field_selection leaves out, and
    reviews on the first."""
    categories = CategoryFactory.create_batch(2)
    brands = BrandFactory.create_batch(3)
    products = [
        ProductFactory(category=categories[i % 2], brand=brands[i % 3], description=f"{i} " * 1500)
        for i in range(8)
    ]
    for rating in (5, 4, 4):
        ReviewFactory(product=products[0], rating=rating)
    return products


def _list_query(api_client, **flags):
    """The response, and the SQL of the query that fetched the page of products. Through
    model instances: fast_serialization's values() would read only the shown columns whatever
    field_selection says (see test_values_rows_never_read_the_description)."""
    flags = {"fast_serialization": False, **flags}
    with toggles.override(**flags), CaptureQueriesContext(connection) as queries:
        response = api_client.get(LIST)
    assert response.status_code == 200
    [page_sql] = [
        q["sql"] for q in queries if 'FROM "catalog_product"' in q["sql"] and "LIMIT" in q["sql"]
    ]
    return response.json(), page_sql, len(queries)


def test_the_list_query_fetches_the_description_only_when_off(api_client, described_products):
    off, off_sql, _ = _list_query(api_client, field_selection=False)
    on, on_sql, _ = _list_query(api_client, field_selection=True)
    assert off == on
    assert '"catalog_product"."description"' in off_sql
    assert '"catalog_product"."description"' not in on_sql
    # The foreign key ids stay: the category and brand are found by them.
    assert '"catalog_product"."category_id"' in on_sql
    assert '"catalog_product"."brand_id"' in on_sql


@pytest.mark.parametrize("select_related", [True, False])
def test_no_deferred_field_is_loaded_later(api_client, described_products, select_related):
    """A field left out of only() but read by the serializer would cost a query per row: the
    count must be what select_related alone makes it, with field_selection off or on."""
    counts = {
        on: _list_query(api_client, field_selection=on, select_related=select_related)[2]
        for on in (False, True)
    }
    expected = (
        2 if select_related else 2 + 2 * len(described_products)
    )  # + a category, a brand per row
    assert counts == {False: expected, True: expected}


def test_every_combination_of_the_list_techniques_gives_the_same_list(
    api_client, described_products
):
    names = ("field_selection", "select_related", "denormalized_fields")
    answers = {
        states: _list_query(api_client, **dict(zip(names, states, strict=True)))[0]
        for states in itertools.product((False, True), repeat=len(names))
    }
    all_off, all_on = answers[(False,) * len(names)], answers[(True,) * len(names)]
    assert all_off == all_on
    assert all(answer == all_on for answer in answers.values())
    assert all_on["results"][-1]["rating_avg"] == "4.33"


@pytest.mark.parametrize(("state", "described"), [("off", True), ("on", False)])
def test_the_header_flips_it_like_override(api_client, described_products, state, described):
    """The header decides the page's SQL as override() does. fast_serialization is held off in
    the same header: its values() would leave the description out either way."""
    flags = f"field_selection={state},fast_serialization=off"
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(LIST, HTTP_X_PERF_TOGGLES=flags)
    assert response.status_code == 200
    assert toggles.parse(response["X-Perf-Toggles"]).get("field_selection", True) is not described
    [page_sql] = [
        q["sql"] for q in queries if 'FROM "catalog_product"' in q["sql"] and "LIMIT" in q["sql"]
    ]
    assert ('"catalog_product"."description"' in page_sql) is described
    assert response.json() == _list_query(api_client, field_selection=not described)[0]


def test_values_rows_never_read_the_description(api_client, described_products):
    """With fast_serialization on, values() names the shown columns itself: the same answer,
    and no description, field_selection off or on."""
    answers = set()
    for on in (False, True):
        body, sql, _ = _list_query(api_client, field_selection=on, fast_serialization=True)
        assert '"catalog_product"."description"' not in sql
        answers.add(repr(body))
    assert len(answers) == 1
