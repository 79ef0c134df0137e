"""select_related: the same product list, 1 + 2N queries off, 1 query on (plus the page count)."""

import pytest

from shop.middleware import parse_query_counts
from tests.factories import BrandFactory, CategoryFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def products():
    categories = CategoryFactory.create_batch(3)
    brands = BrandFactory.create_batch(4)
    return [ProductFactory(category=categories[i % 3], brand=brands[i % 4]) for i in range(12)]


def _get(client, path, state):
    response = client.get(path, HTTP_X_PERF_TOGGLES=f"select_related={state}")
    assert response.status_code == 200
    return response.json(), parse_query_counts(response["X-DB-Queries"])["default"]


@pytest.mark.parametrize("page_size", [5, 12])
def test_product_list_same_answer_and_n_plus_one_only_when_off(api_client, products, page_size):
    path = f"/api/products/?page_size={page_size}"
    off, off_queries = _get(api_client, path, "off")
    on, on_queries = _get(api_client, path, "on")
    assert off == on
    assert on_queries == 2  # COUNT(*) + one SELECT with both JOINs
    assert off_queries == 2 + 2 * page_size  # + a category and a brand query per row


def test_product_detail_same_answer_one_query_less(api_client, products):
    product = products[0]
    VariantFactory.create_batch(2, product=product)
    path = f"/api/products/{product.pk}/"
    off, off_queries = _get(api_client, path, "off")
    on, on_queries = _get(api_client, path, "on")
    assert off == on
    assert off_queries - on_queries == 2  # category and brand fetched on their own
