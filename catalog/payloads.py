"""The catalog's cacheable reads: each payload built in one place, as a plain JSON-able dict,
and read through the cache_aside technique; and what each write invalidates.

A view calls one function here and answers with what it returns. With cache_aside off the
function builds the payload every time; on, it is read from Redis and built only on a miss.
Either way the same function built the dict, so the two answers are the same bytes.

**Versions.** Each payload's shape has a version here, next to the code that builds it, and
its cache key carries it (`shop.cache.key(..., version=)`). Whoever changes a payload's shape
(here, or in the serializer a view passes in) bumps its version: a process of the new code
then never reads an entry an older process wrote, and the other way round during a rolling
deploy. `CACHE_SCHEMA_VERSION` (settings) moves every key at once.

**Invalidation.** The services that write call the `*_changed_on_commit` functions below
inside their transaction, and receivers do it for the deletes no service makes (a product's,
and a user's with their reviews, `connect_signals`); the deletes and the list generation's
bump run once it commits (shop/techniques/cache_aside.py says why on commit, and why a
generation for lists). The same
calls move the HTTP validators of those pages (shop/techniques/http_caching.py), so a client's
ETag stops matching exactly when the cached page goes.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from rest_framework import serializers

from catalog import selectors
from catalog.models import Product, Variant
from catalog.serializers import ProductDetailSerializer
from shop import cache
from shop.errors import NotFound
from shop.pagination import PagePagination
from shop.techniques import cache_aside, http_caching, sparse_fields, write_through

# Bump when the payload's shape changes (its builder below, or the serializer passed in), or
# what else the key may hold: 2 for the product page and the tree, whose keys may hold an
# invalidation's marker (shop.cache.invalidate), which an older process would serve as a page.
PRODUCT_DETAIL_VERSION = 2  # catalog.serializers.ProductDetailSerializer
PRODUCT_LIST_VERSION = 1  # ProductListApi.OutputSerializer, PagePagination's envelope
CATEGORY_TREE_VERSION = 2  # category_tree()
CATEGORY_PAGE_VERSION = 1  # category_page()

# How long an entry may live. A write drops what it changes on commit, so these bound the
# staleness only when that drop is lost (Redis down during the write), and free memory.
PRODUCT_TTL = 600
LIST_TTL = 300
CATEGORY_TREE_TTL = 3600
CATEGORY_PAGE_TTL = 300


def product_detail_key(product_id: int) -> str:
    return cache.key("product", product_id, version=PRODUCT_DETAIL_VERSION)


def category_tree_key() -> str:
    return cache.key("category-tree", version=CATEGORY_TREE_VERSION)


# --- the reads ---------------------------------------------------------------------------------


def product_detail(*, product_id: int, fields: sparse_fields.Requested) -> dict[str, Any]:
    """A product with its variants, as the view's serializer represents it, or the `fields`
    asked for (sparse_fields). A missing product is a 404 and is not cached."""
    if fields.sparse:
        # Built for its request alone: the cache holds whole pages only (see _SPARSE_BYPASS).
        product = selectors.product_get(product_id=product_id, fetch=fields.fetch)
        return _plain(fields.represent(product))

    def build() -> dict[str, Any]:
        return _product_detail_of(product_id, fields.serializer_class)

    return cache_aside.fetch(product_detail_key(product_id), build, ttl=PRODUCT_TTL)


def _product_detail_of(product_id: int, serializer_class: type[serializers.Serializer]) -> dict:
    return _plain(serializer_class(selectors.product_get(product_id=product_id)).data)


def product_list_page(
    *,
    request,
    view,
    fields: sparse_fields.Requested,
    category_id: int | None,
    search: str | None,
) -> dict[str, Any]:
    """A page of the product list, filtered, as PagePagination pages it: every field of the
    view's serializer, or the `fields` asked for (sparse_fields)."""

    def build() -> dict[str, Any]:
        products = selectors.product_list(
            category_id=category_id, search=search, fetch=fields.fetch
        )
        return _plain(fields.paginate(queryset=products, request=request, view=view).data)

    if fields.sparse:
        return build()  # the cache holds whole pages only (see _SPARSE_BYPASS)
    return cache_aside.fetch_list(
        "products",
        _url_digest(request),
        compute=build,
        ttl=LIST_TTL,
        version=PRODUCT_LIST_VERSION,
    )


