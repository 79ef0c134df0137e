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

from catalog import apis as catalog_apis
from catalog import imports as catalog_imports
from catalog import services as catalog_services
from catalog.models import Product, Variant
from orders import services as order_services
from orders.models import Order, OrderEvent, OrderItem, Payment
from shop import toggles
from shop.techniques import bulk_writes
from tests.concurrency import THREADS, run_concurrently
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
        # Not the gateway's keys: they are unique per charge, each attempt's own.
        list(
            Payment.objects.order_by("id").values(
                "id", "order_id", "amount", "status", "created_at", "updated_at"
            )
        ),
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
    # Paid and confirmed in the request (async_tasks off, as the suite holds it): three events.
    assert len(orders) == 1 and len(order_items) == 6 and len(payments) == 1 and len(events) == 3
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
                "INSERT INTO orders_orderevent": 1,
            },
            id="off",
        ),
        pytest.param(
            True,
            {
                "UPDATE catalog_variant": 1,
                "INSERT INTO orders_orderitem": 1,
                # One event, `placed`: nothing to batch.
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
    # async_tasks on, as the bench pair holds it (shop/bench/holds.py): the order's own writes;
    # the charge and the rest are published on commit, which the test's transaction never does.
    # transactional_outbox held off: its outbox rows and NOTIFY would add statements to both sides.
    with (
        toggles.override(bulk_writes=on, async_tasks=True, transactional_outbox=False),
        CaptureQueriesContext(connection) as captured,
    ):
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
        with (
            toggles.override(bulk_writes=on, async_tasks=True, transactional_outbox=False),
            CaptureQueriesContext(connection) as captured,
        ):
            order_services.order_place(user=customer, lines=lines)
        counts[on] = len(captured)
    # 2 reads + 50 UPDATEs + 1 order + 50 items + 1 payment + 1 event, and 2 for the savepoint
    # of the service's transaction (async_tasks on, as the bench holds it: the payment call
    # and what follows it run on workers). bulk_writes saves the 98 per line.
    assert counts == {False: 107, True: 9}
    assert counts[False] >= 8 * counts[True]


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

    assert run_concurrently(place, THREADS) == [True] * THREADS
    assert set(Variant.objects.values_list("stock", flat=True)) == {100 - THREADS}


# --- importing products ---------------------------------------------------------------------


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


def product_error(index, field, message):
    detail = message if isinstance(message, dict) else [message]
    return {"products": {str(index): {field: detail}}}


def variant_error(index, position, field, message):
    return {"products": {str(index): {"variants": {str(position): {field: [message]}}}}}


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
    # DRF's own messages for values of the wrong type, size or range. The plain check passes
    # each of these bodies to the serializer, so they are the messages the serializer alone gave.
    pytest.param(
        lambda p, existing: p["products"][0].update(name=["a list"]),
        product_error(0, "name", "Not a valid string."),
        id="name-not-a-string",
    ),
    pytest.param(
        lambda p, existing: p["products"][0].update(name="   "),
        product_error(0, "name", "This field may not be blank."),
        id="name-blank",
    ),
    pytest.param(
        lambda p, existing: p["products"][1].update(name="x" * 201),
        product_error(1, "name", "Ensure this field has no more than 200 characters."),
        id="name-too-long",
    ),
    pytest.param(
        lambda p, existing: p["products"][1]["variants"][0].update(sku="S" * 41),
        variant_error(1, 0, "sku", "Ensure this field has no more than 40 characters."),
        id="sku-too-long",
    ),
    pytest.param(
        lambda p, existing: p["products"][0].pop("description"),
        product_error(0, "description", "This field is required."),
        id="description-missing",
    ),
    pytest.param(
        lambda p, existing: p["products"][0].update(description=None),
        product_error(0, "description", "This field may not be null."),
        id="description-null",
    ),
    pytest.param(
        lambda p, existing: p["products"][0].update(description="a\x00b"),
        product_error(0, "description", "Null characters are not allowed."),
        id="description-with-nul",
    ),
    pytest.param(
        lambda p, existing: p["products"][2]["variants"][1].update(stock=-1),
        variant_error(2, 1, "stock", "Ensure this value is greater than or equal to 0."),
        id="negative-stock",
    ),
    pytest.param(
        lambda p, existing: p["products"][0]["variants"][0].update(stock=1_000_000_001),
        variant_error(0, 0, "stock", "Ensure this value is less than or equal to 1000000000."),
        id="stock-too-big",
    ),
    pytest.param(
        lambda p, existing: p["products"][0]["variants"][0].update(stock=True),
        variant_error(0, 0, "stock", "A valid integer is required."),
        id="stock-a-boolean",
    ),
    pytest.param(
        lambda p, existing: p["products"][0]["variants"][0].update(stock=1.5),
        variant_error(0, 0, "stock", "A valid integer is required."),
        id="stock-a-fraction",
    ),
    pytest.param(
        lambda p, existing: p["products"][0]["variants"][0].update(price="cheap"),
        variant_error(0, 0, "price", "A valid number is required."),
        id="price-not-a-number",
    ),
    pytest.param(
        lambda p, existing: p["products"][0]["variants"][0].update(price="1.999"),
        variant_error(0, 0, "price", "Ensure that there are no more than 2 decimal places."),
        id="price-three-decimals",
    ),
    pytest.param(
        lambda p, existing: p["products"][0]["variants"][0].update(price="123456789.00"),
        variant_error(0, 0, "price", "Ensure that there are no more than 10 digits in total."),
        id="price-too-big",
    ),
    pytest.param(
        lambda p, existing: p["products"][1]["variants"][0].update(price="-1.00"),
        variant_error(1, 0, "price", "Ensure this value is greater than or equal to 0.01."),
        id="price-negative",
    ),
    pytest.param(
        lambda p, existing: p["products"][0].update(category_id="abc"),
        product_error(0, "category_id", "A valid integer is required."),
        id="category-not-a-number",
    ),
    pytest.param(
        lambda p, existing: p["products"][0].update(brand_id=0),
        product_error(0, "brand_id", "Ensure this value is greater than or equal to 1."),
        id="brand-zero",
    ),
    pytest.param(
        lambda p, existing: p["products"].__setitem__(1, "not an object"),
        product_error(1, "non_field_errors", "Invalid data. Expected a dictionary, but got str."),
        id="product-not-an-object",
    ),
    pytest.param(
        lambda p, existing: p["products"][1]["variants"].__setitem__(0, 5),
        variant_error(
            1, 0, "non_field_errors", "Invalid data. Expected a dictionary, but got int."
        ),
        id="variant-not-an-object",
    ),
    pytest.param(
        lambda p, existing: p["products"][1].update(variants={"sku": "X"}),
        product_error(
            1, "variants", {"non_field_errors": ['Expected a list of items but got type "dict".']}
        ),
        id="variants-not-a-list",
    ),
    pytest.param(
        lambda p, existing: p["products"][1]["variants"].extend(
            {"sku": f"MORE-{n}", "name": "More", "price": "1.00", "stock": 1} for n in range(99)
        ),
        product_error(
            1,
            "variants",
            {"non_field_errors": ["Ensure this field has no more than 100 elements."]},
        ),
        id="too-many-variants",
    ),
    pytest.param(
        lambda p, existing: p.update(products={"0": {}}),
        {"products": {"non_field_errors": ['Expected a list of items but got type "dict".']}},
        id="products-not-a-list",
    ),
    pytest.param(
        # The serializer's errors come first, alone, as before: the duplicate slug of product 2
        # is only reported once the body is well formed.
        lambda p, existing: (
            p["products"][0]["variants"][0].update(price="free"),
            p["products"][2].update(slug="imp-0"),
        ),
        variant_error(0, 0, "price", "A valid number is required."),
        id="field-error-before-duplicates",
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


# The import reads a well-formed body with a plain check (catalog.imports.plain_import_rows) and
# hands anything else to the serializer. Each body below goes both ways: the answer and the rows
# written must be the same as with the serializer alone. Some are valid in a form only the
# serializer converts, the others are wrong in a way the plain check must not hide.
BODIES = {
    "well-formed": lambda p: None,
    "spaces-to-trim": lambda p: (
        p["products"][0].update(name="  Spaced  ", slug=" imp-0\n", description="Text.\n\n"),
        p["products"][0]["variants"][0].update(sku=" IMP-0-0 ", price=" 7.25 "),
    ),
    "prices-to-quantize": lambda p: (
        p["products"][0]["variants"][0].update(price="5"),
        p["products"][0]["variants"][1].update(price="0.5"),
        p["products"][1]["variants"][0].update(price="99999999.99"),
    ),
    "longest-values": lambda p: p["products"][1].update(name="n" * 200, slug="s" * 220),
    "not-ascii": lambda p: p["products"][0].update(name="Café ☕", description="Größe: 42 — ok"),
    "unknown-keys": lambda p: (p.update(note="x"), p["products"][0].update(colour="red")),
    "no-variants": lambda p: p["products"][0].update(variants=[]),
    "numbers-the-serializer-converts": lambda p: (
        p["products"][0].update(name=42, category_id=str(p["products"][0]["category_id"])),
        p["products"][0]["variants"][0].update(price=5.5, stock="7", name=3.5),
    ),
    "ids-as-floats": lambda p: p["products"][2].update(
        brand_id=float(p["products"][2]["brand_id"])
    ),
    "unicode-slug": lambda p: p["products"][0].update(slug="café"),
    "surrogate": lambda p: p["products"][0].update(name="a\ud800b"),
    "blank-sku": lambda p: p["products"][0]["variants"][1].update(sku=""),
    "price-zero": lambda p: p["products"][0]["variants"][1].update(price="0.00"),
    "price-exponent": lambda p: p["products"][0]["variants"][1].update(price="1e2"),
    "price-infinite": lambda p: p["products"][0]["variants"][1].update(price="Infinity"),
    "null-stock": lambda p: p["products"][0]["variants"][1].update(stock=None),
    "huge-id": lambda p: p["products"][0].update(category_id=2**63),
    "duplicate-sku-in-a-product": lambda p: p["products"][1]["variants"][1].update(sku="IMP-1-0"),
    "body-a-list": lambda p: p.update(products="x"),
}


@pytest.mark.parametrize("spoil", BODIES.values(), ids=BODIES.keys())
def test_the_plain_check_answers_as_the_serializer_alone(
    staff_client, category, brand, frozen_now, monkeypatch, spoil
):
    payload = import_payload(category, brand)
    spoil(payload)
    results = {}
    for way in ("plain check first", "serializer alone"):
        with rolled_back(CATALOG_TABLES), monkeypatch.context() as patch:
            if way == "serializer alone":
                patch.setattr(catalog_imports, "plain_import_rows", lambda data: None)
            # json.dumps escapes what the test client's encoder cannot send (a lone surrogate).
            response = staff_client.post(
                "/api/staff/products/import/", json.dumps(payload), content_type="application/json"
            )
            results[way] = (response.status_code, response.json(), catalog_state())
    assert results["plain check first"] == results["serializer alone"]


def serializer_rows(payload):
    data = catalog_apis.ProductImportApi.InputSerializer(data=payload)
    data.is_valid(raise_exception=True)
    return [
        catalog_services.ProductRow(
            **{**p, "variants": [catalog_services.VariantRow(**v) for v in p["variants"]]}
        )
        for p in data.validated_data["products"]
    ]


@pytest.mark.parametrize(
    "body", ["well-formed", "spaces-to-trim", "prices-to-quantize", "longest-values", "not-ascii"]
)
def test_the_plain_check_reads_a_well_formed_body_as_the_serializer_does(category, brand, body):
    payload = import_payload(category, brand)
    BODIES[body](payload)
    rows = catalog_imports.plain_import_rows(payload)
    assert rows is not None  # read without the serializer
    # The same values, down to their types and a price's places: Decimal("5") == Decimal("5.00").
    assert repr(rows) == repr(serializer_rows(payload))


@pytest.mark.parametrize(
    "body", ["numbers-the-serializer-converts", "ids-as-floats", "unicode-slug", "surrogate"]
)
def test_the_plain_check_leaves_anything_else_to_the_serializer(category, brand, body):
    payload = import_payload(category, brand)
    BODIES[body](payload)
    assert catalog_imports.plain_import_rows(payload) is None


def test_a_well_formed_import_does_not_run_the_serializer(
    staff_client, category, brand, monkeypatch
):
    def refuse(*args, **kwargs):
        raise AssertionError("the serializer ran")

    monkeypatch.setattr(catalog_apis.ProductImportApi, "InputSerializer", refuse)
    response = post_import(staff_client, import_payload(category, brand, count=5))
    assert (response.status_code, response.json()) == (201, {"products": 5, "variants": 10})


def test_the_import_looks_up_slugs_and_skus_as_one_array_each(category, brand):
    payload = import_payload(category, brand, count=20, variants=3)
    rows = catalog_imports.plain_import_rows(payload)
    with CaptureQueriesContext(connection) as captured:
        catalog_services.product_import(rows=rows)
    lookups = [q["sql"] for q in captured.captured_queries if "= ANY(" in q["sql"]]
    # 20 slugs, 60 SKUs: one array literal each, where `__in` would list 80 values.
    assert len(lookups) == 2
    assert lookups[0].startswith('SELECT "catalog_product"."slug"')
    assert lookups[1].startswith('SELECT "catalog_variant"."sku"')
    assert not any(" IN (" in sql for sql in lookups)


def test_an_import_of_products_without_variants_checks_an_empty_sku_array(
    staff_client, category, brand
):
    response = post_import(staff_client, import_payload(category, brand, count=4, variants=0))
    assert (response.status_code, response.json()) == (201, {"products": 4, "variants": 0})


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
