"""Which data the bench runs on: the row counts, the seeded size they match, and `--size`."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

import django
from django.contrib.auth import get_user_model
from django.db import connection

from catalog.models import Product, Review, Variant
from catalog.selectors import most_reviewed_product_id
from orders.models import Order, OrderItem
from orders.selectors import busiest_customer
from shop.seed import SIZES
from shop.seed import seed as run_seed

# A seeded size matches when users, products and orders are each within this share of the
# spec: the demo's own orders and a few hand-made ones must not make it re-seed.
TOLERANCE = 0.02


def row_counts() -> dict[str, int]:
    return {
        "users": get_user_model().objects.count(),
        "products": Product.objects.count(),
        "variants": Variant.objects.count(),
        "reviews": Review.objects.count(),
        "orders": Order.objects.count(),
        "order_items": OrderItem.objects.count(),
    }


def busiest_username() -> str:
    """The customer with the most orders: the longest order history, which scenarios page."""
    busiest = busiest_customer()
    if busiest is None:
        raise LookupError("no orders: seed the database first")
    return busiest[0].username


def most_reviewed_product() -> int:
    """The active product with the most reviews: the longest review list."""
    product_id = most_reviewed_product_id()
    if product_id is None:
        raise LookupError("no reviews: seed the database first")
    return product_id


def matching_size(rows: dict[str, int]) -> str | None:
    """The seeded size these counts are, or None (a hand-made or test data set)."""
    for name, spec in SIZES.items():
        wanted = {"users": spec.users, "products": spec.products, "orders": spec.orders}
        if all(abs(rows[key] - n) <= n * TOLERANCE for key, n in wanted.items()):
            return name
    return None


def ensure(size: str, *, out: Callable[[str], None]) -> dict[str, int]:
    """Make sure the database holds a data set of `size`, seeding it first if it does not.
    Seeding replaces all shop data, so it says so before it starts."""
    rows = row_counts()
    found = matching_size(rows)
    if found == size:
        return rows
    out(
        f"The database holds {'a ' + found if found else 'no seeded'} data set "
        f"({rows['users']:,} users, {rows['products']:,} products, {rows['orders']:,} orders), "
        f"not {size}: seeding {size} first."
    )
    run_seed(size=size, out=out)
    return row_counts()


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (postgres,) = cursor.fetchone()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgres": postgres,
        "load_average_1m": round(load[0], 2) if load else None,
    }
