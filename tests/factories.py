"""factory_boy factories for tests that build exactly the rows they need, and the one row a
test writes through its service instead."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from catalog import services as catalog_services
from catalog.models import Brand, Category, Product, Review, Variant
from orders.models import Address, Order, OrderItem


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("password")


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Address

    user = factory.SubFactory(UserFactory)
    full_name = factory.LazyAttribute(lambda address: address.user.username.title())
    line1 = factory.Sequence(lambda n: f"{n} Market Street")
    city = "Lisbon"
    postal_code = "1100-001"
    country = "PT"
    is_default = True


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    description = "A sturdy thing. " * 100
    category = factory.SubFactory(CategoryFactory)
    brand = factory.SubFactory(BrandFactory)
    created_at = factory.LazyFunction(timezone.now)


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    product = factory.SubFactory(ProductFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    name = "Standard"
    price = Decimal("10.00")
    stock = 100


class ReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Review

    product = factory.SubFactory(ProductFactory)
    author = factory.SubFactory(UserFactory)
    author_username = factory.LazyAttribute(lambda review: review.author.username)
    rating = 4
    title = "Good"
    body = "Does what it says."
    created_at = factory.LazyFunction(timezone.now)


def review_by_service(product, rating=4, *, author=None) -> Review:
    """A review written as the API writes it, through catalog.services.review_create, so the
    product's stored rating and count start right (ReviewFactory inserts the row alone)."""
    return catalog_services.review_create(
        product_id=product.pk, author=author or UserFactory(), rating=rating, title="t", body="b"
    )


class OrderFactory(factory.django.DjangoModelFactory):
    """`OrderFactory(lines=[(variant, 2), ...])` adds the items and sets `item_count` and
    `total_amount` from them, as orders.services does. Without lines, an empty order."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    status = Order.Status.PAID
    created_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def lines(order, create, extracted, **kwargs):
        if not extracted:
            return
        for variant, quantity in extracted:
            OrderItemFactory(order=order, variant=variant, quantity=quantity)
        order.item_count = sum(quantity for _, quantity in extracted)
        order.total_amount = sum(
            (variant.price * quantity for variant, quantity in extracted), Decimal("0.00")
        )
        order.save(update_fields=["item_count", "total_amount"])


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    variant = factory.SubFactory(VariantFactory)
    product_name = factory.LazyAttribute(lambda item: item.variant.product.name)
    sku = factory.LazyAttribute(lambda item: item.variant.sku)
    unit_price = factory.LazyAttribute(lambda item: item.variant.price)
    quantity = 1
