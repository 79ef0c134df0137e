from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from shop.apis import AuthTokenApi, SchemaApi

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("catalog.urls")),
    path("api/", include("orders.urls")),
    path("api/", include("shop.urls")),
    path("api/auth/token/", AuthTokenApi.as_view(), name="auth-token"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]

# The admin's CSS and JS under gunicorn in development; production serves them elsewhere.
urlpatterns += staticfiles_urlpatterns()

if "debug_toolbar" in settings.INSTALLED_APPS:
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()

# JSON for every error under /api/, whatever raised it (shop/api_errors.py).
handler400 = "shop.api_errors.bad_request"
handler403 = "shop.api_errors.permission_denied"
handler404 = "shop.api_errors.not_found"
handler500 = "shop.api_errors.server_error"
