"""Query budgets: how many queries each endpoint may run with every technique on.

A budget is exact, so a change that adds a query (a lazy relation the serializer now reads,
a forgotten prefetch) or removes one fails here and says which endpoint and what the budget
was for. Update the number when the change is deliberate, and say why in the `why` column.

Counts are read from the `X-DB-Queries` header, which counts every query of the request,
authentication included: a token costs one query (the token JOINed to its user), an
anonymous request none. (A session login would cost two, the session then the user.)

Writes run in a real transaction, as a request does outside tests (`transaction=True`): in a
test wrapped in a transaction each `atomic()` block would add a SAVEPOINT and a RELEASE.

To add an endpoint, add one line to BUDGETS, and one to LISTS if it is a paginated list.
"""

import json
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders import services as order_services
from shop import toggles
from shop.perf_headers import parse_query_counts
from tests.factories import (
    AddressFactory,
    ProductFactory,
    ReviewFactory,
    UserFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Budget:
    route: str  # "GET /api/products/{product}/": {product}, {order}, {sku} come from `shop`
    queries: int
    why: str  # what the queries are, shown when the budget breaks
    who: str | None = None  # "customer" or "staff", by token; None for anonymous
    body: dict = field(default_factory=dict)
    status: int = 200
    writes: bool = False  # run in a real transaction, as outside tests: no SAVEPOINTs


REVIEW = {"rating": 4, "title": "Fine", "body": "Does the job."}
ORDER = {"items": [{"sku": "{sku}", "quantity": 1}, {"sku": "{sku2}", "quantity": 2}]}
LOGIN = {"username": "budget-customer", "password": "password"}
READ_BACK = "read back: the order and its items"

BUDGETS = [
    Budget("GET /api/products/", 2, "COUNT(*), the page with category and brand JOINed"),
    Budget("GET /api/products/{product}/", 2, "the product with its JOINs, its variants"),
    Budget("GET /api/products/{product}/reviews/", 3, "the product exists, COUNT(*), the page"),
    Budget(
        "POST /api/products/{product}/reviews/",
        4,
        "token; lock the product, one review per author, INSERT (a trigger recomputes rating)",
        who="customer",
        body=REVIEW,
        status=201,
        writes=True,
    ),
    Budget("GET /api/orders/", 4, "token, COUNT(*), the page, its items", who="customer"),
    Budget(
        "POST /api/orders/",
        14,
        "token; address, variants, one stock UPDATE, INSERT order, items, payment, event; "
        "the charge, the stock ledger and the email go to workers (async_tasks), each of the "
        "two tasks an outbox row and a NOTIFY to the relay (transactional_outbox); " + READ_BACK,
        who="customer",
        body=ORDER,
        status=201,
        writes=True,
    ),
    Budget(
        "GET /api/orders/{order}/",
        5,
        "token, the order, its items, payments, events",
        who="customer",
    ),
    Budget(
        "POST /api/orders/{order}/cancel/",
        12,
        "token; lock the order, its items, restock 2 variants, UPDATE order, refund, event; "
        "the stock ledger's task as an outbox row and a NOTIFY (transactional_outbox); "
        + READ_BACK,
        who="customer",
        writes=True,
    ),
    Budget(
        "GET /api/reports/sales/",
        2,
        "token; the read model (materialized_view) in one statement: the days, the top "
        "products and the refresh time (none sold here, so no query for their names)",
        who="staff",
    ),
    Budget(
        "GET /api/perf/toggles/",
        2,
        "the registry lives in memory; db_indexes' state is the database's (pg_index), and so "
        "is table_partitioning's (pg_class)",
    ),
    Budget("GET /api/staff/events/", 2, "token, the 50 newest events", who="staff"),
    Budget("GET /api/staff/events/month/?month=2026-11", 2, "token, counts by kind", who="staff"),
    Budget("GET /api/perf/ping/", 0, "nothing: anonymous, and the view reads nothing"),
    Budget("GET /api/perf/ping/", 1, "the token JOINed to its user, nothing else", who="customer"),
    Budget(
        "POST /api/auth/token/",
        3,
        "the user, their token, INSERT the token (a first login)",
        body=LOGIN,
        writes=True,
    ),
]

# Paginated lists, and who reads them: the count must not grow with the page size.
LISTS = [
    ("/api/products/", None),
    ("/api/products/{product}/reviews/", None),
    ("/api/orders/", "customer"),
]


def _place(user, variants, count):
    for n in range(count):
        order_services.order_place(
            user=user,
            lines=[
                order_services.OrderLine(sku=variant.sku, quantity=n % 3 + 1)
                for variant in variants
            ],
        )


@pytest.fixture
def shop():
    """A small shop: a few products with variants and reviews, a customer with orders, staff.
    Lists hold several rows, so a query per row would show in every budget."""
    customer = UserFactory(username="budget-customer")
    AddressFactory(user=customer)
    staff = UserFactory(is_staff=True)
    products = ProductFactory.create_batch(3)
    variants = [VariantFactory(product=products[0], price=Decimal("9.99")) for _ in range(2)]
    VariantFactory(product=products[1])
    for rating in (5, 4, 3):
        ReviewFactory(product=products[0], rating=rating)
    _place(customer, variants, 3)
    return {
        "users": {"customer": customer, "staff": staff},
        "ids": {
            "product": products[0].pk,
            "order": customer.orders.order_by("id").first().pk,
            "sku": variants[0].sku,
            "sku2": variants[1].sku,
        },
    }


def _fill(value, ids):
    """Fill the placeholders in a path or, recursively, in a JSON body."""
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


def _client(shop, who):
    client = APIClient()
    if who is not None:
        token, _ = Token.objects.get_or_create(user=shop["users"][who])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _request(client, method, path, body=None):
    """Send with every technique on; return the response, its query count and their SQL."""
    all_on = {toggle.name: True for toggle in toggles.registered()}
    with toggles.override(**all_on), CaptureQueriesContext(connection) as queries:
        response = client.generic(method, path, **_json(body))
    count = sum(parse_query_counts(response["X-DB-Queries"]).values())
    return response, count, [q["sql"] for q in queries]


def _json(body):
    if not body:
        return {}
    return {"data": json.dumps(body), "content_type": "application/json"}


def _params(budgets):
    return [
        pytest.param(
            budget,
            id=budget.route,
            marks=[pytest.mark.django_db(transaction=True)] if budget.writes else [],
        )
        for budget in budgets
    ]


@pytest.mark.parametrize("budget", _params(BUDGETS))
def test_query_budget(shop, budget):
    method, path = budget.route.split(" ")
    client = _client(shop, budget.who)
    response, count, sql = _request(
        client, method, _fill(path, shop["ids"]), _fill(budget.body, shop["ids"])
    )
    assert response.status_code == budget.status, response.content
    assert count == budget.queries, (
        f"{budget.route} ran {count} queries; its budget is {budget.queries}: {budget.why}.\n"
        + "\n".join(sql)
    )


@pytest.mark.parametrize(("path", "who"), LISTS, ids=[path for path, _ in LISTS])
def test_list_queries_do_not_grow_with_the_page_size(path, who):
    """5 rows or 50, the same number of queries: nothing is fetched per row."""
    customer = UserFactory(username="budget-customer")
    AddressFactory(user=customer)
    first = ProductFactory()
    products = [first, *ProductFactory.create_batch(54, category=first.category, brand=first.brand)]
    ReviewFactory.create_batch(55, product=products[0])
    _place(customer, [VariantFactory(product=products[0], stock=10_000)], 55)
    shop = {"users": {"customer": customer}, "ids": {"product": products[0].pk}}

    client = _client(shop, who)
    # The token's user is cached after the first request (local_cache): one request first,
    # so both counts are of a warm lookup and differ only in what the rows cost.
    _request(client, "GET", f"{_fill(path, shop['ids'])}?page_size=1")
    counts = {}
    for page_size in (5, 50):
        response, counts[page_size], _ = _request(
            client, "GET", f"{_fill(path, shop['ids'])}?page_size={page_size}"
        )
        assert len(response.json()["results"]) == page_size
    assert counts[5] == counts[50], f"{path}: {counts[5]} queries for 5 rows, {counts[50]} for 50"
