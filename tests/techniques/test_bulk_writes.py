"""bulk_writes: placing an order and importing products write the same rows, with the same ids,
off and on; on, they take a constant handful of statements instead of one per row.

The product import endpoint exists to show this technique, so its input checks are tested
here too.
"""

import json
import math
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from catalog import apis as catalog_apis
from catalog import services as catalog_services
from catalog.models import Product, Variant
from orders import services as order_services
from orders.models import Order, OrderEvent, OrderItem, Payment
from shop import toggles
from shop.techniques import bulk_writes
from tests.factories import BrandFactory, CategoryFactory, UserFactory, VariantFactory
from tests.orders import test_order_concurrency as concurrency

pytestmark = pytest.mark.django_db

FROZEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ORDER_TABLES = ["orders_order", "orders_orderitem", "orders_payment", "orders_orderevent"]
CATALOG_TABLES = ["catalog_product", "catalog_variant"]


@pytest.fixture
def frozen_now(monkeypatch):
    """Every timestamp the request writes, `auto_now` included, is FROZEN."""
    monkeypatch.setattr(timezone, "now", lambda: FROZEN)


@contextmanager
def rolled_back(tables):
    """Run the block, then undo it, id sequences included (a rollback leaves them advanced),
    so the next block starts from exactly the same state and gets the same ids."""
    with connection.cursor() as cursor:
        positions = {}
        for table in tables:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
            positions[sequence] = cursor.fetchone()
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
    with connection.cursor() as cursor:
        for sequence, (last_value, is_called) in positions.items():
            cursor.execute("SELECT setval(%s, %s, %s)", [sequence, last_value, is_called])


def statement_kinds(captured: CaptureQueriesContext) -> Counter:
    """`Counter({"INSERT INTO orders_orderitem": 50, ...})`: what the captured queries did."""
    kinds = Counter()
    for query in captured.captured_queries:
        sql = query["sql"].replace('"', "")
        words = sql.split()
        if words[0] == "INSERT":
            kinds[f"INSERT INTO {words[2]}"] += 1
        elif words[0] == "UPDATE":
            kinds[f"UPDATE {words[1]}"] += 1
        elif words[0] == "WITH" and "UPDATE catalog_variant" in sql:
            kinds["UPDATE catalog_variant"] += 1
        else:
            kinds[words[0]] += 1
    return kinds


# --- placing an order ---------------------------------------------------------------------


def order_state():
    """Every row an order placement writes or moves."""
    return (
        list(Order.objects.order_by("id").values()),
        list(OrderItem.objects.order_by("id").values()),
        list(Payment.objects.order_by("id").values()),
        list(OrderEvent.objects.order_by("id").values()),
        list(Variant.objects.order_by("id").values_list("id", "stock")),
    )


def test_an_order_writes_the_same_rows_and_answer_off_and_on(customer_client, frozen_now):
    variants = VariantFactory.create_batch(6, stock=20)
    # Not in primary-key order, so the stock path's sorting is exercised.
    items = [{"sku": v.sku, "quantity": n + 1} for n, v in reversed(list(enumerate(variants)))]
    results = {}
    for state in ("off", "on"):
        with rolled_back(ORDER_TABLES):
            response = customer_client.post(
                "/api/orders/",
                {"items": items},
                format="json",
                HTTP_X_PERF_TOGGLES=f"bulk_writes={state}",
            )
            results[state] = (response.status_code, response.json(), order_state())
    assert results["off"] == results["on"]
    status, body, (orders, order_items, payments, events, stock) = results["on"]
    assert status == 201
    assert len(orders) == 1 and len(order_items) == 6 and len(payments) == 1 and len(events) == 2
    assert dict(stock)[variants[0].pk] == 19


