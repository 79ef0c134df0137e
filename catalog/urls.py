from django.urls import path

from catalog import apis

app_name = "catalog"

urlpatterns = [
    path("products/", apis.ProductListApi.as_view(), name="product-list"),
    path("products/<int:product_id>/", apis.ProductDetailApi.as_view(), name="product-detail"),
    path(
        "products/<int:product_id>/reviews/",
        apis.ProductReviewsApi.as_view(),
        name="product-reviews",
    ),
    path("staff/products/import/", apis.ProductImportApi.as_view(), name="product-import"),
]
