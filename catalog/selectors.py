"""Reads of the catalog. Each returns a queryset or an object; none takes a request."""

from django.db.models import Count, QuerySet

from catalog.models import Product, Review
from shop.errors import InvalidInput, NotFound
from shop.techniques import (
    denormalized_fields,
    field_selection,
    local_cache,
    prefetch_related,
    select_related,
)


def category_with_descendant_ids(*, category_id: int) -> list[int]:
    """The category and everything below it. The tree is small (tens of rows), so one
    query for all (id, parent) pairs and a walk in Python beats a recursive CTE here; the
    pairs are a hot lookup, cached in Redis and (local_cache on) in the process."""
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


def product_list(*, category_id: int | None = None, search: str | None = None) -> QuerySet[Product]:
    products = Product.objects.filter(is_active=True).order_by("-created_at", "-id")
    if category_id is not None:
        products = products.filter(
            category_id__in=category_with_descendant_ids(category_id=category_id)
        )
    if search:
        products = products.filter(name__icontains=search)
    products = field_selection.apply(products, *PRODUCT_SUMMARY_FIELDS)
    products = denormalized_fields.product_rating(products)
    return select_related.apply(products, "category", "brand")


def product_get(*, product_id: int) -> Product:
    products = Product.objects.filter(pk=product_id, is_active=True)
    products = prefetch_related.apply(products, "variants")
    products = denormalized_fields.product_rating(products)
    product = select_related.apply(products, "category", "brand").first()
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