def test_a_short_order_is_the_same_conflict_off_and_on_and_moves_no_stock(customer_client):
    plenty, short_a, short_b = (
        VariantFactory(stock=50),
        VariantFactory(stock=1),
        VariantFactory(stock=0),
    )
    # The short lines come last-first, and the conflict lists them in primary-key order.
    items = [
        {"sku": short_b.sku, "quantity": 2},
        {"sku": plenty.sku, "quantity": 5},
        {"sku": short_a.sku, "quantity": 3},
    ]
    before = order_state()
    answers = {}
    for state in ("off", "on"):
        response = customer_client.post(
            "/api/orders/",
            {"items": items},
            format="json",
            HTTP_X_PERF_TOGGLES=f"bulk_writes={state}",
        )
        answers[state] = (response.status_code, response.json())
        assert order_state() == before
    assert answers["off"] == answers["on"]
    assert answers["on"] == (
        409,
        {
            "detail": "Not enough stock for some items; nothing was ordered.",
            "code": "insufficient_stock",
            "items": [
                {"sku": short_a.sku, "requested": 3, "available": 1},
                {"sku": short_b.sku, "requested": 2, "available": 0},
            ],
        },
    )


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        pytest.param(
            False,
            {
                "UPDATE catalog_variant": 50,
                "INSERT INTO orders_orderitem": 50,
                "INSERT INTO orders_orderevent": 2,
            },
            id="off",
        ),
        pytest.param(
            True,
            {
                "UPDATE catalog_variant": 1,
                "INSERT INTO orders_orderitem": 1,
                "INSERT INTO orders_orderevent": 1,
            },
            id="on",
        ),
    ],
)
def test_an_order_of_50_lines_takes_stock_and_inserts_rows_in_one_statement_each(
    customer, on, expected
):
    lines = [
        order_services.OrderLine(sku=v.sku, quantity=1) for v in VariantFactory.create_batch(50)
    ]
    with toggles.override(bulk_writes=on), CaptureQueriesContext(connection) as captured:
        order_services.order_place(user=customer, lines=lines)
    kinds = statement_kinds(captured)
    assert {kind: kinds[kind] for kind in expected} == expected
    # The rest is the same both ways: the address, the variants, the order, the payment, and
    # the SAVEPOINT/RELEASE of the service's transaction inside the test's.
    assert kinds["SELECT"] == 2
    assert kinds["INSERT INTO orders_order"] == kinds["INSERT INTO orders_payment"] == 1


def test_an_order_of_50_lines_takes_at_least_10_times_fewer_queries(customer):
    counts = {}
    for on in (False, True):
        lines = [
            order_services.OrderLine(sku=v.sku, quantity=1) for v in VariantFactory.create_batch(50)
        ]
        with toggles.override(bulk_writes=on), CaptureQueriesContext(connection) as captured:
            order_services.order_place(user=customer, lines=lines)
        counts[on] = len(captured)
    # 2 reads + 50 UPDATEs + 1 order + 50 items + 1 payment + 2 events, and 2 for the savepoint.
    assert counts == {False: 108, True: 9}
    assert counts[False] >= 10 * counts[True]