# _SPARSE_BYPASS: a page asked for with `?fields=` is built for its request and never cached.
# Keying it on the normalized names would work (the URL digest already differs), but each
# combination a client sends would be one more entry to hold and to invalidate with the page,
# and its fetch is already the trimmed one: what sparse_fields measures is that fetch.


def category_tree() -> dict[str, Any]:
    """`{"categories": [{"id", "name", "slug", "children": [...]}, ...]}`: the roots, each
    with its children nested, by id."""

    def build() -> dict[str, Any]:
        rows = selectors.category_rows()
        nodes = {
            row["id"]: {"id": row["id"], "name": row["name"], "slug": row["slug"], "children": []}
            for row in rows
        }
        roots = []
        for row in rows:
            parent = nodes.get(row["parent_id"])
            (roots if parent is None else parent["children"]).append(nodes[row["id"]])
        return {"categories": roots}

    return cache_aside.fetch(category_tree_key(), build, ttl=CATEGORY_TREE_TTL)


class CategoryPagePagination(PagePagination):
    page_size = 24


def category_page(*, request, view, category_id: int) -> dict[str, Any]:
    """A category's page: its active products and those of every category below it, newest
    first, paged, with facet counts by brand, price band and rating over all of them.

    The catalog's most expensive read: the category tree, the count, the page and three
    aggregates over every product below the category (6 queries)."""

    def build() -> dict[str, Any]:
        rows = selectors.category_rows()
        category = next((row for row in rows if row["id"] == category_id), None)
        if category is None:
            raise NotFound(f"No category with id {category_id}.")
        ids = selectors.subtree_ids(rows=rows, category_id=category_id)
        products = selectors.category_products(category_ids=ids).values(*_CATEGORY_PAGE_COLUMNS)
        paginator = CategoryPagePagination()
        page = paginator.paginate_queryset(products, request, view=view)
        envelope = paginator.get_paginated_response([_page_product(p) for p in page]).data
        facets = selectors.category_facets(category_ids=ids)
        for band in facets["price"]:
            band["min"], band["max"] = _money(band["min"]), _money(band["max"])
        return {"category": category, **envelope, "facets": facets}

    return cache_aside.fetch_list(
        "category-page",
        category_id,
        _url_digest(request),
        compute=build,
        ttl=CATEGORY_PAGE_TTL,
        version=CATEGORY_PAGE_VERSION,
    )


_CATEGORY_PAGE_COLUMNS = (
    "id",
    "name",
    "slug",
    "category_id",
    "category__name",
    "brand_id",
    "brand__name",
    "average_rating",
    "rating_count",
    "price_from",
)


def _page_product(row: dict) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "slug": row["slug"],
        "category": {"id": row["category_id"], "name": row["category__name"]},
        "brand": {"id": row["brand_id"], "name": row["brand__name"]},
        "rating_avg": _money(row["average_rating"]),
        "review_count": row["rating_count"],
        "price_from": _money(row["price_from"]),
    }


# --- invalidation, called by the services inside their transaction ---------------------------


def products_changed_on_commit(
    *product_ids: int, lists: bool, using: str = DEFAULT_DB_ALIAS
) -> None:
    """These products' detail pages change (a price, a stock level, a rating, a category);
    with `lists`, so does what list pages show of them (not a stock level: no list shows it)."""
    keys = (product_detail_key(pk) for pk in product_ids)
    cache_aside.invalidate_on_commit(*keys, lists=lists, using=using)
    http_caching.changed_on_commit(product_ids=product_ids, lists=lists, using=using)


def variant_changed_on_commit(*, product_id: int, lists: bool) -> None:
    """A staff change of a variant's price or stock: its product's page is stored rebuilt
    (write_through on) or deleted (off) once the change commits; with `lists`, every list page
    moves to a new generation either way (no write can rebuild them)."""
    write_through.changed_on_commit(
        product_detail_key(product_id),
        build=lambda: _product_detail_build(product_id),
        lock=lambda: _product_rows_lock(product_id),
        ttl=PRODUCT_TTL,
    )
    cache_aside.invalidate_on_commit(lists=lists)
    http_caching.changed_on_commit(product_ids=(product_id,), lists=lists)


