"""algorithmic_complexity: checkout validation gives the same errors, in the same order, off and
on; off it compares every pair of lines (O(n²)), on it does a hash lookup per line (O(n))."""

import json
from collections import Counter
from types import SimpleNamespace

import pytest
from django.test import override_settings

from orders import services
from orders.models import Order
from shop import toggles
from shop.errors import InvalidInput
from shop.techniques import algorithmic_complexity
from tests.factories import ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def skus():
    variants = VariantFactory.create_batch(4, stock=50)
    inactive = VariantFactory(product=ProductFactory(is_active=False))
    return [v.sku for v in variants] + [inactive.sku]


CARTS = {
    # Later copies of a SKU are the errors, each on its own line.
    "duplicates": [(0, 1), (1, 1), (0, 2), (2, 1), (1, 1), (0, 1)],
    # A SKU nobody sells, and one whose product is no longer active.
    "unknown": [(0, 1), ("NOPE-1", 1), (1, 1), (4, 1), ("NOPE-2", 3)],
    # Quantity and duplicate errors interleaved, both on one line at position 4.
    "mixed": [(0, 0), (1, 1), (0, 1), (2, 5000), (1, 0), (3, 1)],
    "valid": [(3, 2), (0, 1), (2, 4), (1, 1)],
}


def cart(name, skus):
    return [
        {"sku": skus[sku] if isinstance(sku, int) else sku, "quantity": quantity}
        for sku, quantity in CARTS[name]
    ]


def stable(response):
    """The body without what differs between two placed orders: ids and timestamps."""
    body = response.json()
    if response.status_code == 201:
        for key in ("id", "created_at", "paid_at"):
            body.pop(key)
        for item in body["items"]:
            item.pop("id")
    return body


@pytest.mark.parametrize("name", list(CARTS))
def test_a_cart_gets_the_same_answer_in_the_same_order_off_and_on(customer_client, skus, name):
    responses = {}
    for state in ("off", "on"):
        responses[state] = customer_client.post(
            "/api/orders/",
            {"items": cart(name, skus)},
            format="json",
            HTTP_X_PERF_TOGGLES=f"algorithmic_complexity={state}",
        )
    off, on = responses["off"], responses["on"]
    assert off.status_code == on.status_code == (201 if name == "valid" else 400)
    if name != "valid":
        assert off.content == on.content  # byte for byte: the errors' order is the same too
    assert stable(off) == stable(on)
    assert Order.objects.count() == (2 if name == "valid" else 0)


def test_the_errors_are_the_ones_the_api_documents(customer_client, skus):
    mixed = customer_client.post("/api/orders/", {"items": cart("mixed", skus)}, format="json")
    repeated = f"SKU {skus[0]!r} appears more than once; combine the quantities."
    assert list(mixed.json()["items"].items()) == [
        ("0", {"quantity": ["Must be between 1 and 1000."]}),
        ("2", {"sku": [repeated]}),
        ("3", {"quantity": ["Must be between 1 and 1000."]}),
        (
            "4",
            {
                "quantity": ["Must be between 1 and 1000."],
                "sku": [f"SKU {skus[1]!r} appears more than once; combine the quantities."],
            },
        ),
    ]
    unknown = customer_client.post("/api/orders/", {"items": cart("unknown", skus)}, format="json")
    assert unknown.json() == {
        "items": {
            "1": {"sku": ["Unknown SKU 'NOPE-1'."]},
            "3": {"sku": [f"Unknown SKU {skus[4]!r}."]},
            "4": {"sku": ["Unknown SKU 'NOPE-2'."]},
        }
    }


@override_settings(ORDER_MAX_LINES=2000)
def test_lines_validate_raises_the_same_errors_off_and_on_for_a_large_cart():
    # Lines 1000 to 1499 repeat lines 0 to 499; every seventh line has a bad quantity.
    lines = [
        services.OrderLine(sku=f"SKU-{n % 1000}", quantity=0 if n % 7 == 0 else 1)
        for n in range(1500)
    ]
    errors = {}
    for on in (False, True):
        with toggles.override(algorithmic_complexity=on), pytest.raises(InvalidInput) as raised:
            services.lines_validate(lines=lines)
        errors[on] = json.dumps(raised.value.field_errors)  # a string keeps the order
    assert errors[False] == errors[True]
    failing = [n for n in range(1500) if n >= 1000 or n % 7 == 0]
    assert list(json.loads(errors[True])["items"]) == [str(n) for n in failing]


def counting_skus(n):
    """n distinct SKUs for the lines, and n variants with equal SKUs that are other objects (as
    they are when one comes from the request and one from the database), plus a counter of
    every SKU comparison made with `==`."""
    counter = Counter()

    class Sku(str):
        __hash__ = str.__hash__

        def __eq__(self, other):
            counter["=="] += 1
            return str.__eq__(self, other)

    skus = [Sku(f"SKU-{i:05d}") for i in range(n)]
    variants = [SimpleNamespace(sku=Sku(f"SKU-{i:05d}")) for i in range(n)]
    return skus, variants, counter


@pytest.mark.parametrize("n", [10, 1000])
def test_off_compares_every_pair_of_lines(n):
    skus, variants, counter = counting_skus(n)
    with toggles.override(algorithmic_complexity=False):
        assert algorithmic_complexity.repeats(skus) == [False] * n
        assert counter["=="] == n * (n - 1) // 2  # each line against every line before it
        counter.clear()
        assert algorithmic_complexity.match(skus, variants) == variants
        assert counter["=="] == n * (n + 1) // 2  # line i scans variants until the i-th


@pytest.mark.parametrize("n", [10, 1000])
def test_on_makes_one_lookup_per_line(n):
    skus, variants, counter = counting_skus(n)
    with toggles.override(algorithmic_complexity=True):
        assert algorithmic_complexity.repeats(skus) == [False] * n
        assert counter["=="] == 0  # distinct SKUs never share a hash: no comparison at all
        assert algorithmic_complexity.match(skus, variants) == variants
        assert counter["=="] == n  # the one comparison that confirms each dict hit


def test_both_find_repeats_and_unknown_skus_alike():
    skus = ["A", "B", "A", "C", "B", "D"]
    variants = [SimpleNamespace(sku=sku) for sku in ("C", "A", "X", "B")]
    answers = {}
    for on in (False, True):
        with toggles.override(algorithmic_complexity=on):
            answers[on] = (
                algorithmic_complexity.repeats(skus),
                [v and v.sku for v in algorithmic_complexity.match(skus, variants)],
            )
    assert answers[False] == answers[True]
    assert answers[True] == (
        [False, False, True, False, True, False],
        ["A", "B", "A", "C", "B", None],
    )
