"""The catalog: a category tree, brands, products with variants (SKUs), and reviews."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")), name="category_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        seen = set()
        ancestor = self.parent
        while ancestor is not None and ancestor.pk not in seen:
            if self.pk is not None and ancestor.pk == self.pk:
                raise ValidationError({"parent": "A category cannot be inside itself."})
            seen.add(ancestor.pk)
            ancestor = ancestor.parent


class Brand(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    # Deliberately long (a few kB per row): the field_selection technique shows what
    # fetching it for list views costs.
    description = models.TextField()
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="products")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    # Denormalized from Review, kept right by PostgreSQL triggers on catalog_review
    # (catalog/migrations/0004_denormalized_fields_triggers.py).
    rating_avg = models.DecimalField(max_digits=3, decimal_places=2, default=0)
    review_count = models.PositiveIntegerField(default=0)
    # Times the product page was viewed, counted by the write_behind technique
    # (shop/techniques/write_behind.py): one UPDATE a view (off), or counted in Redis and added
    # here in bulk by a periodic flush (on), so up to a flush interval behind. Staff-only: the
    # public product payload never shows it.
    view_count = models.PositiveBigIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """A sellable SKU of a product: its own price and stock."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    # Capped well below the column's 2^31 so restocking a cancelled order can never overflow.
    stock = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(1_000_000_000)])
    # Moves with every change of stock (a trigger sees to it, catalog/migrations/0005): the
    # inventory_locking technique's optimistic strategy writes only if it is still the one read.
    version = models.PositiveBigIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gt=0), name="variant_price_positive"),
        ]

    def __str__(self) -> str:
        return self.sku


class Review(models.Model):
    """A customer's review of a product: the shop's "post", with an author."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews"
    )
    # Denormalized copy of author.username, so review lists need no JOIN to auth_user. A
    # trigger writes it on INSERT and on every rename; the database default makes Django read
    # the stored value back from the INSERT (RETURNING).
    author_username = models.CharField(max_length=150, db_default="")
    rating = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    title = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "author"], name="review_one_per_author"),
            models.CheckConstraint(
                condition=models.Q(rating__gte=1, rating__lte=5), name="review_rating_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.author_username} on {self.product_id}: {self.rating}"


class ViewCountFlush(models.Model):
    """The ledger of the write_behind flush: one row per batch of product views moved from
    Redis into `Product.view_count`, written in the same transaction as the counts. A flush
    killed after its commit and before it deleted the batch from Redis leaves the batch behind;
    the next flush finds this row and deletes the batch without adding it a second time."""

    flush_id = models.CharField(max_length=64, primary_key=True)
    products = models.PositiveIntegerField()
    views = models.PositiveBigIntegerField()
    applied_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["applied_at"]

    def __str__(self) -> str:
        return f"{self.flush_id}: {self.views} views of {self.products} products"
