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
    path("categories/", apis.CategoryTreeApi.as_view(), name="category-tree"),
    path(
        "categories/<int:category_id>/products/",
        apis.CategoryProductsApi.as_view(),
        name="category-products",
    ),
    path("staff/products/import/", apis.ProductImportApi.as_view(), name="product-import"),
    path("staff/products/<int:product_id>/", apis.StaffProductApi.as_view(), name="staff-product"),
    path("staff/variants/<int:variant_id>/", apis.StaffVariantApi.as_view(), name="staff-variant"),
    path(
        "staff/categories/<int:category_id>/",
        apis.StaffCategoryApi.as_view(),
        name="staff-category",
    ),
]