# The concurrency guarantees, with the toggle off and on. Each check runs its orders in
# threads of its own, and an override is local to the thread that sets it, so the toggle is set
# where every thread reads it: the environment.
CONCURRENCY_CHECKS = [
    concurrency.test_concurrent_orders_never_oversell,
    concurrency.test_crossing_orders_do_not_deadlock,
    concurrency.test_a_raced_idempotency_key_gives_one_order,
    concurrency.test_raced_retries_for_the_last_units_replay_instead_of_conflicting,
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("state", ["off", "on"])
@pytest.mark.parametrize("check", CONCURRENCY_CHECKS, ids=lambda check: check.__name__[5:])
def test_concurrency_guarantees_hold_off_and_on(check, state, monkeypatch):
    monkeypatch.setenv("PERF_TOGGLES", f"bulk_writes={state}")
    check()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("state", ["off", "on"])
def test_crossing_orders_with_many_lines_do_not_deadlock(state, monkeypatch):
    monkeypatch.setenv("PERF_TOGGLES", f"bulk_writes={state}")
    variants = VariantFactory.create_batch(20, stock=100)
    user = UserFactory()

    def place(i):
        ordered = variants if i % 2 else list(reversed(variants))
        lines = [order_services.OrderLine(sku=v.sku, quantity=1) for v in ordered]
        return order_services.order_place(user=user, lines=lines).created

    assert concurrency._run_concurrently(place, concurrency.THREADS) == [True] * concurrency.THREADS
    assert set(Variant.objects.values_list("stock", flat=True)) == {100 - concurrency.THREADS}


# --- importing products ---------------------------------------------------------------------


@pytest.fixture
def staff_client():
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


@pytest.fixture
def category():
    return CategoryFactory()


@pytest.fixture
def brand():
    return BrandFactory()


def import_payload(category, brand, *, count=3, variants=2, prefix="imp"):
    return {
        "products": [
            {
                "name": f"Imported {n}",
                "slug": f"{prefix}-{n}",
                "description": f"Product number {n}.",
                "category_id": category.pk,
                "brand_id": brand.pk,
                "variants": [
                    {
                        "sku": f"{prefix.upper()}-{n}-{v}",
                        "name": f"Option {v}",
                        "price": f"{n + v + 1}.50",
                        "stock": n * 10 + v,
                    }
                    for v in range(variants)
                ],
            }
            for n in range(count)
        ]
    }


def catalog_state():
    return (
        list(Product.objects.order_by("id").values()),
        list(Variant.objects.order_by("id").values()),
    )


def post_import(client, payload, **headers):
    return client.post("/api/staff/products/import/", payload, format="json", **headers)


def test_an_import_writes_the_same_rows_with_the_same_ids_off_and_on(
    staff_client, category, brand, frozen_now
):
    payload = import_payload(category, brand, count=12, variants=3)
    results = {}
    for state in ("off", "on"):
        with rolled_back(CATALOG_TABLES):
            response = post_import(
                staff_client, payload, HTTP_X_PERF_TOGGLES=f"bulk_writes={state}"
            )
            results[state] = (response.status_code, response.json(), catalog_state())
    assert results["off"] == results["on"]
    status, body, (products, variants) = results["on"]
    assert (status, body) == (201, {"products": 12, "variants": 36})
    assert [p["slug"] for p in products] == [f"imp-{n}" for n in range(12)]
    assert products[0]["created_at"] == FROZEN
    by_id = {p["id"]: p["slug"] for p in products}
    assert [(by_id[v["product_id"]], v["sku"], v["price"], v["stock"]) for v in variants[:2]] == [
        ("imp-0", "IMP-0-0", Decimal("1.50"), 0),
        ("imp-0", "IMP-0-1", Decimal("2.50"), 1),
    ]


@pytest.mark.parametrize(
    ("on", "batch", "inserts"),
    [
        pytest.param(False, 1000, (20, 60), id="off: one per row"),
        pytest.param(True, 1000, (1, 1), id="on: one per table"),
        pytest.param(True, 7, (math.ceil(20 / 7), math.ceil(60 / 7)), id="on: batches of 7"),
    ],
)
def test_an_import_inserts_in_batches(category, brand, monkeypatch, on, batch, inserts):
    monkeypatch.setattr(bulk_writes, "BATCH", batch)
    payload = import_payload(category, brand, count=20, variants=3)
    rows = [
        catalog_services.ProductRow(
            **{**p, "variants": [catalog_services.VariantRow(**v) for v in p["variants"]]}
        )
        for p in payload["products"]
    ]
    with toggles.override(bulk_writes=on), CaptureQueriesContext(connection) as captured:
        catalog_services.product_import(rows=rows)
    kinds = statement_kinds(captured)
    assert (kinds["INSERT INTO catalog_product"], kinds["INSERT INTO catalog_variant"]) == inserts
    assert kinds["SELECT"] == 4  # taken slugs, taken SKUs, categories, brands: never per row
    assert Variant.objects.filter(product__slug__startswith="imp-").count() == 60


def test_an_import_is_staff_only(api_client, customer_client, category, brand):
    payload = import_payload(category, brand)
    assert post_import(api_client, payload).status_code == 401
    assert post_import(customer_client, payload).status_code == 403
    assert not Product.objects.exists()


BAD_IMPORTS = [
    pytest.param(
        lambda p, existing: p["products"][2].update(slug="imp-0"),
        {"products": {"2": {"slug": ["Slug 'imp-0' appears more than once in this import."]}}},
        id="slug-twice-in-the-import",
    ),
    pytest.param(
        lambda p, existing: p["products"][2]["variants"][1].update(sku="IMP-0-1"),
        {
            "products": {
                "2": {
                    "variants": {
                        "1": {"sku": ["SKU 'IMP-0-1' appears more than once in this import."]}
                    }
                }
            }
        },
        id="sku-twice-in-the-import",
    ),
    pytest.param(
        lambda p, existing: p["products"][1].update(slug=existing.product.slug),
        {"products": {"1": {"slug": ["A product with slug '{slug}' already exists."]}}},
        id="slug-taken",
    ),
    pytest.param(
        lambda p, existing: p["products"][0]["variants"][0].update(sku=existing.sku),
        {
            "products": {
                "0": {"variants": {"0": {"sku": ["A variant with SKU '{sku}' already exists."]}}}
            }
        },
        id="sku-taken",
    ),
    pytest.param(
        lambda p, existing: p["products"][1].update(category_id=424242, brand_id=434343),
        {
            "products": {
                "1": {
                    "category_id": ["No category with id 424242."],
                    "brand_id": ["No brand with id 434343."],
                }
            }
        },
        id="unknown-category-and-brand",
    ),
    pytest.param(
        lambda p, existing: p["products"][0]["variants"][1].update(price="0.00"),
        {
            "products": {
                "0": {
                    "variants": {
                        "1": {"price": ["Ensure this value is greater than or equal to 0.01."]}
                    }
                }
            }
        },
        id="zero-price",
    ),
    pytest.param(
        lambda p, existing: p["products"][2].update(slug="not a slug"),
        {
            "products": {
                "2": {
                    "slug": [
                        'Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.'
                    ]
                }
            }
        },
        id="bad-slug",
    ),
    pytest.param(
        lambda p, existing: p["products"][1].pop("variants"),
        {"products": {"1": {"variants": ["This field is required."]}}},
        id="no-variants-field",
    ),
    pytest.param(
        lambda p, existing: p["products"].clear(),
        {"products": {"non_field_errors": ["This list may not be empty."]}},
        id="no-products",
    ),
    pytest.param(
        lambda p, existing: p.update(products=[{}] * 10_001),
        {"products": {"non_field_errors": ["Ensure this field has no more than 10000 elements."]}},
        id="too-many-products",
    ),
]


@pytest.mark.parametrize(("spoil", "expected"), BAD_IMPORTS)
@pytest.mark.parametrize("state", ["off", "on"])
def test_a_bad_import_gets_field_messages_and_writes_nothing(
    staff_client, category, brand, spoil, expected, state
):
    existing = VariantFactory()
    payload = import_payload(category, brand)
    spoil(payload, existing)
    before = catalog_state()
    response = post_import(staff_client, payload, HTTP_X_PERF_TOGGLES=f"bulk_writes={state}")
    assert response.status_code == 400
    filled = json.dumps(expected).replace("{slug}", existing.product.slug)
    assert response.json() == json.loads(filled.replace("{sku}", existing.sku))
    assert catalog_state() == before


def test_an_import_that_loses_a_race_is_a_conflict_and_writes_nothing(
    staff_client, category, brand, monkeypatch
):
    # Another import takes a slug between the checks and the INSERTs: the unique constraint
    # catches it, and the whole import rolls back.
    taken = VariantFactory()
    monkeypatch.setattr(catalog_services, "_product_rows_check", lambda rows: None)
    payload = import_payload(category, brand)
    payload["products"][2]["slug"] = taken.product.slug
    before = catalog_state()
    response = post_import(staff_client, payload)
    assert response.status_code == 409
    assert response.json()["code"] == "catalog_changed"
    assert catalog_state() == before


def test_an_import_body_beyond_the_parser_cap_is_a_413(staff_client, category, brand, monkeypatch):
    monkeypatch.setattr(catalog_apis.ImportJSONParser, "max_bytes", 1000)
    response = post_import(staff_client, import_payload(category, brand, count=20))
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The body is ")
    assert not Product.objects.exists()


def test_an_import_body_beyond_django_s_default_cap_is_accepted(
    staff_client, category, brand, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000  # the endpoint has its own, larger cap
    response = post_import(staff_client, import_payload(category, brand, count=40))
    assert response.status_code == 201
    assert response.json() == {"products": 40, "variants": 80}