def _product_detail_build(product_id: int) -> dict[str, Any]:
    """The product page as its view builds it, outside a request: write_through's read-back,
    with the view's representation, so the page written through is the page a read would
    build, byte for byte."""
    return _product_detail_of(product_id, ProductDetailSerializer)


def _product_rows_lock(product_id: int) -> None:
    """Lock the rows a product page is built from, as an UPDATE of them would (FOR NO KEY
    UPDATE, which an order's new items referencing a variant do not wait for): the product,
    then its variants by id. A writer of any of them waits until the read-back has stored."""
    list(Product.objects.select_for_update(no_key=True).filter(pk=product_id).values_list("pk"))
    variants = Variant.objects.select_for_update(no_key=True).filter(product_id=product_id)
    list(variants.order_by("id").values_list("pk"))


def products_added_on_commit() -> None:
    """New products (a bulk import): no detail page was cached for them, every list may show
    them."""
    cache_aside.invalidate_on_commit(lists=True)
    http_caching.changed_on_commit(lists=True)


def categories_changed_on_commit(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """A category moved: the tree changes, and so does every list of a category's descendants."""
    cache_aside.invalidate_on_commit(category_tree_key(), lists=True, using=using)
    http_caching.changed_on_commit(everything=True, using=using)


def _product_deleting(sender, instance, using, **kwargs) -> None:
    """A product deleted by any ORM path: its page goes, and so does every list that shows
    it. Its reviews go with it by Django's cascade."""
    products_changed_on_commit(instance.pk, lists=True, using=using)


def _user_deleting(sender, instance, using, **kwargs) -> None:
    """A user deleted: Django's cascade deletes their reviews, which no service sees, and the
    trigger moves each reviewed product's rating and review count (denormalized_fields). One
    query for those products while the reviews are still there, then one invalidation of them
    all, whatever the number of reviews."""
    from catalog.models import Review

    reviews = Review.objects.using(using).filter(author_id=instance.pk).order_by()
    product_ids = list(reviews.values_list("product_id", flat=True).distinct())
    if product_ids:
        products_changed_on_commit(*product_ids, lists=True, using=using)


def connect_signals() -> None:
    """Invalidate on the ORM deletes that no service makes (catalog.apps, at start-up): a
    product's, and a user's, whose reviews Django's cascade deletes.

    `pre_delete`, sent inside the delete's transaction (django.db.models.deletion.Collector),
    so the invalidation runs once that commits, and the rows the receiver reads are still
    there. None on `Review`: a receiver there would cost one invalidation per review deleted
    and turn its fast delete off (each review SELECTed before its DELETE); a review deleted
    alone is the admin's, which invalidates its own (catalog/admin.py). Writes that send no
    signal (raw SQL) are bounded by the TTLs; the seed, which truncates, drops this database's
    keys once it commits (shop/seed/redis_state.py)."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import pre_delete

    pre_delete.connect(_product_deleting, sender=Product, dispatch_uid="payloads.product")
    pre_delete.connect(_user_deleting, sender=get_user_model(), dispatch_uid="payloads.user")


# --- helpers -------------------------------------------------------------------------------------


def _url_digest(request) -> str:
    """A list page's identity: its absolute URL, which its `next` and `previous` links are
    built from, so two URLs that differ in any way never share an entry."""
    return hashlib.sha256(request.build_absolute_uri().encode()).hexdigest()[:32]


def _money(value: Decimal | None) -> str | None:
    """Two places, as DRF's DecimalField(decimal_places=2) writes it."""
    return None if value is None else f"{Decimal(value).quantize(Decimal('0.01')):f}"


def _plain(data: Any) -> Any:
    """DRF's ReturnDict/ReturnList (and any dict or list inside) as plain dicts and lists:
    what Redis stores is the payload alone, not a serializer backlink."""
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_plain(value) for value in data]
    return data
