"""The API's error contract, kept where a view cannot keep it: before the view reads the body,
and after Django or another middleware has answered with a page of its own."""

from django.conf import settings
from django.http import JsonResponse
from django.middleware import common
from rest_framework.response import Response

from shop.api_errors import API_PREFIX, error_payload, not_found, payload_too_large


class CommonMiddleware(common.CommonMiddleware):
    """Django's CommonMiddleware, without APPEND_SLASH's redirect for API requests with a body.

    `POST /api/orders` (no slash) is redirected to `/api/orders/` with a 301, which clients
    follow as a GET without the body; with DEBUG on Django raises a RuntimeError instead, a 500.
    Under /api/ such a request gets the JSON 404 of shop.api_errors.not_found, naming the URL with its
    slash. A GET or HEAD is still redirected, as everywhere else.
    """

    def should_redirect_with_slash(self, request):
        if request.path.startswith(API_PREFIX) and request.method not in ("GET", "HEAD"):
            return False
        return super().should_redirect_with_slash(request)


class BodyLimitMiddleware:
    """Refuse a body larger than the view accepts from its Content-Length, before anything reads it.

    Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when `request.body` or a form is read, and
    never counts uploaded files: a 50 MB multipart upload is read and spooled to disk, and only
    then does the view find a field it does not expect. Here the declared length is checked
    against the view's limit first: `max_body_bytes` on the view class (the product import
    takes 64 MB), else DATA_UPLOAD_MAX_MEMORY_SIZE. Django reads no more than Content-Length
    says, so a body cannot be longer than declared.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "view_class", None)
        limit = getattr(view_class, "max_body_bytes", settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return JsonResponse(
                error_payload(400, f"Content-Length {raw[:40]!r} is not a number."), status=400
            )
        if limit is not None and length > limit:
            return JsonResponse(payload_too_large(limit), status=413)
        return None


class ApiErrorMiddleware:
    """Every error under /api/ is JSON, whoever answered it.

    Views answer errors in JSON (shop.api_errors.exception_handler), and so do the error views of
    config/urls.py, but only with DEBUG off: with DEBUG on (`make serve`) Django answers an
    unknown URL, a request it finds suspicious (too many query parameters, a bad Host) and an
    unhandled exception with its HTML debug pages. This turns those into the same
    `{"detail", "code"}` body with the same status. A DRF response is left as DRF negotiated it
    with the client: a browser asking for HTML gets the browsable API's page.

    Outermost, so it sees the response after every other middleware has had its say.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIX)
            or isinstance(response, Response)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        if response.status_code == 404:
            replacement = not_found(request)
        else:
            replacement = JsonResponse(
                error_payload(response.status_code), status=response.status_code
            )
        # Keep what the middleware inside added (X-DB-Queries, Server-Timing, X-Perf-Toggles...).
        for header, value in response.items():
            if header.lower() not in {"content-type", "content-length"}:
                replacement[header] = value
        return replacement
