"""The catalog's product representations, shared by its views (catalog/apis.py) and by the
payloads built outside a request (catalog/payloads.py: write_through's read-back), so both
build the same page byte for byte. A change of shape here bumps the payload's version there."""

from rest_framework import serializers


class NamedRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ProductSummarySerializer(serializers.Serializer):
    """A product as lists show it: no description, no variants."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    category = NamedRefSerializer()
    brand = NamedRefSerializer()
    # Annotations of the selectors: the stored copies, or computed from the reviews when the
    # denormalized_fields technique is off (shop/techniques/denormalized_fields.py).
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, source="average_rating")
    review_count = serializers.IntegerField(source="rating_count")
    created_at = serializers.DateTimeField()


class ProductDetailSerializer(ProductSummarySerializer):
    """A product page: the summary, its description and its variants."""

    class VariantSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        sku = serializers.CharField()
        name = serializers.CharField()
        price = serializers.DecimalField(max_digits=10, decimal_places=2)
        stock = serializers.IntegerField()

    description = serializers.CharField()
    variants = VariantSerializer(many=True)
