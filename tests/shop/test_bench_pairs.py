"""Each pair runs the naive code its chapter describes: the select_related and
prefetch_related scenarios check, before anything is timed, that their off side sends the lazy
per-row queries, and refuse to run when another technique stands in for them."""

import pytest

from shop.bench.measure import BenchError
from shop.bench.scenarios import prefetch_related, select_related
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    OrderFactory,
    ProductFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    categories = CategoryFactory.create_batch(3)
    brands = BrandFactory.create_batch(4)
    for i in range(12):
        ProductFactory(category=categories[i % 3], brand=brands[i % 4])


@pytest.fixture
def history(customer):
    variant = VariantFactory()
    for _ in range(7):
        OrderFactory(user=customer, lines=[(variant, 1)])


@pytest.mark.parametrize(
    ("module", "data"), [(select_related, "catalog"), (prefetch_related, "history")]
)
def test_the_naive_path_is_checked_before_timing(module, data, request, monkeypatch):
    request.getfixturevalue(data)
    # Held off (with the caches and the HTTP layer, which would answer instead of the query).
    assert module.SCENARIO.hold["fast_serialization"] is False
    module.SCENARIO.prepare()  # the held toggles let the lazy per-row access run off

    # fast_serialization on stands in for lazy access with a per-row values() query of its
    # own: the same number of queries, but not the naive code, so the scenario refuses.
    # (shop.bench.holds' entries are read-only: the module's name for it is swapped instead.)
    monkeypatch.setattr(module, "HOLD", {**module.HOLD, "fast_serialization": True})
    with pytest.raises(BenchError, match="off sent 0 of 'SELECT"):
        module.SCENARIO.prepare()
