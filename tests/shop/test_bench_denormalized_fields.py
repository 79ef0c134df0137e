"""The denormalized_fields bench module: its write-cost scenario measures the INSERT without
the upkeep triggers (off) and with them (on), and its hooks always leave them enabled."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from catalog import services as catalog_services
from catalog.models import Review
from shop.bench.scenarios import denormalized_fields as scenarios
from shop.techniques import denormalized_fields
from tests.factories import OrderFactory, ProductFactory, UserFactory, VariantFactory

# ALTER TABLE refuses a table with pending deferred foreign-key checks, as a test's
# never-committed transaction would have: these tests commit, as the bench does.
pytestmark = pytest.mark.django_db(transaction=True)

ALL = sorted(name for names in denormalized_fields.UPKEEP_TRIGGERS.values() for name in names)


def _review(product, rating=4):
    return catalog_services.review_create(
        product_id=product.pk, author=UserFactory(), rating=rating, title="t", body="b"
    )


def _drift() -> int:
    return sum(item.rows for item in denormalized_fields.drift())


def test_before_disables_the_triggers_and_after_restores_them_any_number_of_times():
    product = ProductFactory()
    try:
        scenarios.before(False)
        _review(product)  # written without upkeep: the product still says 0 reviews
        assert _drift() == 2  # rating_avg and review_count
    finally:
        scenarios.after()
    assert denormalized_fields.upkeep_triggers(enabled=True) == []  # after() enabled them all
    scenarios.after()  # at start-up, or twice: harmless
    assert sorted(denormalized_fields.upkeep_triggers(enabled=False)) == ALL  # all 8 existed
    scenarios.before(True)
    Review.objects.all().delete()
    assert _drift() == 0


def test_the_write_cost_pair_runs_and_answers_the_same(tmp_path):
    products = ProductFactory.create_batch(3)
    for rating in (5, 3, 4):
        _review(products[0], rating)
    customer = UserFactory()
    OrderFactory(user=customer, lines=[(VariantFactory(), 2)])
    reviews_before = Review.objects.count()

    call_command(
        "bench", "denormalized_fields", "--repeat", "2", "--report", str(tmp_path),
        stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip

    entries = json.loads((tmp_path / "bench.json").read_text())["techniques"]
    (write,) = [entry for entry in entries if entry["title"].startswith("write cost")]
    assert write["same_answer"] is True and write["answer_stable"] is True
    assert write["off"]["status"] == write["on"]["status"] == 201
    assert write["off"]["queries"] == write["on"]["queries"]  # the upkeep is inside the INSERT
    assert all(entry["same_answer"] for entry in entries)
    assert denormalized_fields.upkeep_triggers(enabled=True) == []  # left enabled
    assert Review.objects.count() == reviews_before  # every write rolled back
    assert _drift() == 0
