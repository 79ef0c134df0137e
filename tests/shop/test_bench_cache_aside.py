"""The cache_aside bench module: its pairs run on a small catalog, answer the same off and on,
and show what the chapter says of them: a hit runs no query, a cold run on is a miss that
stores the page, and the Redis GET is timed on the on side only."""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from shop import cache
from shop.bench.scenarios import cache_aside as scenarios
from tests.factories import CategoryFactory, ProductFactory, VariantFactory, review_by_service

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalog():
    """Two top categories, the larger with a child: the page is the larger one's."""
    big, small = CategoryFactory(), CategoryFactory()
    child = CategoryFactory(parent=big)
    for category in (big, child, child, small):
        product = ProductFactory(category=category)
        VariantFactory(product=product, price=Decimal("12.00"))
        review_by_service(product, 4)
    return big


def test_the_largest_top_category_is_the_page_measured(catalog):
    scenarios._category_prepare()
    assert scenarios._ids["category"] == catalog.pk
    scenarios.after()
    assert cache.get(scenarios._GET_PROBE) is cache.MISS


def test_the_pairs_run_and_a_hit_runs_no_query(catalog, tmp_path):
    call_command(
        "bench", "cache_aside", "--repeat", "2", "--report", str(tmp_path),
        stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip

    category, product = json.loads((tmp_path / "bench.json").read_text())["techniques"]
    for entry in (category, product):
        assert entry["same_answer"] is True and not entry["error"], entry["title"]
        assert entry["on"]["queries"] == 0 < entry["off"]["queries"]
        assert entry["on"]["metrics"]["cache_hits"]["p50"] >= 1
        # Cold, on is a miss: the page is built and stored.
        cold = entry["cold"]
        assert cold["on"]["queries"] == cold["off"]["queries"] > 0
        assert cold["on"]["metrics"]["cache_sets"]["p50"] >= 1
    assert category["off"]["queries"] == 6
    assert category["on"]["metrics"]["redis_get_ms"]["p50"] > 0
    assert category["off"]["metrics"].get("redis_get_ms", {}).get("p50", 0) == 0
