"""Order endpoints: thin views over orders.selectors and orders.services."""

import re

from adrf.views import APIView as AsyncAPIView
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import rates, selectors, services
from orders.models import Order
from shop import carriers
from shop.api_schema import StatedMaxLength, StatedMaxValue, StatedMinLength, StatedMinValue
from shop.errors import InvalidInput
from shop.pagination import KeysetPagination, PagePagination
from shop.techniques import (
    async_io,
    cursor_pagination,
    fast_serialization,
    materialized_view,
    sparse_fields,
    streaming_export,
)

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    type={"type": "string", "pattern": f"^{IDEMPOTENCY_KEY.pattern}$", "maxLength": 100},
    required=False,
    description="Retrying with the same key returns the first order instead of placing another.",
)


class OrderItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    product_name = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    quantity = serializers.IntegerField()


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField()
    cancelled_at = serializers.DateTimeField()
    # Annotations of the selectors: the stored copies, or summed over the items when the
    # denormalized_fields technique is off (shop/techniques/denormalized_fields.py).
    item_count = serializers.IntegerField(source="unit_count")
    total_amount = serializers.DecimalField(max_digits=12, decimal_places=2, source="order_total")
    items = OrderItemOutputSerializer(many=True)


class OrderListApi(APIView):
    permission_classes = [IsAuthenticated]
    pagination_class = PagePagination

    class InputSerializer(serializers.Serializer):
        class LineSerializer(serializers.Serializer):
            sku = serializers.CharField(max_length=40)
            quantity = serializers.IntegerField(
                validators=[StatedMinValue(1), StatedMaxValue("ORDER_MAX_QUANTITY_PER_LINE")]
            )

        items = serializers.ListSerializer(
            child=LineSerializer(),
            validators=[StatedMinLength(1), StatedMaxLength("ORDER_MAX_LINES")],
        )
        shipping_address_id = serializers.IntegerField(
            required=False, min_value=1, max_value=2**63 - 1
        )

    @extend_schema(
        parameters=[sparse_fields.parameter(OrderOutputSerializer)],
        responses=OrderOutputSerializer(many=True),
    )
    def get(self, request):
        fields = sparse_fields.requested(request, OrderOutputSerializer)
        orders = selectors.order_list(user=request.user, fetch=fields.fetch)
        return fields.paginate(queryset=orders, request=request, view=self)

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OrderOutputSerializer, 200: OrderOutputSerializer},
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            raise InvalidInput(
                {"Idempotency-Key": ["Use 1 to 100 characters: letters, digits and _ . : -"]}
            )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        placement = services.order_place(
            user=request.user,
            lines=[services.OrderLine(**line) for line in data.validated_data["items"]],
            shipping_address_id=data.validated_data.get("shipping_address_id"),
            idempotency_key=key,
        )
        order = selectors.order_get(user=request.user, order_id=placement.order.pk)
        response = Response(
            OrderOutputSerializer(order).data,
            status=status.HTTP_201_CREATED if placement.created else status.HTTP_200_OK,
        )
        response["Location"] = f"/api/orders/{order.pk}/"
        if not placement.created:
            response["Idempotent-Replayed"] = "true"
        return response


class OrderDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class OutputSerializer(OrderOutputSerializer):
        class PaymentSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            amount = serializers.DecimalField(max_digits=12, decimal_places=2)
            status = serializers.CharField()
            created_at = serializers.DateTimeField()

        class EventSerializer(serializers.Serializer):
            kind = serializers.CharField()
            data = serializers.JSONField()
            created_at = serializers.DateTimeField()

        payments = PaymentSerializer(many=True)
        events = EventSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, order_id: int):
        order = selectors.order_get(user=request.user, order_id=order_id, history=True)
        return Response(self.OutputSerializer(order).data)


class OrderCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses=OrderOutputSerializer)
    def post(self, request, order_id: int):
        services.order_cancel(user=request.user, order_id=order_id)
        order = selectors.order_get(user=request.user, order_id=order_id)
        return Response(OrderOutputSerializer(order).data)


