"""Catalog endpoints: thin views that check input, call one selector or service, serialize."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import imports, payloads, selectors, services
from catalog.serializers import (
    NamedRefSerializer,
    ProductDetailSerializer,
    ProductSummarySerializer,
)
from shop.api_schema import StatedMaxLength, StatedMinLength
from shop.pagination import PagePagination
from shop.parsers import JSONParser
from shop.techniques import fast_serialization, sparse_fields, write_behind


class ProductListApi(APIView):
    permission_classes = [AllowAny]
    pagination_class = PagePagination

    class FilterSerializer(serializers.Serializer):
        category = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
        search = serializers.CharField(required=False, min_length=2, max_length=100)

    OutputSerializer = ProductSummarySerializer

    @extend_schema(
        parameters=[FilterSerializer, sparse_fields.parameter(OutputSerializer)],
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        fields = sparse_fields.requested(request, self.OutputSerializer)
        page = payloads.product_list_page(
            request=request,
            view=self,
            fields=fields,
            category_id=filters.validated_data.get("category"),
            search=filters.validated_data.get("search"),
        )
        return Response(page)


class ProductDetailApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(ProductDetailSerializer):
        """The page write_through builds outside a request too (catalog/serializers.py)."""

    @extend_schema(
        parameters=[sparse_fields.parameter(OutputSerializer)], responses=OutputSerializer
    )
    def get(self, request, product_id: int):
        fields = sparse_fields.requested(request, self.OutputSerializer)
        product = payloads.product_detail(product_id=product_id, fields=fields)
        # After the payload is found (a 404 is no view) and outside the cache: every view
        # counts, one the cache answered too. Not in the payload: staff see it in the admin.
        write_behind.count_view(product_id=product_id)
        return Response(product)


class CategoryTreeApi(APIView):
    """Every category, as a tree: the roots, each with its children nested."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        class NodeSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            name = serializers.CharField()
            slug = serializers.CharField()
            children = serializers.ListField(
                child=serializers.DictField(), help_text="Nodes of the same shape."
            )

        categories = NodeSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        return Response(payloads.category_tree())


