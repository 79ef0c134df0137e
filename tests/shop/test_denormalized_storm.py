"""`manage.py denormalized_storm`: a short storm of concurrent writes on separate connections,
then denormalized_check finds no drift."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from shop import denormalized_storm
from shop.techniques import denormalized_fields
from tests.factories import OrderFactory, ProductFactory, UserFactory, VariantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def shop():
    products = ProductFactory.create_batch(6)
    variants = [VariantFactory(product=p, price=Decimal("4.99")) for p in products]
    users = UserFactory.create_batch(12)
    for i, user in enumerate(users[:6]):
        OrderFactory(user=user, lines=[(variants[i], 1), (variants[(i + 1) % 6], 2)])


def test_a_storm_leaves_no_drift(shop):
    out = StringIO()
    try:
        call_command("denormalized_storm", "--seconds", "2", "--workers", "4", stdout=out)
        status = 0
    except SystemExit as exc:
        status = exc.code
    output = out.getvalue()
    assert status == 0, output
    assert "no drift" in output and "errors: 0" in output
    assert all(item.rows == 0 for item in denormalized_fields.drift())


def test_every_kind_of_write_runs(shop):
    totals = denormalized_storm.run(seconds=2, workers=4, seed=7)
    assert set(totals.done) == set(denormalized_storm.WRITES)
    assert not totals.errors
