"""Writes to the catalog and their business rules. The denormalized fields (a product's rating,
a review's author name) are kept right by database triggers, not here."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from catalog import payloads
from catalog.models import Brand, Category, Product, Review, Variant
from shop.errors import Conflict, InvalidInput, NotFound
from shop.lookups import AnyOf
from shop.techniques import bulk_writes


def review_create(
    *, product_id: int, author: AbstractBaseUser, rating: int, title: str, body: str
) -> Review:
    """Write a review. The product's rating_avg and review_count and the review's
    author_username are kept by database triggers (catalog migration 0004), which see every
    write, this INSERT included: nothing here recomputes them."""
    with transaction.atomic():
        # Locking the product row serializes reviews of one product: a second review by the
        # same author waits here, then finds the first and gets a 409, not an IntegrityError.
        # The trigger takes the same lock, so this costs no extra wait.
        product = Product.objects.select_for_update().filter(pk=product_id, is_active=True).first()
        if product is None:
            raise NotFound(f"No product with id {product_id}.")
        if Review.objects.filter(product_id=product_id, author_id=author.pk).exists():
            raise Conflict("You have already reviewed this product.", code="already_reviewed")
        # author_username is the name this request authenticated with, which a rename may
        # have made stale since: the trigger replaces it with auth_user's current name, and
        # Django reads the stored value back from the INSERT's RETURNING clause.
        review = Review.objects.create(
            product=product,
            author=author,
            author_username=author.get_username(),
            rating=rating,
            title=title,
            body=body,
            created_at=timezone.now(),
        )
        # The trigger has moved the product's rating and review count, which lists show too.
        payloads.products_changed_on_commit(product_id, lists=True)
    return review


# Products per import request. 10k products with 3 variants each and short descriptions are
# about 9 MB of JSON, which bulk_create writes in about 1.2 s (shop/techniques/bulk_writes.py).
PRODUCT_IMPORT_MAX = 10_000


@dataclass(frozen=True)
class VariantRow:
    sku: str
    name: str
    price: Decimal
    stock: int


@dataclass(frozen=True)
class ProductRow:
    name: str
    slug: str
    description: str
    category_id: int
    brand_id: int
    variants: Sequence[VariantRow]


@dataclass(frozen=True)
class ProductImport:
    products: int  # how many were created
    variants: int


def product_import(*, rows: Sequence[ProductRow]) -> ProductImport:
    """Create products with their variants, all or nothing.

    Every row is checked before anything is written: slugs and SKUs must be new and appear once
    in the import, and each category and brand must exist. Errors are keyed by position, as DRF
    does: `{"products": {"3": {"variants": {"0": {"sku": ["..."]}}}}}`. bulk_writes decides
    whether the rows go in one INSERT each or in batches.
    """
    if not rows:
        raise InvalidInput({"products": ["An import needs at least one product."]})
    if len(rows) > PRODUCT_IMPORT_MAX:
        message = f"An import can have at most {PRODUCT_IMPORT_MAX} products, got {len(rows)}."
        raise InvalidInput({"products": [message]})
    _product_rows_check(rows=rows)
    now = timezone.now()
    products = [
        Product(
            name=row.name,
            slug=row.slug,
            description=row.description,
            category_id=row.category_id,
            brand_id=row.brand_id,
            created_at=now,
        )
        for row in rows
    ]
    try:
        with transaction.atomic():
            bulk_writes.insert(Product, products)
            variants = [
                Variant(
                    product_id=product.pk,  # not product=: its checks cost 60 ms for 30k rows
                    sku=variant.sku,
                    name=variant.name,
                    price=variant.price,
                    stock=variant.stock,
                )
                for product, row in zip(products, rows, strict=True)
                for variant in row.variants
            ]
            bulk_writes.insert(Variant, variants)
            payloads.products_added_on_commit()
    except IntegrityError as exc:
        # Another writer got in between the checks and the INSERTs.
        raise Conflict(
            "The catalog changed while importing (a slug or SKU was taken, or a category or "
            "brand removed); nothing was imported.",
            code="catalog_changed",
        ) from exc
    return ProductImport(products=len(products), variants=len(variants))


def _product_rows_check(*, rows: Sequence[ProductRow]) -> None:
    """Every problem in the import at once, as one InvalidInput: four queries, one pass."""
    slugs = [row.slug for row in rows]
    skus = [variant.sku for row in rows for variant in row.variants]
    taken_slugs = set(
        Product.objects.filter(AnyOf(F("slug"), slugs)).values_list("slug", flat=True)
    )
    taken_skus = set(Variant.objects.filter(AnyOf(F("sku"), skus)).values_list("sku", flat=True))
    category_ids = {row.category_id for row in rows}
    categories = set(Category.objects.filter(pk__in=category_ids).values_list("pk", flat=True))
    brand_ids = {row.brand_id for row in rows}
    brands = set(Brand.objects.filter(pk__in=brand_ids).values_list("pk", flat=True))
    seen_slugs: set[str] = set()
    seen_skus: set[str] = set()
    errors: dict[int, dict] = {}
    for index, row in enumerate(rows):
        fields: dict[str, object] = {}
        if row.slug in taken_slugs:
            fields["slug"] = [f"A product with slug {row.slug!r} already exists."]
        elif row.slug in seen_slugs:
            fields["slug"] = [f"Slug {row.slug!r} appears more than once in this import."]
        seen_slugs.add(row.slug)
        if row.category_id not in categories:
            fields["category_id"] = [f"No category with id {row.category_id}."]
        if row.brand_id not in brands:
            fields["brand_id"] = [f"No brand with id {row.brand_id}."]
        variant_errors: dict[int, dict] = {}
        for position, variant in enumerate(row.variants):
            if variant.sku in taken_skus:
                message = f"A variant with SKU {variant.sku!r} already exists."
            elif variant.sku in seen_skus:
                message = f"SKU {variant.sku!r} appears more than once in this import."
            else:
                message = None
            if message:
                variant_errors[position] = {"sku": [message]}
            seen_skus.add(variant.sku)
        if variant_errors:
            fields["variants"] = variant_errors
        if fields:
            errors[index] = fields
    if errors:
        raise InvalidInput({"products": errors})


def variant_update(
    *, variant_id: int, price: Decimal | None = None, stock: int | None = None
) -> Variant:
    """Staff set a variant's price and/or stock. Its product's page changes; a price also moves
    the product on list pages (their `price from` and price facets), a stock level does not."""
    if price is None and stock is None:
        raise InvalidInput({"non_field_errors": ["Send a price, a stock level or both."]})
    fields = {
        name: value for name, value in (("price", price), ("stock", stock)) if value is not None
    }
    with transaction.atomic():
        variant = Variant.objects.select_for_update().filter(pk=variant_id).first()
        if variant is None:
            raise NotFound(f"No variant with id {variant_id}.")
        for name, value in fields.items():
            setattr(variant, name, value)
        variant.save(update_fields=list(fields))
        payloads.variant_changed_on_commit(product_id=variant.product_id, lists="price" in fields)
    return variant


def product_move(*, product_id: int, category_id: int) -> Product:
    """Staff move a product to another category."""
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(pk=product_id).first()
        if product is None:
            raise NotFound(f"No product with id {product_id}.")
        if not Category.objects.filter(pk=category_id).exists():
            raise InvalidInput({"category": [f"No category with id {category_id}."]})
        product.category_id = category_id
        product.save(update_fields=["category", "updated_at"])
        payloads.products_changed_on_commit(product_id, lists=True)
    return product


def category_move(*, category_id: int, parent_id: int | None) -> Category:
    """Staff move a category under another (None: to the top). A category cannot be moved
    inside itself. Every category row is locked first, in id order: two moves at once could
    otherwise each pass the check and make a cycle together."""
    with transaction.atomic():
        parents = dict(
            Category.objects.select_for_update().order_by("id").values_list("id", "parent_id")
        )
        if category_id not in parents:
            raise NotFound(f"No category with id {category_id}.")
        if parent_id is not None:
            if parent_id not in parents:
                raise InvalidInput({"parent": [f"No category with id {parent_id}."]})
            ancestor, seen = parent_id, set()
            while ancestor is not None and ancestor not in seen:  # a cycle made by hand ends it
                if ancestor == category_id:
                    raise InvalidInput({"parent": ["A category cannot be moved inside itself."]})
                seen.add(ancestor)
                ancestor = parents[ancestor]
        category = Category.objects.get(pk=category_id)
        category.parent_id = parent_id
        # save(), not update(): its post_save signal is what local_cache evicts the tree on.
        category.save(update_fields=["parent"])
        payloads.categories_changed_on_commit()
    return category
