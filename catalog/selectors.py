"""Reads of the catalog. Each returns a queryset or an object; none takes a request."""

from decimal import Decimal

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from catalog.models import Category, Product, Review, Variant
from shop.errors import InvalidInput, NotFound
from shop.techniques import (
    denormalized_fields,
    field_selection,
    local_cache,
    prefetch_related,
    select_related,
    sparse_fields,
)


def category_with_descendant_ids(*, category_id: int) -> list[int]:
    """The category and everything below it. The tree is small (tens of rows), so one
    query for all (id, parent) pairs and a walk in Python beats a recursive CTE here; the
    pairs are a hot lookup, cached in Redis (cache_aside on) and in the process (local_cache on)."""
    parents = local_cache.category_parents()
    if category_id not in parents:
        raise InvalidInput({"category": [f"No category with id {category_id}."]})
    children: dict[int | None, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found, stack = {category_id}, [category_id]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:  # a cycle made by hand must not loop forever
                found.add(child)
                stack.append(child)
    return sorted(found)


# The product columns the list shows, without the long description. `category` and `brand`
# load the foreign key ids the related rows are fetched (or JOINed) by. The rating and the
# review count are annotations of denormalized_fields.
PRODUCT_SUMMARY_FIELDS = ("id", "name", "slug", "category", "brand", "created_at")


def product_list(
    *,
    category_id: int | None = None,
    search: str | None = None,
    fetch: sparse_fields.Fetch = sparse_fields.EVERYTHING,
) -> QuerySet[Product]:
    """Active products, newest first. `fetch`: the fields the caller shows (sparse_fields),
    everything by default."""
    products = Product.objects.filter(is_active=True).order_by("-created_at", "-id")
    if category_id is not None:
        products = products.filter(
            category_id__in=category_with_descendant_ids(category_id=category_id)
        )
    if search:
        products = products.filter(name__icontains=search)
    products = field_selection.apply(products, *PRODUCT_SUMMARY_FIELDS)
    if fetch.needs("average_rating", "rating_count"):
        products = denormalized_fields.product_rating(products)
    return fetch.trim(select_related.apply(products, "category", "brand"))


def product_get(
    *, product_id: int, fetch: sparse_fields.Fetch = sparse_fields.EVERYTHING
) -> Product:
    products = Product.objects.filter(pk=product_id, is_active=True)
    products = prefetch_related.apply(products, "variants")
    if fetch.needs("average_rating", "rating_count"):
        products = denormalized_fields.product_rating(products)
    product = fetch.trim(select_related.apply(products, "category", "brand")).first()
    if product is None:
        raise NotFound(f"No product with id {product_id}.")
    return product


def review_list(*, product_id: int) -> QuerySet[Review]:
    if not Product.objects.filter(pk=product_id, is_active=True).exists():
        raise NotFound(f"No product with id {product_id}.")
    reviews = Review.objects.filter(product_id=product_id).order_by("-created_at", "-id")
    return denormalized_fields.review_author(reviews)


def most_reviewed_product_id() -> int | None:
    """The active product with the most reviews (ties: the lowest id), or None without
    reviews: the longest review list, the example the benchmark and the index plans use."""
    top = (
        Review.objects.filter(product__is_active=True)
        .values("product_id")
        .annotate(n=Count("id"))
        .order_by("-n", "product_id")
        .first()
    )
    return None if top is None else top["product_id"]


def category_rows() -> list[dict]:
    """Every category as `{"id", "name", "slug", "parent_id"}`, by id: the tree is small
    (tens of rows), read whole in one query."""
    return list(Category.objects.order_by("id").values("id", "name", "slug", "parent_id"))


def subtree_ids(*, rows: list[dict], category_id: int) -> list[int]:
    """The ids of the category and of everything below it, from category_rows()."""
    children: dict[int | None, list[int]] = {}
    for row in rows:
        children.setdefault(row["parent_id"], []).append(row["id"])
    found, stack = {category_id}, [category_id]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:  # a cycle made by hand must not loop forever
                found.add(child)
                stack.append(child)
    return sorted(found)


# The price bands of a category page's facets, on a product's lowest variant price:
# (label, from, up to but excluding; None: no bound).
PRICE_BANDS = (
    ("under-10", None, Decimal("10")),
    ("10-25", Decimal("10"), Decimal("25")),
    ("25-50", Decimal("25"), Decimal("50")),
    ("50-100", Decimal("50"), Decimal("100")),
    ("100-250", Decimal("100"), Decimal("250")),
    ("250-and-up", Decimal("250"), None),
)
# A rating facet counts the products rated at least this much (4 and up, 3 and up...).
RATING_FLOORS = (4, 3, 2, 1)


def _in_categories(category_ids: list[int]) -> QuerySet[Product]:
    return Product.objects.filter(is_active=True, category_id__in=category_ids)


def _with_price_from(products: QuerySet[Product]) -> QuerySet[Product]:
    """`price_from`: the product's lowest variant price (None without variants)."""
    lowest = Variant.objects.filter(product=OuterRef("pk")).order_by("price").values("price")[:1]
    return products.annotate(price_from=Subquery(lowest))


def category_products(*, category_ids: list[int]) -> QuerySet[Product]:
    """The active products in these categories, newest first, each with `price_from` and its
    rating (`average_rating`, `rating_count`: denormalized_fields)."""
    products = _with_price_from(_in_categories(category_ids))
    return denormalized_fields.product_rating(products).order_by("-created_at", "-id")


def category_facets(*, category_ids: list[int]) -> dict[str, list[dict]]:
    """Facet counts over the active products in these categories: by brand, by price band
    (of `price_from`) and by rating, one aggregate query each."""
    products = _in_categories(category_ids)
    brands = (
        products.values("brand_id", "brand__name")
        .annotate(n=Count("id"))
        .order_by("-n", "brand_id")
    )
    prices = _with_price_from(products).aggregate(
        **{label: Count("id", filter=_band(low, high)) for label, low, high in PRICE_BANDS}
    )
    ratings = denormalized_fields.product_rating(products).aggregate(
        **{f"r{floor}": Count("id", filter=Q(average_rating__gte=floor)) for floor in RATING_FLOORS}
    )
    return {
        "brand": [{"id": b["brand_id"], "name": b["brand__name"], "count": b["n"]} for b in brands],
        "price": [
            {"band": label, "min": low, "max": high, "count": prices[label]}
            for label, low, high in PRICE_BANDS
        ],
        "rating": [{"min_rating": f, "count": ratings[f"r{f}"]} for f in RATING_FLOORS],
    }


def _band(low: Decimal | None, high: Decimal | None) -> Q:
    band = Q(price_from__isnull=False)
    if low is not None:
        band &= Q(price_from__gte=low)
    if high is not None:
        band &= Q(price_from__lt=high)
    return band
