from django.urls import path

from orders import apis

app_name = "orders"

urlpatterns = [
    path("orders/", apis.OrderListApi.as_view(), name="order-list"),
    path("orders/<int:order_id>/", apis.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<int:order_id>/cancel/", apis.OrderCancelApi.as_view(), name="order-cancel"),
    path("shipping/quotes/", apis.ShippingQuoteApi.as_view(), name="shipping-quotes"),
    path("shipping/rates/", apis.ShippingRateApi.as_view(), name="shipping-rates"),
    path("reports/sales/", apis.SalesReportApi.as_view(), name="sales-report"),
    path("staff/orders/", apis.StaffOrderListApi.as_view(), name="staff-order-list"),
    path("staff/events/", apis.StaffEventListApi.as_view(), name="staff-event-list"),
    path("staff/events/month/", apis.StaffEventMonthApi.as_view(), name="staff-event-month"),
    path("staff/orders/export.csv", apis.StaffOrderExportApi.as_view(), name="staff-order-export"),
]