class SalesReportApi(APIView):
    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        date_from = serializers.DateField(required=False)
        date_to = serializers.DateField(required=False)

    class OutputSerializer(serializers.Serializer):
        class DaySerializer(serializers.Serializer):
            day = serializers.DateField()
            orders = serializers.IntegerField()
            units = serializers.IntegerField()
            revenue = serializers.DecimalField(max_digits=14, decimal_places=2)

        class ProductSerializer(serializers.Serializer):
            product_id = serializers.IntegerField()
            product_name = serializers.CharField()
            units = serializers.IntegerField()
            revenue = serializers.DecimalField(max_digits=14, decimal_places=2)

        date_from = serializers.DateField()
        date_to = serializers.DateField()
        orders = serializers.IntegerField()
        units = serializers.IntegerField()
        revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
        average_order_value = serializers.DecimalField(max_digits=12, decimal_places=2)
        by_day = DaySerializer(many=True)
        top_products = ProductSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        report = selectors.sales_report(**filters.validated_data)
        response = fast_serialization.respond(
            report, request=request, serializer_class=self.OutputSerializer
        )
        if report.as_of is not None:
            # From the read model (materialized_view): how old its sums are. A header, so the
            # body is the same live or not.
            response[materialized_view.AS_OF_HEADER] = report.as_of.isoformat()
        return response


