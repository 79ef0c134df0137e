"""Fetch reverse relations for a whole page in one query each, instead of one query per row.

Off: the order history fetches a page of orders, then the serializer reads each order's
`items`, and every `order.items.all()` runs its own `SELECT ... WHERE order_id = %s`:
1 + N queries for N orders (the N+1 problem, on the "many" side of a relation).
On: `prefetch_related("items")` runs one `SELECT ... WHERE order_id IN (...)` for the whole
page after the orders are fetched, and hands each order its rows: 1 + 1 queries.

Unlike select_related there is no JOIN: a JOIN to a one-to-many relation would repeat every
order's columns once per item. Prefetching costs one query per relation, whatever the page
size, so it pays off on lists. On a single object (an order's detail with its items,
payments and events) both paths run one query per relation, and the toggle changes nothing
but the shape of the SQL (`= %s` against `IN (%s)`).
"""

from django.db.models import Prefetch, QuerySet

from shop import toggles

TOGGLE = toggles.register(
    "prefetch_related",
    group="data_access",
    description="Prefetch reverse relations (order items, variants) in one query per relation",
)


def apply(queryset: QuerySet, *lookups: str | Prefetch) -> QuerySet:
    """Prefetch `lookups` when the toggle is on.

    The naive path must read the same relation lazily, so a lookup names a relation the
    serializer reads through its manager (`order.items.all()`). A `Prefetch(..., to_attr=...)`
    creates an attribute that exists only when prefetched, so it has no naive twin: refused.
    """
    for lookup in lookups:
        if isinstance(lookup, Prefetch) and lookup.to_attr:
            raise ValueError(f"{lookup.prefetch_to!r}: to_attr has no lazy equivalent to compare")
    if not toggles.is_enabled(TOGGLE.name):
        return queryset  # naive: each row's relation manager runs its own query
    return queryset.prefetch_related(*lookups)
