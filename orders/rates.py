"""The shop's tax and shipping rate tables: their reads, the estimate built from them, and the
rows a new shop starts with.

Both tables are tiny (a row per country, a row per zone and method) and read by every shipping
estimate, so each is read whole as one hot lookup of local_cache (`shop/techniques/local_cache.py`):
from the process's L1, Redis, or PostgreSQL, and evicted by every save or delete of a row.

An empty table is a shop not set up yet (`manage.py seed` writes the defaults), not a price of
0: with no tax rates every country would be outside the tax area, untaxed, and with no shipping
rates no destination would have a method. The estimate then raises `RatesNotConfigured`, a 503.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction

from orders.models import ShippingRate, TaxRate
from shop.errors import DomainError
from shop.techniques import local_cache

CENT = Decimal("0.01")

# What `manage.py seed` writes (`seed_rates`): standard VAT rates of a few EU countries, and
# three zones of two methods each. Illustrative figures, in EUR.
DEFAULT_TAX_RATES = {
    "AT": "20.00",
    "BE": "21.00",
    "DE": "19.00",
    "ES": "21.00",
    "FR": "20.00",
    "IE": "23.00",
    "IT": "22.00",
    "LU": "17.00",
    "NL": "21.00",
    "PL": "23.00",
}
DEFAULT_SHIPPING_RATES = [
    # zone, method, base price, price per started kg, days
    ("domestic", "standard", "4.90", "0.50", 2),
    ("domestic", "express", "9.90", "1.00", 1),
    ("eu", "standard", "8.90", "1.50", 4),
    ("eu", "express", "19.90", "2.50", 2),
    ("world", "standard", "19.90", "4.00", 8),
    ("world", "express", "44.90", "6.00", 4),
]


class RatesNotConfigured(DomainError):
    """A rate table is empty: there is no price to quote until the rates are loaded."""

    status = 503
    code = "shipping_rates_not_configured"


def tax_rates() -> dict[str, Decimal]:
    """Every country's VAT rate, in percent: `{"DE": Decimal("19.00"), ...}`."""

    def compute() -> dict[str, str]:
        return {
            country: str(rate) for country, rate in TaxRate.objects.values_list("country", "rate")
        }

    rates = local_cache.fetch(local_cache.TAX_RATES, local_cache.TAX_RATES.key(), compute)
    return {country: Decimal(rate) for country, rate in rates.items()}


def shipping_rates() -> list[tuple[str, str, Decimal, Decimal, int]]:
    """Every shipping rate, as (zone, method, base price, price per kg, days), cheapest first
    within a zone."""

    def compute() -> list[tuple[str, str, str, str, int]]:
        rows = ShippingRate.objects.values_list(
            "zone", "method", "base_price", "price_per_kg", "days"
        )
        return [
            (zone, method, str(base), str(per_kg), days)
            for zone, method, base, per_kg, days in rows
        ]

    rows = local_cache.fetch(local_cache.SHIPPING_RATES, local_cache.SHIPPING_RATES.key(), compute)
    return [
        (zone, method, Decimal(base), Decimal(per_kg), days)
        for zone, method, base, per_kg, days in rows
    ]


def zone_of(country: str, taxed: dict[str, Decimal]) -> str:
    """The shop's country is domestic, the other countries of its tax area (a TaxRate row) are
    `eu`, every other country is `world`."""
    if country == settings.SHOP_COUNTRY:
        return ShippingRate.Zone.DOMESTIC
    return ShippingRate.Zone.EU if country in taxed else ShippingRate.Zone.WORLD


@dataclass(frozen=True)
class Method:
    method: str
    days: int
    price: Decimal  # before tax
    price_with_tax: Decimal


@dataclass(frozen=True)
class Estimate:
    country: str
    zone: str
    tax_rate: Decimal  # percent; 0 outside the tax area
    methods: list[Method]


def estimate(*, country: str, weight_grams: int) -> Estimate:
    """The shop's own shipping prices for a parcel to `country`, before and with the VAT of the
    destination, from the two rate tables: base price + price per started kilogram. Raises
    RatesNotConfigured when either table is empty."""
    taxed = tax_rates()
    shipping = shipping_rates()
    empty = [name for name, rows in (("tax", taxed), ("shipping", shipping)) if not rows]
    if empty:
        raise RatesNotConfigured(
            f"The shop's {' and '.join(empty)} rates are not configured, so no shipping price "
            "can be quoted.",
            empty_tables=empty,
        )
    zone = zone_of(country, taxed)
    rate = taxed.get(country, Decimal("0.00"))
    kilograms = math.ceil(weight_grams / 1000)
    methods = []
    for row_zone, method, base, per_kg, days in shipping:
        if row_zone != zone:
            continue
        price = base + per_kg * kilograms
        with_tax = (price * (100 + rate) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        methods.append(Method(method=method, days=days, price=price, price_with_tax=with_tax))
    methods.sort(key=lambda m: (m.price, m.method))
    return Estimate(country=country, zone=zone, tax_rate=rate, methods=methods)


def seed_rates(*, using: str = DEFAULT_DB_ALIAS) -> tuple[int, int]:
    """Write the default rows (`manage.py seed`), replacing the rates of the same country or
    zone and method and leaving any other row; returns (tax rates, shipping rates) written.
    Each save evicts the lookups (local_cache's signals)."""
    with transaction.atomic(using=using):
        for country, rate in DEFAULT_TAX_RATES.items():
            TaxRate.objects.using(using).update_or_create(
                country=country, defaults={"rate": Decimal(rate)}
            )
        for zone, method, base, per_kg, days in DEFAULT_SHIPPING_RATES:
            ShippingRate.objects.using(using).update_or_create(
                zone=zone,
                method=method,
                defaults={
                    "base_price": Decimal(base),
                    "price_per_kg": Decimal(per_kg),
                    "days": days,
                },
            )
    return len(DEFAULT_TAX_RATES), len(DEFAULT_SHIPPING_RATES)
