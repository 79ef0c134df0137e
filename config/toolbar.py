"""The debug toolbar of the development settings, kept from recording credentials.

Every request from 127.0.0.1 is recorded, and its History panel shows any local client the last
25 requests of everyone. Stock, the panels keep what a request carried: the Authorization
header (Headers), the session cookie (Request), a JSON login body (History), and the token or
session key as a query parameter (SQL). Here:

- requests to the login and logout endpoints are not recorded at all: their bodies, their
  templates' context and their queries all hold a password or a fresh token;
- elsewhere, the panels below mask those values (and the password in a URL-valued setting, and
  credential-like query parameters wherever the URL is kept), and no panel reads the body itself: the
  toolbar runs after the view, and reading a body the view refused (too large, too many fields)
  would replace the view's JSON 413 or 400 with Django's HTML error page.
"""

import re
from urllib.parse import urlencode

from debug_toolbar.middleware import show_toolbar as default_show_toolbar
from debug_toolbar.panels import cache, headers, history, settings, sql
from debug_toolbar.panels import request as request_panel
from debug_toolbar.utils import get_name_from_obj, sanitize_and_sort_request_vars
from django.conf import settings as django_settings
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone

MASK = "********"
# Where credentials travel in the request body.
CREDENTIAL_PATHS = ("/api/auth/", "/admin/login/", "/admin/logout/", "/admin/password_change/")
# Header names that carry credentials (Django's own list for settings, plus cookies).
SENSITIVE_HEADER = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE", re.IGNORECASE)
# The password of a URL such as redis://:secret@host:6379/0 (REDIS_URL, CACHES, the broker).
URL_PASSWORD = re.compile(r"(\w+://[^:/@\s']*:)[^@\s']+@")
# Queries whose parameters are credentials: a token's key, a session's key or data, a password.
CREDENTIAL_SQL = re.compile(
    r'"authtoken_token"|"django_session"|^\s*(INSERT|UPDATE)\b.*"password"',
    re.IGNORECASE | re.DOTALL,
)


def show_toolbar(request) -> bool:
    return default_show_toolbar(request) and not request.path.startswith(CREDENTIAL_PATHS)


def _mask_headers(headers: dict) -> dict:
    return {
        name: MASK if SENSITIVE_HEADER.search(name) else value for name, value in headers.items()
    }


def _parsed_form(request):
    """The form fields the view parsed, or None: never parse the body here. The browsable API's
    `_content` field is a whole request body (JSON, say a login's): masked like one."""
    form = getattr(request, "_post", None)
    if form is not None and "_content" in form:
        form = form.copy()
        form["_content"] = MASK
    return form


def _masked_url(request) -> str:
    """The path with its query string, credential-like parameters masked as the GET table masks
    them (`?token=...&password=...`)."""
    query = _query(request)
    if not query:
        return request.path
    pairs = sanitize_and_sort_request_vars(query)["list"]
    return f"{request.path}?{urlencode(pairs, doseq=True)}"


def _query(request):
    try:
        return request.GET
    except SuspiciousOperation:  # more than DATA_UPLOAD_MAX_NUMBER_FIELDS parameters
        return None


# Each keeps its stock class name: the toolbar's pages and scripts find a panel by that name.


class HeadersPanel(headers.HeadersPanel):
    def process_request(self, request):
        response = super().process_request(request)
        environ = dict(self.environ)
        if environ.get("QUERY_STRING"):
            environ["QUERY_STRING"] = _masked_url(request).partition("?")[2]
        self.record_stats(
            {"request_headers": _mask_headers(self.request_headers), "environ": environ}
        )
        return response

    def generate_stats(self, request, response):
        self.record_stats({"response_headers": _mask_headers(dict(sorted(response.items())))})


class RequestPanel(request_panel.RequestPanel):
    def generate_stats(self, request, response):
        get, post = _query(request), _parsed_form(request)
        view = {"view_func": "<no view>", "view_args": "None", "view_kwargs": "None"}
        match = request.resolver_match
        if match is not None:
            view = {
                "view_func": get_name_from_obj(match.func),
                "view_args": match.args,
                "view_kwargs": match.kwargs,
                "view_urlname": match.view_name or "<unavailable>",
            }
        self.record_stats(
            {
                **view,
                "get": sanitize_and_sort_request_vars(get) if get is not None else {},
                "post": sanitize_and_sort_request_vars(post) if post is not None else {},
                # Names only: the session cookie is as good as the password while it lives.
                "cookies": {"list": [(name, MASK) for name in sorted(request.COOKIES)]},
            }
        )
        if hasattr(request, "session"):
            keys = sorted(request.session.keys())
            self.record_stats({"session": {"list": [(key, MASK) for key in keys]}})


class HistoryPanel(history.HistoryPanel):
    def generate_stats(self, request, response):
        data = _query(request) if request.method == "GET" else _parsed_form(request)
        pairs = sanitize_and_sort_request_vars(data)["list"] if data else []
        self.record_stats(
            {
                "request_url": _masked_url(request),
                "request_method": request.method,
                "status_code": response.status_code,
                # The template loops over `data.items`, and a template looks a key up before a
                # method: a form with an `items` field (an order) broke the whole panel. Stored
                # as {"items": pairs}, the lookup finds the pairs whatever the field names.
                "data": {"items": pairs} if pairs else None,
                "time": timezone.now(),
            }
        )


class SettingsPanel(settings.SettingsPanel):
    """Django's safe settings mask names that look secret (PASSWORD, SECRET_KEY), not the
    password inside a URL-valued setting."""

    def generate_stats(self, request, response):
        super().generate_stats(request, response)
        shown = self.get_stats()["settings"]
        masked = {key: URL_PASSWORD.sub(rf"\1{MASK}@", value) for key, value in shown.items()}
        self.record_stats({"settings": masked})


class SQLPanel(sql.SQLPanel):
    def record(self, **kwargs):
        if CREDENTIAL_SQL.search(kwargs["raw_sql"]):
            kwargs["params"] = MASK
            kwargs["sql"] = kwargs["raw_sql"]  # the statement with %s, not the values
        super().record(**kwargs)


class CachePanel(cache.CachePanel):
    """The calls to the sessions' cache alias keep their name and time, not their arguments:
    the key holds the session key, the value the session (shop/techniques/session_store.py)."""

    def _store_call_info(self, *, name, args, kwargs, backend, **rest):
        if backend.startswith(f"{django_settings.SESSION_CACHE_ALIAS} ("):
            args = (MASK,) * len(args)
            kwargs = dict.fromkeys(kwargs, MASK)
        super()._store_call_info(name=name, args=args, kwargs=kwargs, backend=backend, **rest)
