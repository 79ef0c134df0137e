"""prefetch_related: the same order history, 1 + N queries for the items off, 1 query on.

The naive code its chapter describes is lazy model access: the serializer reads
`order.items.all()`, and Django runs `SELECT ... WHERE order_id = %s` for that order.
fast_serialization (on by default) reads values() rows instead and has a per-row query of its
own, which would stand in for it, so every request here holds fast_serialization off, and the
per-order queries off are checked to be the lazy ones, statement for statement.
"""

from decimal import Decimal

import pytest
from django.db.models import Prefetch
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders import services
from orders.models import Order
from shop import toggles
from shop.bench.statements import lazy_sql, recording
from shop.perf_headers import parse_query_counts
from shop.techniques import prefetch_related
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db


def _place_orders(user, count):
    """`count` orders of one to three lines each, placed by the service that keeps every
    derived field right."""
    variants = [
        VariantFactory(price=Decimal(price), stock=10_000) for price in ("12.50", "3.00", "0.99")
    ]
    for n in range(count):
        lines = [
            services.OrderLine(sku=variant.sku, quantity=n % 4 + 1)
            for variant in variants[: n % 3 + 1]
        ]
        services.order_place(user=user, lines=lines)


def _lazy_items():
    """The statement Django sends for `order.items.all()` without a prefetch."""
    return lazy_sql(Order.objects.first(), "items")


def _get(client, path, state):
    with recording() as sent:
        response = client.get(
            path, HTTP_X_PERF_TOGGLES=f"prefetch_related={state},fast_serialization=off"
        )
    assert response.status_code == 200, response.content
    assert parse_query_counts(response["X-DB-Queries"])["default"] == len(sent)
    return response.json(), sent


@pytest.mark.parametrize("page_size", [5, 20])
def test_order_list_same_answer_and_a_query_per_order_only_when_off(
    customer_client, customer, page_size
):
    _place_orders(customer, 20)
    path = f"/api/orders/?page_size={page_size}"
    off, off_sql = _get(customer_client, path, "off")
    on, on_sql = _get(customer_client, path, "on")
    assert off == on
    assert len(on["results"]) == page_size
    assert all(order["items"] for order in on["results"])
    # force_authenticate costs no query. COUNT(*), the page, then the items:
    assert len(on_sql) == 3  # in one query for the whole page
    assert len(off_sql) == 2 + page_size  # in one query per order
    # Each of them is the lazy `order.items.all()` of one order, as the chapter's naive code
    # runs it; on, Django's prefetch reads them all with `order_id IN (...)`.
    assert off_sql.count(_lazy_items()) == page_size
    assert on_sql.count(_lazy_items()) == 0
    assert '"orders_orderitem"."order_id" IN (' in on_sql[-1]


def test_order_history_page_of_50_takes_4_queries_with_token_auth(customer):
    """The issue's target: the order history, 50 orders with their items, in at most 4 queries,
    counted as the middleware counts them, authentication included."""
    _place_orders(customer, 50)
    client = APIClient()
    # Token authentication looks the token and its user up in one query. (A session login
    # would cost two: the session, then the user.)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=customer).key}")
    with toggles.override(**{toggle.name: True for toggle in toggles.registered()}):
        response = client.get("/api/orders/?page_size=50")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 50
    # The token, COUNT(*), the page of orders, all their items.
    assert parse_query_counts(response["X-DB-Queries"]) == {"default": 4, "replica": 0}


def test_order_detail_same_answer_and_same_count(customer_client, customer):
    """On one object prefetching saves nothing: a query per relation either way."""
    _place_orders(customer, 3)
    order_id = customer.orders.order_by("id").last().pk
    services.order_cancel(user=customer, order_id=order_id)  # a refund and a third event
    path = f"/api/orders/{order_id}/"
    off, off_sql = _get(customer_client, path, "off")
    on, on_sql = _get(customer_client, path, "on")
    assert off == on
    assert [event["kind"] for event in on["events"]] == [
        "placed",
        "paid",
        "confirmation_sent",
        "cancelled",
    ]
    assert len(off_sql) == len(on_sql) == 4  # the order, its items, payments and events
    assert off_sql.count(_lazy_items()) == 1
    assert on_sql.count(_lazy_items()) == 0  # `IN (%s)`: the same rows, the prefetch's SQL


def test_product_detail_same_answer_and_same_count(api_client):
    variant = VariantFactory()
    VariantFactory.create_batch(2, product=variant.product)
    path = f"/api/products/{variant.product_id}/"
    off, off_sql = _get(api_client, path, "off")
    on, on_sql = _get(api_client, path, "on")
    assert off == on
    assert len(on["variants"]) == 3
    assert len(off_sql) == len(on_sql) == 2  # the product with its JOINs, then its variants
    assert '"catalog_variant"."product_id" = %s' in off_sql[1]
    assert '"catalog_variant"."product_id" IN (%s)' in on_sql[1]


def test_a_prefetch_into_another_attribute_is_refused():
    with pytest.raises(ValueError, match="to_attr"):
        prefetch_related.apply(Order.objects.all(), Prefetch("items", to_attr="item_list"))
