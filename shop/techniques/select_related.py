"""JOIN forward foreign keys into the same query, instead of one query per row (N+1).

Off: the product list fetches products, then each row's `category` and `brand` cost a query
of their own when the serializer reads them: 1 + 2N queries for N rows.
On: `select_related` JOINs both tables into the one query.
"""

from django.db.models import QuerySet

from shop import toggles

TOGGLE = toggles.register(
    "select_related",
    group="data_access",
    description="JOIN forward foreign keys (category, brand) instead of a query per row",
)


def apply(queryset: QuerySet, *fields: str) -> QuerySet:
    if not toggles.is_enabled(TOGGLE.name):
        return queryset  # naive: each row.category access runs its own query
    return queryset.select_related(*fields)
