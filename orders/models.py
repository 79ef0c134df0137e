"""Orders: addresses, orders with their items, payments, and an append-only event log."""

from django.conf import settings
from django.db import models


class Address(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="addresses"
    )
    full_name = models.CharField(max_length=150)
    line1 = models.CharField(max_length=200)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20)
    country = models.CharField(max_length=2)
    is_default = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "addresses"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(is_default=True),
                name="address_one_default_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name}, {self.city}"


class Order(models.Model):
    class Status(models.TextChoices):
        """placed → paid → confirmed (the confirmation email went out) → shipped, or
        placed → payment_failed (stock given back); placed, paid or confirmed → cancelled."""

        PLACED = "placed"
        PAID = "paid"
        PAYMENT_FAILED = "payment_failed"
        CONFIRMED = "confirmed"
        SHIPPED = "shipped"
        CANCELLED = "cancelled"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    shipping_address = models.ForeignKey(
        Address, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLACED)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    # Denormalized from OrderItem, kept right by a PostgreSQL trigger on orders_orderitem
    # (orders/migrations/0005_denormalized_fields_triggers.py).
    item_count = models.PositiveIntegerField(default=0)
    total_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    # The client's Idempotency-Key and a hash of the request it came with: a retry with the
    # same key and body returns this order; the same key with another body is refused.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="order_idempotency_key_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    variant = models.ForeignKey(
        "catalog.Variant", on_delete=models.PROTECT, related_name="order_items"
    )
    # Copies taken when the order was placed: what the customer bought, whatever the
    # catalog says later.
    product_name = models.CharField(max_length=200)
    sku = models.CharField(max_length=40)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="order_item_quantity_positive"
            ),
            # A copy of a variant's price, which is positive too: revenue never goes negative,
            # which the sales report's read model relies on (materialized_view's bar).
            models.CheckConstraint(
                condition=models.Q(unit_price__gt=0), name="order_item_unit_price_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CAPTURED = "captured"
        FAILED = "failed"
        REFUNDED = "refunded"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payments")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Sent to the payment provider so a retried charge is never taken twice.
    idempotency_key = models.CharField(max_length=100, unique=True)
    provider_reference = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"payment {self.pk} {self.amount} ({self.status})"


class OrderEvent(models.Model):
    """Append-only history of an order. A database trigger refuses UPDATE and DELETE."""

    class Kind(models.TextChoices):
        PLACED = "placed"
        PAID = "paid"
        PAYMENT_FAILED = "payment_failed"
        CONFIRMATION_SENT = "confirmation_sent"
        SHIPPED = "shipped"
        CANCELLED = "cancelled"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} on order {self.order_id}"


class StockMovement(models.Model):
    """The stock ledger: a row when an order line's units leave stock (a sale, negative) and
    one when they come back (a return, after a failed payment or a cancellation). Written by
    `orders.stock.order_stock_record` (in the request, or on a worker with async_tasks on),
    once per line and kind (the unique constraint makes a second run a no-op), so the units a
    variant sold and got back can be summed per day without reading orders."""

    class Kind(models.TextChoices):
        SALE = "sale"
        RETURN = "return"

    # An order has one line per variant, so (order, variant) names the line.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="stock_movements")
    variant = models.ForeignKey("catalog.Variant", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    quantity = models.IntegerField()  # units into stock: negative for a sale
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "variant", "kind"], name="stock_movement_once_per_line"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity:+d} of variant {self.variant_id}"


class TaxRate(models.Model):
    """The VAT charged on a sale to a country, in percent. A country without a row is outside
    the shop's tax area: its sales carry none (an export). Small and read on every shipping
    estimate: a hot lookup of local_cache (`orders.rates.tax_rates`)."""

    country = models.CharField(max_length=2, unique=True, help_text="ISO 3166-1 alpha-2")
    rate = models.DecimalField(max_digits=5, decimal_places=2, help_text="percent: 19.00")

    class Meta:
        ordering = ["country"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rate__gte=0) & models.Q(rate__lt=100), name="tax_rate_percent"
            ),
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^[A-Z]{2}$"), name="tax_rate_country_upper"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.rate}%"


class ShippingRate(models.Model):
    """The shop's own price for a parcel by a shipping method to a zone: a base price plus a
    price per started kilogram. Small and read on every shipping estimate: a hot lookup of
    local_cache (`orders.rates.shipping_rates`)."""

    class Zone(models.TextChoices):
        DOMESTIC = "domestic"  # settings.SHOP_COUNTRY
        EU = "eu"  # the other countries with a TaxRate
        WORLD = "world"  # everywhere else

    zone = models.CharField(max_length=8, choices=Zone.choices)
    method = models.CharField(max_length=16, help_text="standard, express, ...")
    base_price = models.DecimalField(max_digits=8, decimal_places=2)
    price_per_kg = models.DecimalField(max_digits=8, decimal_places=2)
    days = models.PositiveSmallIntegerField(help_text="delivery time, working days")

    class Meta:
        ordering = ["zone", "base_price", "method"]
        constraints = [
            models.UniqueConstraint(fields=["zone", "method"], name="shipping_rate_once"),
            models.CheckConstraint(
                condition=models.Q(base_price__gte=0) & models.Q(price_per_kg__gte=0),
                name="shipping_rate_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.zone} {self.method}"
