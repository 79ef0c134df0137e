"""Fetch only the columns a list view shows, instead of every column of every row.

Off: the product list runs `SELECT catalog_product.*`, so each row brings its `description`
(2-4 kB of text that the list never shows) from PostgreSQL to Python: about 150 kB of
unused text for a page of 50, read from TOAST storage, sent over the socket, decoded into
`str` objects and then dropped.
On: `only(...)` names the columns the list's serializer reads, so the SELECT lists just
those. The rest are deferred: Django would load a deferred field with one more query per
row if anything touched it, which is why the tests count queries with this on.

The column list must keep each foreign key's id column (`category`, `brand`) whatever the
other techniques do: with select_related off, each `product.category` is fetched by its id,
and with it on, the JOIN needs it too.
"""

from django.db.models import QuerySet

from shop import toggles

TOGGLE = toggles.register(
    "field_selection",
    group="data_access",
    description="Fetch only the columns list views show (no Product.description)",
)


def apply(queryset: QuerySet, *fields: str) -> QuerySet:
    if not toggles.is_enabled(TOGGLE.name):
        return queryset  # naive: SELECT every column, the long description included
    return queryset.only(*fields)
