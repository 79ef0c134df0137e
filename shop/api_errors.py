"""How the API's errors become JSON: the DRF exception handler for errors a view raises, and
Django's error views (handler400/403/404/500) for the ones no view answers."""

import sys
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from shop.errors import DomainError
from shop.techniques import connection_pooling

API_PREFIX = "/api/"


def error_payload(status: int, detail: str | None = None) -> dict[str, str]:
    """`{"detail", "code"}` for a status: the body of every error Django, not a view, answers."""
    phrase = HTTPStatus(status).phrase.lower()  # "not found", "request entity too large"
    code = phrase.replace(" ", "_").replace("-", "_")
    return {"detail": detail or f"{phrase.capitalize()}.", "code": code}


def payload_too_large(limit: int) -> dict[str, str]:
    detail = f"The body is larger than the {limit} bytes this endpoint accepts."
    return {"detail": detail, "code": "payload_too_large"}


# Django's error views, set as handler400/403/404/500 in config/urls.py: JSON under /api/,
# Django's own pages elsewhere (the admin). With DEBUG on Django shows its technical pages
# instead of these; shop.api_errors_middleware.ApiErrorMiddleware turns those into JSON too.


def bad_request(request, exception):
    """A SuspiciousOperation outside a view: too many query parameters, a bad Host header..."""
    if request.path.startswith(API_PREFIX):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(payload_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), status=413)
        return JsonResponse(error_payload(400, str(exception) or None), status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_payload(403, str(exception) or None), status=403)
    return defaults.permission_denied(request, exception)


def not_found(request, exception=None):
    """404 for URLs no view matches: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        detail = None
        # A POST to /api/orders is not redirected to /api/orders/ (its body would be lost on
        # the way, see shop.api_errors_middleware.CommonMiddleware): say which URL was meant.
        if not request.path.endswith("/") and _resolves(request.path_info + "/"):
            detail = f"Not found. The API's URLs end with a slash: {request.path}/"
        return JsonResponse(error_payload(404, detail), status=404)
    return defaults.page_not_found(request, exception)


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def pool_exhausted() -> JsonResponse:
    """503 with Retry-After: every pooled connection stayed lent out for the pool's whole
    timeout (shop.techniques.connection_pooling). The server is overloaded, not broken, and
    says when to try again, instead of holding the worker until the database catches up."""
    retry_after = connection_pooling.retry_after_s()
    detail = (
        "Every database connection is busy: the server is overloaded. "
        f"Try again in {retry_after} s."
    )
    response = JsonResponse(error_payload(503, detail), status=503)
    response["Retry-After"] = str(retry_after)
    return response


def server_error(request):
    """A bug. The traceback is in the log (`django.request`); the client learns nothing of it.

    Or an exhausted connection pool, raised outside a DRF view (a middleware's query, the
    admin): Django calls this inside its `except` block, so the exception is at hand."""
    if connection_pooling.pool_exhausted(sys.exc_info()[1]):
        return pool_exhausted()
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_payload(500, "A server error occurred."), status=500)
    return defaults.server_error(request)


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        response = Response(exc.as_payload(), status=exc.status)
        if exc.retry_after_s is not None:
            response["Retry-After"] = str(exc.retry_after_s)
        return response
    if isinstance(exc, RequestDataTooBig):
        # Django raises it when a parser reads `request.body` past DATA_UPLOAD_MAX_MEMORY_SIZE;
        # left alone it becomes Django's HTML "Bad Request" page instead of an API error.
        return Response(payload_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), status=413)
    if isinstance(exc, SuspiciousOperation):
        # The rest of Django's refusals of a body or a query string while a view reads it:
        # more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields (1,000), more than
        # DATA_UPLOAD_MAX_NUMBER_FILES files (100). Bad input, so a 400, and JSON like the rest.
        return Response(error_payload(400, str(exc)), status=400)
    if connection_pooling.pool_exhausted(exc):
        return pool_exhausted()
    return drf_exception_handler(exc, context)
