from django.contrib import admin

from catalog.models import Brand, Category, Product, Review, Variant


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "parent"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["id", "name"]
    prepopulated_fields = {"slug": ["name"]}


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
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


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "author_username", "rating", "created_at"]
    raw_id_fields = ["product", "author"]
    readonly_fields = ["author_username", "product", "author", "rating"]

    def has_add_permission(self, request):
        return False  # reviews are posted through the API, which keeps the product's rating right
