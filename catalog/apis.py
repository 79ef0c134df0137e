"""Catalog endpoints: thin views that check input, call one selector or service, serialize."""

import re
import sys
from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, services
from shop.pagination import PagePagination, paginate


class _NamedRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ProductSummarySerializer(serializers.Serializer):
    """A product as lists show it: no description, no variants."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    category = _NamedRefSerializer()
    brand = _NamedRefSerializer()
    # Annotations of the selectors: the stored copies, or computed from the reviews when the
    # denormalized_fields technique is off (shop/techniques/denormalized_fields.py).
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, source="average_rating")
    review_count = serializers.IntegerField(source="rating_count")
    created_at = serializers.DateTimeField()


class ProductListApi(APIView):
    permission_classes = [AllowAny]
    pagination_class = PagePagination

    class FilterSerializer(serializers.Serializer):
        category = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
        search = serializers.CharField(required=False, min_length=2, max_length=100)

    OutputSerializer = ProductSummarySerializer

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        products = selectors.product_list(
            category_id=filters.validated_data.get("category"),
            search=filters.validated_data.get("search"),
        )
        return paginate(
            queryset=products, request=request, view=self, serializer_class=self.OutputSerializer
        )


class ProductDetailApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(ProductSummarySerializer):
        class VariantSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            sku = serializers.CharField()
            name = serializers.CharField()
            price = serializers.DecimalField(max_digits=10, decimal_places=2)
            stock = serializers.IntegerField()

        description = serializers.CharField()
        variants = VariantSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, product_id: int):
        product = selectors.product_get(product_id=product_id)
        return Response(self.OutputSerializer(product).data)


class ProductReviewsApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = PagePagination

    class InputSerializer(serializers.Serializer):
        rating = serializers.IntegerField(min_value=1, max_value=5)
        title = serializers.CharField(max_length=200)
        body = serializers.CharField(max_length=10_000)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        product_id = serializers.IntegerField()
        author_username = serializers.CharField()
        rating = serializers.IntegerField()
        title = serializers.CharField()
        body = serializers.CharField()
        created_at = serializers.DateTimeField()

    class ListOutputSerializer(OutputSerializer):
        # review_list annotates the name: the stored copy, or auth_user's username when the
        # denormalized_fields technique is off. A review just written has its stored copy.
        author_username = serializers.CharField(source="author_name")

    @extend_schema(responses=ListOutputSerializer(many=True))
    def get(self, request, product_id: int):
        reviews = selectors.review_list(product_id=product_id)
        return paginate(
            queryset=reviews, request=request, view=self, serializer_class=self.ListOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, product_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_create(
            product_id=product_id, author=request.user, **data.validated_data
        )
        return Response(self.OutputSerializer(review).data, status=status.HTTP_201_CREATED)


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class ImportJSONParser(BaseParser):
    """JSON bodies of up to 64 MB, for the import alone.

    DRF's JSONParser reads the body through `request.body`, which Django caps at
    DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) for every endpoint. 10,000 products with descriptions
    of a few kB are tens of MB, so this parser checks its own, larger cap, then hands the
    stream to JSONParser (wrapped, not subclassed: DRF reads `request.body` for subclasses too).
    """

    media_type = "application/json"
    max_bytes = 64 * 1024 * 1024

    def parse(self, stream, media_type=None, parser_context=None):
        length = int(parser_context["request"].META.get("CONTENT_LENGTH") or 0)
        if length > self.max_bytes:
            raise PayloadTooLarge(
                f"The body is {length} bytes; at most {self.max_bytes} are accepted."
            )
        return JSONParser().parse(stream, media_type, parser_context)


# The import's limits: the serializer's, which document the request, and the plain check's.
IMPORT_VARIANTS_MAX = 100
SKU_MAX = 40
VARIANT_NAME_MAX = 120
PRICE_MIN = Decimal("0.01")
STOCK_MAX = 1_000_000_000
PRODUCT_NAME_MAX = 200
SLUG_MAX = 220
ID_MAX = 2**63 - 1


class ProductImportApi(APIView):
    """Staff create up to 10,000 products with their variants in one request, all or nothing."""

    permission_classes = [IsAdminUser]
    parser_classes = [ImportJSONParser]

    class InputSerializer(serializers.Serializer):
        class ProductSerializer(serializers.Serializer):
            class VariantSerializer(serializers.Serializer):
                sku = serializers.CharField(max_length=SKU_MAX)
                name = serializers.CharField(max_length=VARIANT_NAME_MAX)
                price = serializers.DecimalField(
                    max_digits=10, decimal_places=2, min_value=PRICE_MIN
                )
                stock = serializers.IntegerField(min_value=0, max_value=STOCK_MAX)

            name = serializers.CharField(max_length=PRODUCT_NAME_MAX)
            slug = serializers.SlugField(max_length=SLUG_MAX)
            description = serializers.CharField()
            category_id = serializers.IntegerField(min_value=1, max_value=ID_MAX)
            brand_id = serializers.IntegerField(min_value=1, max_value=ID_MAX)
            variants = VariantSerializer(many=True, max_length=IMPORT_VARIANTS_MAX)

        products = ProductSerializer(
            many=True, allow_empty=False, max_length=services.PRODUCT_IMPORT_MAX
        )

    class OutputSerializer(serializers.Serializer):
        products = serializers.IntegerField(help_text="How many products were created.")
        variants = serializers.IntegerField(help_text="How many variants were created.")

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        # DRF's field machinery costs about 5 µs per field: 0.9 s for 10,000 products with 30,000
        # variants, 180,000 fields, nearly as much as their INSERTs. The plain check reads a
        # well-formed body in a tenth of that, and gives the values the serializer would give,
        # so the rows are the same either way. Anything it does not vouch for (an error, or a
        # value DRF converts, such as a price sent as a JSON number) goes to the serializer, so
        # every message a client sees is DRF's own.
        rows = plain_import_rows(request.data)
        if rows is None:
            data = self.InputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            rows = [
                services.ProductRow(
                    **{
                        **product,
                        "variants": [services.VariantRow(**v) for v in product["variants"]],
                    }
                )
                for product in data.validated_data["products"]
            ]
        created = services.product_import(rows=rows)
        return Response(self.OutputSerializer(created).data, status=status.HTTP_201_CREATED)


_SLUG = re.compile(r"[-a-zA-Z0-9_]+")  # SlugField's pattern (not allow_unicode)
# At most 8 digits before the point and 2 after (max_digits=10, decimal_places=2), no sign, no
# exponent, no leading zeros: a string DecimalField reads as the same number.
_PRICE = re.compile(r"(?:0|[1-9][0-9]{0,7})(?:\.[0-9]{1,2})?")
_CENTS = Decimal("0.01")
# CharField also refuses lone surrogates, which JSON can carry as "\ud800".
_SURROGATES = re.compile("[\ud800-\udfff]")


def _text(value: object, max_length: int = sys.maxsize) -> str | None:
    """What CharField makes of a string: trimmed, not blank, short enough, no NUL or surrogate."""
    if type(value) is not str:
        return None  # CharField also takes numbers; the serializer handles those
    value = value.strip()
    if not 0 < len(value) <= max_length or "\x00" in value:
        return None
    if not value.isascii() and _SURROGATES.search(value):  # isascii() is a flag, not a scan
        return None
    return value


def _price(value: object) -> Decimal | None:
    """What this DecimalField makes of a string: the number to the cent, at least PRICE_MIN."""
    if type(value) is not str or not _PRICE.fullmatch(value := value.strip()):
        return None  # a JSON number, an exponent, too many digits: the serializer decides
    price = Decimal(value).quantize(_CENTS)  # "5" → 5.00, as DecimalField quantizes it
    return price if price >= PRICE_MIN else None


def _integer(value: object, low: int, high: int) -> int | None:
    # `type is int`: a bool is an int to Python, not to IntegerField. "7" and 7.0 are, but they
    # are left to the serializer.
    return value if type(value) is int and low <= value <= high else None


def plain_import_rows(data: object) -> list[services.ProductRow] | None:
    """The rows of a well-formed import body, checked in one pass of plain Python.

    For every value it takes, it gives what InputSerializer would give (trimmed strings, prices
    to the cent), so both ways make the same rows. None means "not plainly valid, ask the
    serializer": the body may be wrong, or valid in a form the serializer converts (a name or a
    price sent as a JSON number, an id sent as a string). Unknown keys are ignored, as the
    serializer ignores them.
    """
    products = data.get("products") if type(data) is dict else None
    if type(products) is not list or not 1 <= len(products) <= services.PRODUCT_IMPORT_MAX:
        return None
    rows = []
    for product in products:
        if type(product) is not dict:
            return None
        variants = product.get("variants")
        if type(variants) is not list or len(variants) > IMPORT_VARIANTS_MAX:
            return None
        variant_rows = []
        for variant in variants:
            if type(variant) is not dict:
                return None
            sku = _text(variant.get("sku"), SKU_MAX)
            name = _text(variant.get("name"), VARIANT_NAME_MAX)
            price = _price(variant.get("price"))
            stock = _integer(variant.get("stock"), 0, STOCK_MAX)
            if sku is None or name is None or price is None or stock is None:
                return None
            variant_rows.append(services.VariantRow(sku=sku, name=name, price=price, stock=stock))
        name = _text(product.get("name"), PRODUCT_NAME_MAX)
        slug = _text(product.get("slug"), SLUG_MAX)
        description = _text(product.get("description"))
        category_id = _integer(product.get("category_id"), 1, ID_MAX)
        brand_id = _integer(product.get("brand_id"), 1, ID_MAX)
        if (
            name is None
            or slug is None
            or not _SLUG.fullmatch(slug)
            or description is None
            or category_id is None
            or brand_id is None
        ):
            return None
        rows.append(
            services.ProductRow(
                name=name,
                slug=slug,
                description=description,
                category_id=category_id,
                brand_id=brand_id,
                variants=variant_rows,
            )
        )
    return rows