class CategoryProductsApi(APIView):
    """A category's page: the products of the category and of every category below it, newest
    first, paged, with facet counts by brand, price band and rating."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        class CategorySerializer(serializers.Serializer):
            id = serializers.IntegerField()
            name = serializers.CharField()
            slug = serializers.CharField()
            parent_id = serializers.IntegerField(allow_null=True)

        class ProductSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            name = serializers.CharField()
            slug = serializers.CharField()
            category = NamedRefSerializer()
            brand = NamedRefSerializer()
            rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2)
            review_count = serializers.IntegerField()
            price_from = serializers.DecimalField(
                max_digits=10, decimal_places=2, allow_null=True, help_text="The lowest price."
            )

        class FacetsSerializer(serializers.Serializer):
            class BrandSerializer(NamedRefSerializer):
                count = serializers.IntegerField()

            class PriceSerializer(serializers.Serializer):
                band = serializers.CharField()
                min = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
                max = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
                count = serializers.IntegerField()

            class RatingSerializer(serializers.Serializer):
                min_rating = serializers.IntegerField()
                count = serializers.IntegerField()

            brand = BrandSerializer(many=True)
            price = PriceSerializer(many=True)
            rating = RatingSerializer(many=True)

        category = CategorySerializer()
        count = serializers.IntegerField()
        next = serializers.URLField(allow_null=True)
        previous = serializers.URLField(allow_null=True)
        results = ProductSerializer(many=True)
        facets = FacetsSerializer()

    class FilterSerializer(serializers.Serializer):
        page = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
        page_size = serializers.IntegerField(
            required=False, min_value=1, max_value=payloads.CategoryPagePagination.max_page_size
        )

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request, category_id: int):
        self.FilterSerializer(data=request.query_params).is_valid(raise_exception=True)
        page = payloads.category_page(request=request, view=self, category_id=category_id)
        return Response(page)


class StaffVariantApi(APIView):
    """Staff change a variant's price and/or stock."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        price = serializers.DecimalField(
            max_digits=10, decimal_places=2, min_value=imports.PRICE_MIN, required=False
        )
        stock = serializers.IntegerField(min_value=0, max_value=imports.STOCK_MAX, required=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        product_id = serializers.IntegerField()
        sku = serializers.CharField()
        price = serializers.DecimalField(max_digits=10, decimal_places=2)
        stock = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, variant_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        variant = services.variant_update(variant_id=variant_id, **data.validated_data)
        return Response(self.OutputSerializer(variant).data)


class StaffProductApi(APIView):
    """Staff move a product to another category."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        category = serializers.IntegerField(min_value=1, max_value=imports.ID_MAX)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        category_id = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, product_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_move(
            product_id=product_id, category_id=data.validated_data["category"]
        )
        return Response(self.OutputSerializer(product).data)


class StaffCategoryApi(APIView):
    """Staff move a category under another (`parent`: null moves it to the top)."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        parent = serializers.IntegerField(min_value=1, max_value=imports.ID_MAX, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        parent_id = serializers.IntegerField(allow_null=True)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, category_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        category = services.category_move(
            category_id=category_id, parent_id=data.validated_data["parent"]
        )
        return Response(self.OutputSerializer(category).data)


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
        return fast_serialization.paginate(
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
        # shop.api_errors_middleware.BodyLimitMiddleware already refused a larger Content-Length, or
        # one that is not a number, before the view ran; this keeps the parser safe on its own.
        try:
            length = int(parser_context["request"].META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.max_bytes:
            raise PayloadTooLarge(
                f"The body is {length} bytes; at most {self.max_bytes} are accepted."
            )
        return JSONParser().parse(stream, media_type, parser_context)


class ProductImportApi(APIView):
    """Staff create up to 10,000 products with their variants in one request, all or nothing."""

    permission_classes = [IsAdminUser]
    parser_classes = [ImportJSONParser]
    # The body cap checked at the door (shop.api_errors_middleware), instead of the 2.5 MB of the rest.
    max_body_bytes = ImportJSONParser.max_bytes

    class InputSerializer(serializers.Serializer):
        class ProductSerializer(serializers.Serializer):
            class VariantSerializer(serializers.Serializer):
                sku = serializers.CharField(max_length=imports.SKU_MAX)
                name = serializers.CharField(max_length=imports.VARIANT_NAME_MAX)
                price = serializers.DecimalField(
                    max_digits=10, decimal_places=2, min_value=imports.PRICE_MIN
                )
                stock = serializers.IntegerField(min_value=0, max_value=imports.STOCK_MAX)

            name = serializers.CharField(max_length=imports.PRODUCT_NAME_MAX)
            slug = serializers.SlugField(max_length=imports.SLUG_MAX)
            description = serializers.CharField()
            category_id = serializers.IntegerField(min_value=1, max_value=imports.ID_MAX)
            brand_id = serializers.IntegerField(min_value=1, max_value=imports.ID_MAX)
            variants = serializers.ListSerializer(
                child=VariantSerializer(),
                max_length=imports.IMPORT_VARIANTS_MAX,
                validators=[StatedMaxLength(imports.IMPORT_VARIANTS_MAX)],
            )

        products = serializers.ListSerializer(
            child=ProductSerializer(),
            allow_empty=False,
            max_length=services.PRODUCT_IMPORT_MAX,
            validators=[StatedMinLength(1), StatedMaxLength(services.PRODUCT_IMPORT_MAX)],
        )

    class OutputSerializer(serializers.Serializer):
        products = serializers.IntegerField(help_text="How many products were created.")
        variants = serializers.IntegerField(help_text="How many variants were created.")

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        # A well-formed body is read in one plain pass (catalog/imports.py says why); anything
        # else (an error, or a value DRF converts, such as a price sent as a JSON number) goes
        # to the serializer, so every message a client sees is DRF's own.
        rows = imports.plain_import_rows(request.data)
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
