from django.contrib import admin
from django.db import router, transaction

from catalog import payloads
from catalog.models import Brand, Category, Product, Review, Variant


class CachedPagesAdmin(admin.ModelAdmin):
    """An edit in the admin is a write like any other: the cached pages that show the row go
    once the admin's transaction commits (catalog/payloads.py). Rare, so broad.

    The invalidation must run after the write commits: outside a transaction `on_commit` runs
    at once, so a delete would empty the cache before the rows go, and a read in between would
    cache them again for a whole TTL. Django runs the change form, the changelist's edits and
    the delete page in a transaction, but not the changelist's actions ("delete selected"
    calls `delete_queryset` bare): each path that invalidates opens its own (a savepoint
    inside Django's). `save_model` invalidates nothing: `save_related`, after it in the same
    transaction, does it for the row and its inlines."""

    def cached_pages_changed(self, obj, *, using: str) -> None:
        raise NotImplementedError

    def _using(self) -> str:
        """The database the admin writes to: its transaction's, and the one whose commit
        the invalidation waits for."""
        return router.db_for_write(self.model)

    def save_related(self, request, form, formsets, change):
        using = self._using()
        with transaction.atomic(using=using):
            super().save_related(request, form, formsets, change)  # after the inlines (variants)
            self.cached_pages_changed(form.instance, using=using)

    def delete_model(self, request, obj):
        using = self._using()
        with transaction.atomic(using=using):
            self.cached_pages_changed(obj, using=using)  # before: the rows naming it are there
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        using = self._using()
        with transaction.atomic(using=using):
            for obj in queryset:
                self.cached_pages_changed(obj, using=using)
            super().delete_queryset(request, queryset)


class _NamedByProducts(CachedPagesAdmin):
    """A category or brand: its name is on the page of every product in it."""

    def cached_pages_changed(self, obj, *, using: str) -> None:
        field = "category" if isinstance(obj, Category) else "brand"
        products = Product.objects.using(using).filter(**{field: obj.pk})
        product_ids = products.values_list("pk", flat=True)
        payloads.products_changed_on_commit(*product_ids, lists=True, using=using)
        payloads.categories_changed_on_commit(using=using)


@admin.register(Category)
class CategoryAdmin(_NamedByProducts):
    list_display = ["id", "name", "parent"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Brand)
class BrandAdmin(_NamedByProducts):
    list_display = ["id", "name"]
    prepopulated_fields = {"slug": ["name"]}


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0


@admin.register(Product)
class ProductAdmin(CachedPagesAdmin):
    list_display = [
        "id",
        "name",
        "category",
        "brand",
        "rating_avg",
        "review_count",
        "view_count",
        "is_active",
    ]
    list_select_related = ["category", "brand"]
    search_fields = ["name"]
    raw_id_fields = ["category", "brand"]
    # Kept right by catalog.services; editing them by hand would make them lie. view_count is
    # counted by the write_behind technique, up to a flush interval behind with it on.
    readonly_fields = ["rating_avg", "review_count", "view_count"]
    inlines = [VariantInline]

    def cached_pages_changed(self, obj, *, using: str) -> None:
        payloads.products_changed_on_commit(obj.pk, lists=True, using=using)


@admin.register(Review)
class ReviewAdmin(CachedPagesAdmin):
    list_display = ["id", "product", "author_username", "rating", "created_at"]
    raw_id_fields = ["product", "author"]
    readonly_fields = ["author_username", "product", "author", "rating"]

    def has_add_permission(self, request):
        return False  # reviews are posted through the API, which keeps the product's rating right

    def cached_pages_changed(self, obj, *, using: str) -> None:
        payloads.products_changed_on_commit(obj.product_id, lists=True, using=using)  # rating
