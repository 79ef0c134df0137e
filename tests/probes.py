"""Bad input from outside, one request per class of bug, sent through the whole request path.

Used by tests/test_bad_input.py in the test process and, for the settings modules the tests do
not run under (local with the debug toolbar, loadtest, production), in a subprocess started with
that settings module: `python -m tests.probes` prints each probe's status and content type.
"""

import base64
import io
import json
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    customer_token: str
    staff_token: str
    product_id: int


def _cursor(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def probes(ctx: Context) -> dict[str, tuple[str, str, dict]]:
    """name → (method, path, test client keyword arguments)."""
    customer = {"HTTP_AUTHORIZATION": f"Token {ctx.customer_token}"}
    staff = {"HTTP_AUTHORIZATION": f"Token {ctx.staff_token}"}
    deep = "[" * 5000 + "]" * 5000  # 10 kB, far past the JSON decoder's recursion limit
    form_fields = "&".join(f"f{i}=1" for i in range(1200))  # DATA_UPLOAD_MAX_NUMBER_FIELDS=1000

    def json_body(body: str | bytes, **extra) -> dict:
        return {"data": body, "content_type": "application/json", **extra}

    def form_body(body: str, **extra) -> dict:
        return {"data": body, "content_type": "application/x-www-form-urlencoded", **extra}

    reviews = f"/api/products/{ctx.product_id}/reviews/"
    staff_orders = "/api/staff/orders/?cursor="
    return {
        # A JSON body nested past the decoder's recursion limit, on every endpoint that parses one.
        "deep JSON: place an order": ("post", "/api/orders/", json_body(deep, **customer)),
        "deep JSON: write a review": ("post", reviews, json_body(deep, **customer)),
        "deep JSON: import products": (
            "post",
            "/api/staff/products/import/",
            json_body(deep, **staff),
        ),
        "deep JSON: log in": ("post", "/api/auth/token/", json_body(deep)),
        "deep JSON: cancel an order": (
            "post",
            "/api/orders/1/cancel/",
            json_body(deep, **customer),
        ),
        # Crafted cursors: numbers Python cannot make an int of, deep nesting, values of no type.
        "cursor: Infinity": (
            "get",
            staff_orders + _cursor(b'{"p":["2026-01-01T00:00:00+00:00",Infinity],"r":false}'),
            staff,
        ),
        "cursor: 1e400": (
            "get",
            staff_orders + _cursor(b'{"p":["2026-01-01T00:00:00+00:00",1e400],"r":false}'),
            staff,
        ),
        "cursor: NaN": (
            "get",
            staff_orders + _cursor(b'{"p":[NaN,NaN],"r":false}'),
            staff,
        ),
        "cursor: nested": ("get", staff_orders + _cursor(b"[" * 3000 + b"]" * 3000), staff),
        "cursor: an id past bigint": (
            "get",
            staff_orders + _cursor(b'{"p":["2026-01-01T00:00:00+00:00","1' + b"0" * 30 + b'"]}'),
            staff,
        ),
        # A datetime whose offset Python reads but PostgreSQL refuses (past ±15:59), and one
        # that leaves the calendar once moved to UTC.
        "cursor: offset +20:00": (
            "get",
            staff_orders + _cursor(b'{"p":["2026-01-01T00:00:00+20:00","1"],"r":false}'),
            staff,
        ),
        "cursor: offset -23:59, reversed": (
            "get",
            staff_orders + _cursor(b'{"p":["2026-01-01T00:00:00-23:59","1"],"r":true}'),
            staff,
        ),
        "cursor: year 1 east of UTC": (
            "get",
            staff_orders + _cursor(b'{"p":["0001-01-01T00:00:00+05:00","1"],"r":false}'),
            staff,
        ),
        "cursor: no offset": (
            "get",
            staff_orders + _cursor(b'{"p":["2026-01-01T00:00:00","1"],"r":false}'),
            staff,
        ),
        # The rate tables' estimate: a country and a weight no table has, or no number.
        "shipping rates: NUL country": (
            "get",
            "/api/shipping/rates/?country=%00%00&weight_grams=1",
            {},
        ),
        "shipping rates: weight past bigint": (
            "get",
            "/api/shipping/rates/?country=DE&weight_grams=1" + "0" * 30,
            {},
        ),
        # The schema's ?version= lands in a Content-Disposition header.
        "schema version: NUL": ("get", "/api/schema/?version=%00", {}),
        "schema version: CR LF": ("get", "/api/schema/?version=a%0d%0aX-Injected:%201", {}),
        # More fields than Django parses, in a body and in a query string.
        "too many form fields": ("post", "/api/orders/", form_body(form_fields, **customer)),
        "too many form fields: log in": ("post", "/api/auth/token/", form_body(form_fields)),
        "too many query parameters": ("get", "/api/products/?" + form_fields, {}),
        "too many files": (
            "post",
            "/api/orders/",
            {"data": {f"f{i}": io.BytesIO(b"x") for i in range(150)}, **customer},
        ),
        # Bodies over the cap: JSON, a form, and an upload (files do not count for Django's cap).
        "large JSON body": (
            "post",
            "/api/orders/",
            json_body('{"items": [], "pad": "' + "x" * 3_000_000 + '"}', **customer),
        ),
        "large form body": (
            "post",
            "/api/orders/",
            form_body("pad=" + "x" * 3_000_000, **customer),
        ),
        "large file upload": (
            "post",
            reviews,
            {
                "data": {
                    "rating": "5",
                    "title": "t",
                    "body": "b",
                    "f": io.BytesIO(b"x" * 3_000_000),
                },
                **customer,
            },
        ),
        "Content-Length not a number": (
            "post",
            "/api/orders/",
            json_body("{}", CONTENT_LENGTH="many", **customer),
        ),
        # Headers: a token or a session no one could have, a host the site does not serve.
        "token with a NUL byte": ("get", "/api/orders/", {"HTTP_AUTHORIZATION": "Token a\x00b"}),
        # A quoted cookie's `\000` is unescaped into a NUL by Python's cookie parser.
        "session cookie with a NUL byte": (
            "get",
            "/api/orders/",
            {"HTTP_COOKIE": 'sessionid="\\000abcdefgh"'},
        ),
        "unknown Host": ("get", "/api/products/", {"HTTP_HOST": "elsewhere.example"}),
        "unknown charset": (
            "post",
            "/api/orders/",
            json_body("{}", content_type="application/json; charset=no-such-charset", **customer),
        ),
        # Paths no view matches, and one that only lacks its slash: with a body, Django would
        # redirect it (the client then sends a GET without the body) or, with DEBUG, raise.
        "unknown URL": ("get", "/api/no-such-thing/", {}),
        "unknown URL, POST": ("post", "/api/no-such-thing/", json_body("{}")),
        "POST without the trailing slash": ("post", "/api/orders", json_body("{}", **customer)),
        # Sparse fieldsets (sparse_fields): a name that is no public field, a private column,
        # another table's, an empty value, a malformed name, the parameter twice.
        "fields: unknown": ("get", "/api/products/?fields=id,cost_price", {}),
        "fields: a column not shown": (
            "get",
            f"/api/products/{ctx.product_id}/?fields=is_active",
            {},
        ),
        "fields: another table's": ("get", "/api/orders/?fields=password,email", customer),
        "fields: empty": ("get", "/api/products/?fields=", {}),
        "fields: malformed": ("get", "/api/products/?fields=id,,na%00me", {}),
        "fields: twice": ("get", "/api/orders/?fields=id&fields=status", customer),
    }


# The probes whose answer must be this status (the others: any 4xx).
EXPECTED_STATUS = {
    "large JSON body": 413,
    "large form body": 413,
    "large file upload": 413,
    "unknown URL": 404,
    "unknown URL, POST": 404,
    "POST without the trailing slash": 404,
    "token with a NUL byte": 401,
    "session cookie with a NUL byte": 401,
    **{
        name: 400
        for name in (
            "fields: unknown",
            "fields: a column not shown",
            "fields: another table's",
            "fields: empty",
            "fields: malformed",
            "fields: twice",
        )
    },
}


def row_counts() -> dict[str, int]:
    """What a bad request must leave as it was."""
    from django.contrib.auth import get_user_model
    from django.db.models import Sum
    from rest_framework.authtoken.models import Token

    from catalog.models import Product, Review, Variant
    from orders.models import Order, OrderItem

    return {
        "orders": Order.objects.count(),
        "items": OrderItem.objects.count(),
        "reviews": Review.objects.count(),
        "products": Product.objects.count(),
        "stock": Variant.objects.aggregate(total=Sum("stock"))["total"] or 0,
        "users": get_user_model().objects.count(),
        "tokens": Token.objects.count(),
    }


def request(client, method: str, path: str, kwargs: dict):
    """Send one probe. A body in a charset Python does not know goes as bytes through
    `generic()`: the test client's post() would fail to encode it first."""
    if "charset=no-such-charset" in kwargs.get("content_type", ""):
        kwargs = dict(kwargs)
        data, content_type = kwargs.pop("data"), kwargs.pop("content_type")
        return client.generic(method.upper(), path, data.encode(), content_type, **kwargs)
    return getattr(client, method)(path, **kwargs)


def send(client, ctx: Context) -> dict[str, dict]:
    """Each probe's status, content type and body start, by name."""
    results = {}
    for name, (method, path, kwargs) in probes(ctx).items():
        response = request(client, method, path, kwargs)
        results[name] = {
            "status": response.status_code,
            "content_type": response.get("Content-Type", ""),
            "body": response.content[:200].decode(errors="replace"),
            "cost headers": sorted({"X-DB-Queries", "Server-Timing"} & set(response.headers)),
        }
    return results


def toolbar_record(username: str, password: str) -> dict:
    """Log in and use the API the ways a client does, then read what the debug toolbar stored.

    Returns the secrets that appear in the toolbar's store (must be none) and what it recorded.
    """
    from debug_toolbar.store import get_store
    from django.conf import settings
    from django.test import Client

    store = get_store()
    store.clear()
    client = Client(raise_request_exception=False)
    token = client.post(
        "/api/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
    ).json()["token"]
    client.post("/api/auth/token/", {"username": username, "password": password})  # a form
    client.get("/api/orders/", HTTP_AUTHORIZATION=f"Token {token}")
    client.post(
        "/api/orders/",
        {"items": "not a list", "password": password},
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    # Credentials in a query string (the History panel keeps the URL), and a whole JSON body in
    # the browsable API's `_content` form field.
    client.get(
        f"/api/orders/?password={password}&token={token}", HTTP_AUTHORIZATION=f"Token {token}"
    )
    client.post(
        "/api/orders/",
        {
            "_content": json.dumps({"items": [], "password": password}),
            "_content_type": "application/json",
        },
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_ACCEPT="text/html",
    )
    # The browsable API's session login, then a request with its cookie.
    client.post("/api/auth/login/", {"username": username, "password": password})
    session_key = client.cookies["sessionid"].value
    client.get("/api/orders/")
    recorded = json.dumps({rid: store._request_store[rid] for rid in store.request_ids()})
    # Every panel still renders what it recorded, as the toolbar shows it in a browser.
    unrendered = [
        (store.panel(rid, "HistoryPanel")["request_url"], panel)
        for rid in store.request_ids()
        for panel in store._request_store[rid]
        if client.get(
            "/__debug__/render_panel/", {"request_id": rid, "panel_id": panel}
        ).status_code
        != 200
    ]
    secrets = {"token": token, "password": password, "session key": session_key}
    # The server's own: a password in a URL-valued setting (the test sets one for the broker).
    secrets["broker password"] = os.environ.get("BROKER_PASSWORD", "unset")
    return {
        "leaked": sorted(name for name, value in secrets.items() if value in recorded),
        "requests": [
            store.panel(rid, "HistoryPanel")["request_url"] for rid in store.request_ids()
        ],
        "unrendered panels": unrendered,
        "token queries": recorded.count("authtoken_token"),
        "session queries": recorded.count("django_session"),
        "session cache calls": recorded.count(f"{settings.SESSION_CACHE_ALIAS} ("),
    }


def main() -> None:
    """In a subprocess, with the settings module to try in DJANGO_SETTINGS_MODULE:

    - `python -m tests.probes send '<Context as JSON>'` prints the probes' results and the row
      counts before and after, as JSON;
    - `python -m tests.probes toolbar <username> <password>` prints `toolbar_record()` as JSON.
    """
    import django

    django.setup()
    from django.test import Client

    if sys.argv[1] == "toolbar":
        print(json.dumps(toolbar_record(sys.argv[2], sys.argv[3])))
        return
    ctx = Context(**json.loads(sys.argv[2]))
    before = row_counts()
    # raise_request_exception=False: a 500 is answered as a real server would, not raised here.
    results = send(Client(raise_request_exception=False), ctx)
    print(json.dumps({"results": results, "before": before, "after": row_counts()}))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    main()