class StaffOrderListApi(APIView):
    """Every customer's orders, newest first, optionally by status and date range. Its deep
    pages show what cursor_pagination does; the filter, what an index on (status, created_at)
    does (db_indexes)."""

    permission_classes = [IsAdminUser]
    # The contract the schema describes: cursor pages, the default. With cursor_pagination
    # off, the same list pages with ?page=N (docs/techniques/cursor_pagination.md).
    pagination_class = KeysetPagination

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Order.Status.choices, required=False)
        date_from = serializers.DateField(
            required=False, help_text="Placed on or after this UTC day."
        )
        date_to = serializers.DateField(
            required=False, help_text="Placed on or before this UTC day."
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        customer = serializers.CharField(source="user.username")
        status = serializers.CharField()
        item_count = serializers.IntegerField()
        total_amount = serializers.DecimalField(max_digits=12, decimal_places=2)

    @extend_schema(
        parameters=[
            FilterSerializer,
            OpenApiParameter(
                name="page",
                type=int,
                description="The page number, only with the cursor_pagination technique off "
                "(the answer then has `count` too); the cursor pages ignore it.",
            ),
        ],
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = selectors.order_list_all(**filters.validated_data)
        return fast_serialization.paginate(
            queryset=orders,
            request=request,
            view=self,
            serializer_class=self.OutputSerializer,
            paginator=cursor_pagination.paginator(),
        )


class StaffOrderExportApi(APIView):
    """The orders placed in a date range, as CSV. How it is sent is the streaming_export
    technique: streamed from a server-side cursor, or built in memory first."""

    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        date_from = serializers.DateField(required=False)
        date_to = serializers.DateField(required=False)

    @extend_schema(parameters=[FilterSerializer], responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.order_export_rows(**filters.validated_data)
        return streaming_export.csv_response(
            rows=rows, header=list(selectors.ORDER_EXPORT_COLUMNS), filename="orders.csv"
        )


class StaffEventListApi(APIView):
    """The newest order events, newest first: the staff activity feed (table_partitioning
    reads it from this month's partition alone)."""

    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        hours = serializers.IntegerField(
            required=False, min_value=1, max_value=selectors.EVENTS_RECENT_MAX_HOURS
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        order_id = serializers.IntegerField()
        kind = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        events = selectors.event_list_recent(**filters.validated_data)
        return Response(self.OutputSerializer(events, many=True).data)


class StaffEventMonthApi(APIView):
    """How many events of each kind one month holds (table_partitioning: one partition read)."""

    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        month = serializers.DateField(input_formats=["%Y-%m"], help_text="A UTC month: 2026-03.")

    class OutputSerializer(serializers.Serializer):
        kind = serializers.CharField()
        count = serializers.IntegerField()

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        counts = selectors.event_month_counts(**filters.validated_data)
        return Response(self.OutputSerializer(counts, many=True).data)


class ShippingQuoteApi(AsyncAPIView):
    """A shipping estimate: every carrier's quote for a parcel to a destination, and the
    carriers that gave none, with why. An async view (adrf's APIView): the async_io technique
    asks the carriers at once, or, off, one after another in a worker thread. Served by the
    ASGI process (`asgi` in the Procfile); the WSGI one answers it too, one event loop per call.

    200 with `complete: false` when some carriers failed; 503 `carriers_unavailable` (with the
    same `unavailable` list) when none answered, as there is no price to show."""

    class FilterSerializer(serializers.Serializer):
        country = serializers.RegexField(
            r"^[A-Za-z]{2}$", max_length=2, help_text="ISO 3166-1 alpha-2"
        )
        postcode = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$", max_length=10)
        weight_grams = serializers.IntegerField(min_value=1, max_value=70_000)

    class OutputSerializer(serializers.Serializer):
        class QuoteSerializer(serializers.Serializer):
            carrier = serializers.CharField()
            service = serializers.CharField()
            price = serializers.DecimalField(max_digits=10, decimal_places=2)
            currency = serializers.CharField()
            days = serializers.IntegerField()

        class UnavailableSerializer(serializers.Serializer):
            carrier = serializers.CharField()
            reason = serializers.ChoiceField(choices=carriers.REASONS)
            detail = serializers.CharField()

        quotes = QuoteSerializer(many=True)
        unavailable = UnavailableSerializer(many=True)
        complete = serializers.BooleanField(help_text="every carrier answered")

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    async def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        destination = carriers.Destination(
            country=filters.validated_data["country"].upper(),
            postcode=filters.validated_data["postcode"],
        )
        results = await async_io.quotes(
            destination=destination, weight_grams=filters.validated_data["weight_grams"]
        )
        quotes = [result for result in results if isinstance(result, carriers.Quote)]
        unavailable = [
            result.as_dict() for result in results if isinstance(result, carriers.Failure)
        ]
        if not quotes:
            raise carriers.CarriersUnavailable(
                "No carrier answered with a quote; try again shortly.", unavailable=unavailable
            )
        answer = {"quotes": quotes, "unavailable": unavailable, "complete": not unavailable}
        return Response(self.OutputSerializer(answer).data)


class ShippingRateApi(APIView):
    """The shop's own shipping prices to a destination, from its rate tables: each method of
    the destination's zone, for a parcel of `weight_grams` (a base price plus a price per
    started kilogram), before and with the destination's VAT. No carrier is asked (that is
    `/api/shipping/quotes/`); both tables are hot lookups of local_cache.

    503 `shipping_rates_not_configured` while either table is empty (orders/rates.py)."""

    class FilterSerializer(serializers.Serializer):
        country = serializers.RegexField(
            r"^[A-Za-z]{2}$", max_length=2, help_text="ISO 3166-1 alpha-2"
        )
        weight_grams = serializers.IntegerField(min_value=1, max_value=70_000)

    class OutputSerializer(serializers.Serializer):
        class MethodSerializer(serializers.Serializer):
            method = serializers.CharField()
            days = serializers.IntegerField()
            price = serializers.DecimalField(max_digits=10, decimal_places=2)
            price_with_tax = serializers.DecimalField(max_digits=10, decimal_places=2)

        country = serializers.CharField()
        zone = serializers.ChoiceField(choices=["domestic", "eu", "world"])
        tax_rate = serializers.DecimalField(
            max_digits=5, decimal_places=2, help_text="percent; 0 outside the shop's tax area"
        )
        methods = MethodSerializer(many=True, help_text="cheapest first")

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        estimate = rates.estimate(
            country=filters.validated_data["country"].upper(),
            weight_grams=filters.validated_data["weight_grams"],
        )
        return Response(self.OutputSerializer(estimate).data)
