"""select_related: the same product list, 1 + 2N queries off, 1 query on (plus the page count).

The naive code its chapter describes is lazy model access: the serializer reads
`product.category`, and Django runs `SELECT ... WHERE id = %s LIMIT 21` for that row.
fast_serialization (on by default) reads values() rows instead and has a per-row query of its
own, which would stand in for it, so every request here holds fast_serialization off, and the
per-row queries off are checked to be the lazy ones, statement for statement.
"""

import pytest

from catalog.models import Product
from shop.bench.statements import lazy_sql, recording
from shop.perf_headers import parse_query_counts
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db


def _lazy(attribute):
    """The statement Django sends for `product.<attribute>` read without a JOIN."""
    return lazy_sql(Product.objects.first(), attribute)


def _get(client, path, state):
    with recording() as sent:
        response = client.get(
            path, HTTP_X_PERF_TOGGLES=f"select_related={state},fast_serialization=off"
        )
    assert response.status_code == 200
    assert parse_query_counts(response["X-DB-Queries"])["default"] == len(sent)
    return response.json(), sent


@pytest.mark.parametrize("page_size", [5, 12])
def test_product_list_same_answer_and_n_plus_one_only_when_off(api_client, products, page_size):
    path = f"/api/products/?page_size={page_size}"
    off, off_sql = _get(api_client, path, "off")
    on, on_sql = _get(api_client, path, "on")
    assert off == on
    assert len(on_sql) == 2  # COUNT(*) + one SELECT with both JOINs
    assert len(off_sql) == 2 + 2 * page_size  # + a category and a brand query per row
    for attribute in ("category", "brand"):
        # Each of them is the lazy access of one row, as the chapter's naive code runs it.
        assert off_sql.count(_lazy(attribute)) == page_size
        assert on_sql.count(_lazy(attribute)) == 0
    assert all(" JOIN " in sql for sql in on_sql if "LIMIT" in sql)


def test_product_detail_same_answer_one_query_less_each(api_client, products):
    product = products[0]
    VariantFactory.create_batch(2, product=product)
    path = f"/api/products/{product.pk}/"
    off, off_sql = _get(api_client, path, "off")
    on, on_sql = _get(api_client, path, "on")
    assert off == on
    assert len(off_sql) - len(on_sql) == 2  # category and brand fetched on their own
    assert off_sql.count(_lazy("category")) == off_sql.count(_lazy("brand")) == 1
