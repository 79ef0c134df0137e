from django.contrib import admin

from orders.models import Address, Order, OrderEvent, OrderItem, Payment


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "full_name", "city", "country", "is_default"]
    raw_id_fields = ["user"]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    can_delete = False
    readonly_fields = ["variant", "product_name", "sku", "unit_price", "quantity"]


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    readonly_fields = ["amount", "status", "idempotency_key", "provider_reference", "created_at"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-only: orders change only through orders.services, which keep stock and totals right."""

    list_display = ["id", "user", "status", "item_count", "total_amount", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["user", "shipping_address"]
    inlines = [OrderItemInline, PaymentInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "kind", "created_at"]
    raw_id_fields = ["order"]

    def has_add_permission(self, request):
        return False  # a forged "confirmation_sent" would stop the real email

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
