"""The denormalized_fields bench module: its write-cost scenario measures the INSERT without
catalog_review's upkeep triggers (off) and with them (on), checks that before it times
anything, and its hooks always leave every upkeep trigger enabled."""

import json
import threading
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from catalog.models import Review
from shop.bench.measure import BenchError
from shop.bench.scenarios import denormalized_fields as scenarios
from shop.techniques import denormalized_fields
from tests.factories import (
    OrderFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
    review_by_service,
)

# ALTER TABLE refuses a table with pending deferred foreign-key checks, as a test's
# never-committed transaction would have: these tests commit, as the bench does.
pytestmark = pytest.mark.django_db(transaction=True)

ALL = sorted(name for names in denormalized_fields.UPKEEP_TRIGGERS.values() for name in names)


def _drift() -> int:
    return sum(item.rows for item in denormalized_fields.drift())


def _disabled() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgenabled = 'D' ORDER BY 1")
        return [name for (name,) in cursor.fetchall()]


def _elsewhere(write) -> None:
    """Run `write` as another request would, on its own connection, and wait for it."""

    def run():
        try:
            write()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def test_before_disables_only_what_a_review_insert_fires_and_after_restores_all():
    product = ProductFactory()
    renamed = review_by_service(ProductFactory()).author  # their review copies their name
    try:
        scenarios.before(False)
        assert _disabled() == sorted(denormalized_fields.UPKEEP_TRIGGERS["catalog_review"])
        review_by_service(product)  # written without upkeep: the product still says 0 reviews
        # Others keep writing meanwhile: a rename and a new order keep their copies.
        _elsewhere(lambda: OrderFactory(lines=[(VariantFactory(), 3)]))
        _elsewhere(lambda: get_user_model().objects.filter(pk=renamed.pk).update(username="x1"))
        drifted = {item.copy.name: item.rows for item in denormalized_fields.drift() if item.rows}
        assert drifted == {"Product.rating_avg": 1, "Product.review_count": 1}
    finally:
        restored = scenarios.after()
    assert sorted(restored) == sorted(denormalized_fields.UPKEEP_TRIGGERS["catalog_review"])
    assert _disabled() == []

    # A run killed with every upkeep trigger off (an older bench did that): after() repairs all.
    assert sorted(denormalized_fields.upkeep_triggers(enabled=False)) == ALL  # all 8 existed
    assert sorted(scenarios.after()) == ALL
    assert scenarios.after() == []  # at start-up, or twice: harmless
    scenarios.before(True)
    Review.objects.all().delete()
    assert _drift() == 0


def test_the_off_side_is_checked_before_timing(monkeypatch):
    product = ProductFactory()
    for rating in (5, 3):
        review_by_service(product, rating)
    UserFactory()  # a customer who has not reviewed it
    (write,) = [s for s in scenarios.EXTRA_SCENARIOS if s.writes]
    write.prepare()  # off leaves the stored count alone, on adds the review
    assert _disabled() == [] and Review.objects.count() == 2  # all rolled back

    # A before() that disables nothing would time the upkeep on both sides: refused.
    monkeypatch.setattr(scenarios, "before", lambda enabled: None)
    with pytest.raises(BenchError, match=r"after before\(False\) a new review added 1"):
        write.prepare()


def test_the_write_cost_pair_runs_and_answers_the_same(tmp_path):
    products = ProductFactory.create_batch(3)
    for rating in (5, 3, 4):
        review_by_service(products[0], rating)
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
