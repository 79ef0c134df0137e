"""What every API view shares: how errors become responses."""

import drf_spectacular.openapi
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from shop.errors import DomainError


def not_found(request, exception):
    """404 for URLs no view matches: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_payload(), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        # Django raises it when a parser reads `request.body` past DATA_UPLOAD_MAX_MEMORY_SIZE;
        # left alone it becomes Django's HTML "Bad Request" page instead of an API error.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        detail = f"The body is larger than the {limit} bytes this endpoint accepts."
        return Response({"detail": detail, "code": "payload_too_large"}, status=413)
    return drf_exception_handler(exc, context)


class AutoSchema(drf_spectacular.openapi.AutoSchema):
    """Name schema components after the view that owns a nested serializer.

    Views keep their serializers inside them (`ProductDetailApi.OutputSerializer`), so plain
    class names collide; `ProductDetailOutput` and `OrderDetailOutputPayment` do not.
    """

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        cls = serializer if isinstance(serializer, type) else type(serializer)
        parts = cls.__qualname__.split(".")
        if len(parts) > 1 and name == cls.__name__.removesuffix("Serializer"):
            name = "".join(part.removesuffix("Serializer").removesuffix("Api") for part in parts)
        return name
