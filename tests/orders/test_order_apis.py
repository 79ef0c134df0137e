"""Placing, listing, reading and cancelling orders through the API, including every kind of
bad input: each gets its 4xx with field messages, and nothing is written or moved."""

import json
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.models import Variant
from orders.models import Order, OrderEvent, OrderItem, Payment
from tests.factories import AddressFactory, UserFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def variants():
    return [
        VariantFactory(price=Decimal("12.50"), stock=10),
        VariantFactory(price=Decimal("3.00"), stock=5),
    ]


def _order(client, items, **kwargs):
    return client.post("/api/orders/", {"items": items}, format="json", **kwargs)


def _snapshot():
    """Everything an order placement could write or move."""
    return (
        Order.objects.count(),
        OrderItem.objects.count(),
        Payment.objects.count(),
        OrderEvent.objects.count(),
        sorted(Variant.objects.values_list("sku", "stock")),
    )


def test_place_order_writes_everything_and_takes_stock(customer_client, customer, variants):
    response = _order(
        customer_client,
        [{"sku": variants[0].sku, "quantity": 2}, {"sku": variants[1].sku, "quantity": 3}],
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    # async_tasks off (as the suite holds it): paid and confirmed before the answer.
    assert body["status"] == "confirmed"
    assert body["item_count"] == 5
    assert body["total_amount"] == "34.00"
    assert [(item["sku"], item["quantity"], item["unit_price"]) for item in body["items"]] == [
        (variants[0].sku, 2, "12.50"),
        (variants[1].sku, 3, "3.00"),
    ]
    assert response["Location"] == f"/api/orders/{body['id']}/"

    order = Order.objects.get(pk=body["id"])
    assert order.user == customer
    assert order.shipping_address == customer.addresses.get()
    item = order.items.get(sku=variants[0].sku)
    assert item.product_name == variants[0].product.name
    assert list(order.payments.values_list("amount", "status")) == [
        (order.total_amount, "captured")
    ]
    assert list(order.events.values_list("kind", flat=True)) == [
        "placed",
        "paid",
        "confirmation_sent",
    ]
    assert sorted(order.stock_movements.values_list("variant__sku", "kind", "quantity")) == [
        (variants[0].sku, "sale", -2),
        (variants[1].sku, "sale", -3),
    ]
    assert Variant.objects.get(pk=variants[0].pk).stock == 8
    assert Variant.objects.get(pk=variants[1].pk).stock == 2


def test_idempotency_key_replays_the_first_order(customer_client, variants):
    items = [{"sku": variants[0].sku, "quantity": 1}]
    first = _order(customer_client, items, HTTP_IDEMPOTENCY_KEY="checkout-123")
    again = _order(customer_client, items, HTTP_IDEMPOTENCY_KEY="checkout-123")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Order.objects.count() == 1
    assert Variant.objects.get(pk=variants[0].pk).stock == 9


def test_idempotency_key_with_another_body_is_refused(customer_client, variants):
    _order(customer_client, [{"sku": variants[0].sku, "quantity": 1}], HTTP_IDEMPOTENCY_KEY="k-1")
    before = _snapshot()
    response = _order(
        customer_client, [{"sku": variants[0].sku, "quantity": 2}], HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert _snapshot() == before


def test_the_same_idempotency_key_is_independent_per_customer(variants):
    items = [{"sku": variants[0].sku, "quantity": 1}]
    responses = []
    for _ in range(2):
        client_ = APIClient()
        client_.force_authenticate(UserFactory())
        responses.append(_order(client_, items, HTTP_IDEMPOTENCY_KEY="shared"))
    assert [r.status_code for r in responses] == [201, 201]
    assert Order.objects.count() == 2


BAD_BODIES = [
    pytest.param(
        {"items": [{"sku": "NOPE", "quantity": 1}]},
        400,
        {"items": {"0": {"sku": ["Unknown SKU 'NOPE'."]}}},
        id="unknown-sku",
    ),
    pytest.param(
        {"items": [{"sku": "{sku0}", "quantity": 0}]},
        400,
        {"items": {"0": {"quantity": ["Must be between 1 and 1000."]}}},
        id="zero-quantity",
    ),
    pytest.param(
        {"items": [{"sku": "{sku0}", "quantity": -3}]},
        400,
        {"items": {"0": {"quantity": ["Must be between 1 and 1000."]}}},
        id="negative-quantity",
    ),
    pytest.param(
        {"items": [{"sku": "{sku0}", "quantity": 10**12}]},
        400,
        {"items": {"0": {"quantity": ["Must be between 1 and 1000."]}}},
        id="absurd-quantity",
    ),
    pytest.param(
        {"items": [{"sku": "{sku0}", "quantity": "two"}]},
        400,
        {"items": {"0": {"quantity": ["A valid integer is required."]}}},
        id="text-quantity",
    ),
    pytest.param(
        {"items": [{"sku": "{sku0}", "quantity": 1.5}]},
        400,
        {"items": {"0": {"quantity": ["A valid integer is required."]}}},
        id="fractional-quantity",
    ),
    pytest.param(
        {"items": [{"quantity": 1}]},
        400,
        {"items": {"0": {"sku": ["This field is required."]}}},
        id="missing-sku",
    ),
    pytest.param(
        {"items": []}, 400, {"items": ["An order needs at least one item."]}, id="no-items"
    ),
    pytest.param({}, 400, {"items": ["This field is required."]}, id="no-items-field"),
    pytest.param(
        {"items": "lots"},
        400,
        {"items": {"non_field_errors": ['Expected a list of items but got type "str".']}},
        id="items-not-a-list",
    ),
    pytest.param(
        {"items": [{"sku": "{sku0}", "quantity": 1}, {"sku": "{sku0}", "quantity": 2}]},
        400,
        {"items": {"1": {"sku": ["SKU '{sku0}' appears more than once; combine the quantities."]}}},
        id="duplicate-sku",
    ),
    pytest.param(
        {"items": [{"sku": "{sku0}", "quantity": 1}], "shipping_address_id": 999999},
        400,
        {"shipping_address_id": ["You have no address with id 999999."]},
        id="foreign-address",
    ),
]


@pytest.mark.parametrize(("body", "status", "expected"), BAD_BODIES)
def test_bad_order_input_gets_field_messages_and_writes_nothing(
    customer_client, variants, body, status, expected
):
    def fill(value):
        return json.loads(json.dumps(value).replace("{sku0}", variants[0].sku))

    before = _snapshot()
    response = customer_client.post("/api/orders/", fill(body), format="json")
    assert response.status_code == status
    assert response.json() == fill(expected)
    assert _snapshot() == before


@override_settings(ORDER_MAX_LINES=3)
def test_too_many_lines_is_refused(customer_client):
    items = [{"sku": VariantFactory().sku, "quantity": 1} for _ in range(4)]
    before = _snapshot()
    response = _order(customer_client, items)
    assert response.status_code == 400
    assert response.json() == {"items": ["An order can have at most 3 items, got 4."]}
    assert _snapshot() == before


def test_insufficient_stock_is_a_conflict_and_moves_no_stock(customer_client, variants):
    before = _snapshot()
    response = _order(
        customer_client,
        [{"sku": variants[0].sku, "quantity": 2}, {"sku": variants[1].sku, "quantity": 6}],
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Not enough stock for some items; nothing was ordered.",
        "code": "insufficient_stock",
        "items": [{"sku": variants[1].sku, "requested": 6, "available": 5}],
    }
    # The first line's stock was taken inside the transaction and given back by its rollback.
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ('{"items": [', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ("items=1", "text/plain"),
    ],
    ids=["truncated-json", "json-list", "unsupported-media-type"],
)
def test_malformed_bodies_are_4xx(customer_client, variants, raw, content_type):
    before = _snapshot()
    response = customer_client.post("/api/orders/", raw, content_type=content_type)
    assert response.status_code in (400, 415)
    assert response.json()  # a message, never an empty or HTML body
    assert _snapshot() == before


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_beyond_the_upload_limit_is_a_json_413(customer_client, variants):
    before = _snapshot()
    items = [{"sku": variants[0].sku, "quantity": 1}] * 100  # about 4 kB of JSON
    response = customer_client.post("/api/orders/", {"items": items}, format="json")
    assert response.status_code == 413
    assert response.json() == {
        "detail": "The body is larger than the 1000 bytes this endpoint accepts.",
        "code": "payload_too_large",
    }
    assert _snapshot() == before


@pytest.mark.parametrize("key", ["", "x" * 101, "has space", "naïve", "trailing-newline\n"])
def test_bad_idempotency_key_is_refused(customer_client, variants, key):
    before = _snapshot()
    response = _order(
        customer_client, [{"sku": variants[0].sku, "quantity": 1}], HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert _snapshot() == before


def test_anonymous_cannot_order_or_list(api_client, variants):
    assert _order(api_client, [{"sku": variants[0].sku, "quantity": 1}]).status_code == 401
    assert api_client.get("/api/orders/").status_code == 401
    assert Order.objects.count() == 0


def test_token_authentication_places_an_order(api_client, variants):
    user = UserFactory(username="token-user")
    token = api_client.post(
        "/api/auth/token/", {"username": "token-user", "password": "password"}, format="json"
    )
    assert token.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert _order(api_client, [{"sku": variants[0].sku, "quantity": 1}]).status_code == 201
    assert Order.objects.get().user == user


def test_wrong_password_gets_a_400_with_a_message(api_client):
    UserFactory(username="someone")
    response = api_client.post(
        "/api/auth/token/", {"username": "someone", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["non_field_errors"]


def test_order_list_shows_only_my_orders_newest_first(customer_client, variants):
    other = UserFactory()
    other_client = APIClient()
    other_client.force_authenticate(other)
    _order(other_client, [{"sku": variants[1].sku, "quantity": 1}])
    first = _order(customer_client, [{"sku": variants[0].sku, "quantity": 1}]).json()
    second = _order(customer_client, [{"sku": variants[1].sku, "quantity": 1}]).json()

    page = customer_client.get("/api/orders/").json()
    assert page["count"] == 2
    assert [order["id"] for order in page["results"]] == [second["id"], first["id"]]
    assert page["results"][0]["items"][0]["sku"] == variants[1].sku


def test_another_customers_order_is_not_found(customer_client, variants):
    other_client = APIClient()
    other_client.force_authenticate(UserFactory())
    theirs = _order(other_client, [{"sku": variants[0].sku, "quantity": 1}]).json()

    assert customer_client.get(f"/api/orders/{theirs['id']}/").status_code == 404
    before = _snapshot()
    assert customer_client.post(f"/api/orders/{theirs['id']}/cancel/").status_code == 404
    assert _snapshot() == before


def test_order_detail_has_items_payments_and_events(customer_client, variants):
    placed = _order(customer_client, [{"sku": variants[0].sku, "quantity": 1}]).json()
    detail = customer_client.get(f"/api/orders/{placed['id']}/").json()
    assert detail["items"] == placed["items"]
    assert [p["status"] for p in detail["payments"]] == ["captured"]
    assert [e["kind"] for e in detail["events"]] == ["placed", "paid", "confirmation_sent"]


def test_cancel_restocks_refunds_and_logs(customer_client, variants):
    placed = _order(
        customer_client,
        [{"sku": variants[0].sku, "quantity": 4}, {"sku": variants[1].sku, "quantity": 5}],
    ).json()
    assert Variant.objects.get(pk=variants[1].pk).stock == 0

    response = customer_client.post(f"/api/orders/{placed['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Variant.objects.get(pk=variants[0].pk).stock == 10
    assert Variant.objects.get(pk=variants[1].pk).stock == 5
    order = Order.objects.get(pk=placed["id"])
    assert list(order.payments.values_list("status", flat=True)) == ["refunded"]
    assert order.events.last().kind == "cancelled"
    assert order.events.last().data == {"restocked_units": 9}
    # The stock ledger: each line's sale, and its return.
    assert sorted(order.stock_movements.values_list("kind", "quantity")) == [
        ("return", 4),
        ("return", 5),
        ("sale", -5),
        ("sale", -4),
    ]
    # Totals are history: they stay what was charged.
    assert (order.item_count, str(order.total_amount)) == (9, "65.00")


def test_cancelling_twice_is_a_conflict_and_restocks_once(customer_client, variants):
    placed = _order(customer_client, [{"sku": variants[0].sku, "quantity": 4}]).json()
    customer_client.post(f"/api/orders/{placed['id']}/cancel/")
    before = _snapshot()
    response = customer_client.post(f"/api/orders/{placed['id']}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable"
    assert _snapshot() == before


def test_shipped_orders_cannot_be_cancelled(customer_client, variants):
    placed = _order(customer_client, [{"sku": variants[0].sku, "quantity": 1}]).json()
    Order.objects.filter(pk=placed["id"]).update(status=Order.Status.SHIPPED)
    assert customer_client.post(f"/api/orders/{placed['id']}/cancel/").status_code == 409


def test_huge_ids_in_urls_are_404_not_500(customer_client):
    assert customer_client.get("/api/orders/99999999999999999999999/").status_code == 404
    assert customer_client.get("/api/products/99999999999999999999999/").status_code == 404


def test_an_order_with_a_chosen_address(customer_client, customer, variants):
    second = AddressFactory(user=customer, is_default=False, city="Porto")
    response = customer_client.post(
        "/api/orders/",
        {"items": [{"sku": variants[0].sku, "quantity": 1}], "shipping_address_id": second.pk},
        format="json",
    )
    assert response.status_code == 201
    assert Order.objects.get(pk=response.json()["id"]).shipping_address == second


def test_an_order_total_beyond_what_the_columns_hold_is_a_400(customer_client):
    dear = VariantFactory(price=Decimal("99999999.99"), stock=1000)
    before = _snapshot()
    response = _order(customer_client, [{"sku": dear.sku, "quantity": 1000}])
    assert response.status_code == 400
    assert "exceeds" in response.json()["items"][0]
    assert _snapshot() == before


def test_a_customer_has_at_most_one_default_address(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        AddressFactory(user=customer, is_default=True)
