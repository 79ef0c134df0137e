"""GET /api/shipping/rates/: the shop's own shipping prices from its tax and shipping rate
tables, and the default rows `manage.py seed` writes."""

from decimal import Decimal

import pytest
from django.db import IntegrityError

from orders import rates
from orders.models import ShippingRate, TaxRate

pytestmark = pytest.mark.django_db


@pytest.fixture
def tables(settings):
    settings.SHOP_COUNTRY = "DE"
    TaxRate.objects.create(country="DE", rate=Decimal("19.00"))
    TaxRate.objects.create(country="FR", rate=Decimal("20.00"))
    for zone, method, base, per_kg, days in [
        ("domestic", "express", "9.90", "1.00", 1),
        ("domestic", "standard", "4.90", "0.50", 2),
        ("eu", "standard", "8.90", "1.50", 4),
        ("world", "standard", "19.90", "4.00", 8),
    ]:
        ShippingRate.objects.create(
            zone=zone, method=method, base_price=base, price_per_kg=per_kg, days=days
        )


def rates_of(api_client, query):
    response = api_client.get(f"/api/shipping/rates/?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_domestic_parcel_gets_every_method_cheapest_first_with_vat(api_client, tables):
    # 1 201 g is two started kilograms.
    assert rates_of(api_client, "country=de&weight_grams=1201") == {
        "country": "DE",
        "zone": "domestic",
        "tax_rate": "19.00",
        "methods": [
            {"method": "standard", "days": 2, "price": "5.90", "price_with_tax": "7.02"},
            {"method": "express", "days": 1, "price": "11.90", "price_with_tax": "14.16"},
        ],
    }


def test_another_country_of_the_tax_area_is_the_eu_zone_with_its_own_vat(api_client, tables):
    answer = rates_of(api_client, "country=FR&weight_grams=1000")
    assert (answer["zone"], answer["tax_rate"]) == ("eu", "20.00")
    assert answer["methods"] == [
        {"method": "standard", "days": 4, "price": "10.40", "price_with_tax": "12.48"}
    ]


def test_a_country_outside_the_tax_area_ships_to_the_world_without_vat(api_client, tables):
    answer = rates_of(api_client, "country=US&weight_grams=500")
    assert (answer["zone"], answer["tax_rate"]) == ("world", "0.00")
    assert answer["methods"] == [
        {"method": "standard", "days": 8, "price": "23.90", "price_with_tax": "23.90"}
    ]


def test_a_zone_without_rates_has_no_methods(api_client, tables):
    ShippingRate.objects.filter(zone="world").delete()
    assert rates_of(api_client, "country=US&weight_grams=1")["methods"] == []


@pytest.mark.parametrize(
    ("emptied", "empty_tables"),
    [
        pytest.param((TaxRate, ShippingRate), ["tax", "shipping"], id="both"),
        pytest.param((TaxRate,), ["tax"], id="tax"),
        pytest.param((ShippingRate,), ["shipping"], id="shipping"),
    ],
)
def test_an_empty_table_is_a_503_not_a_price_of_0(api_client, tables, emptied, empty_tables):
    """With no tax rates every country would be untaxed, with no shipping rates every zone
    would have no method: a shop not set up yet says so instead of quoting either."""
    for model in emptied:
        model.objects.all().delete()  # each delete evicts the lookup (local_cache's signals)
    response = api_client.get("/api/shipping/rates/?country=DE&weight_grams=1000")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "shipping_rates_not_configured"
    assert body["empty_tables"] == empty_tables
    assert "not configured" in body["detail"]


def test_the_rates_are_quoted_as_soon_as_they_are_loaded(api_client):
    path = "/api/shipping/rates/?country=FR&weight_grams=1000"
    assert api_client.get(path).status_code == 503
    rates.seed_rates()
    assert api_client.get(path).json()["tax_rate"] == rates.DEFAULT_TAX_RATES["FR"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("country=DEU&weight_grams=1", "country"),
        ("country=D1&weight_grams=1", "country"),
        ("weight_grams=1", "country"),
        ("country=DE&weight_grams=0", "weight_grams"),
        ("country=DE&weight_grams=70001", "weight_grams"),
        ("country=DE&weight_grams=heavy", "weight_grams"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client, query, field):
    response = api_client.get(f"/api/shipping/rates/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_the_tables_refuse_rates_that_make_no_sense():
    with pytest.raises(IntegrityError):
        TaxRate.objects.create(country="de", rate=Decimal("19.00"))


def test_seed_rates_writes_the_defaults_and_a_second_run_changes_nothing():
    assert rates.seed_rates() == (len(rates.DEFAULT_TAX_RATES), len(rates.DEFAULT_SHIPPING_RATES))
    first = (
        list(TaxRate.objects.values_list("country", "rate")),
        list(
            ShippingRate.objects.values_list("zone", "method", "base_price", "price_per_kg", "days")
        ),
    )
    rates.seed_rates()
    again = (
        list(TaxRate.objects.values_list("country", "rate")),
        list(
            ShippingRate.objects.values_list("zone", "method", "base_price", "price_per_kg", "days")
        ),
    )
    assert first == again
    assert len(first[0]) == len(rates.DEFAULT_TAX_RATES)
    assert {zone for zone, *_ in first[1]} == {"domestic", "eu", "world"}
