"""compression: the coding the client prefers, the same decoded body off and on, tiny and
streamed bodies left alone, BREACH-prone responses never compressed, Vary on every candidate."""

import gzip

import brotli
import pytest
import zstandard
from django.http import JsonResponse
from django.test import RequestFactory
from rest_framework.test import APIClient

from shop import toggles
from shop.techniques import compression
from tests.factories import OrderFactory, UserFactory, VariantFactory

LIST = "/api/products/?page_size=50"
DECODERS = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda body: zstandard.ZstdDecompressor().decompress(body),
}


@pytest.fixture
def on():
    with toggles.override(compression=True, http_caching=False):
        yield


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "br"),  # a tie: the server's order
        ("gzip, zstd", "zstd"),
        ("br;q=0.5, gzip", "gzip"),  # the client's q-values first
        ("br;q=0.5, gzip;q=0.8, zstd;q=0.1", "gzip"),
        ("BR", "br"),
        ("x-gzip", "gzip"),
        ("*", "br"),
        ("br;q=0, *", "zstd"),
        ("*;q=0, gzip", "gzip"),
        ("gzip;q=0", None),  # q=0: not acceptable
        ("gzip;q=0, br;q=0, zstd;q=0", None),
        ("identity", None),
        ("identity, gzip;q=0.5", None),  # identity preferred
        ("deflate", None),  # nothing we have
        ("", None),
        (None, None),
        ("gzip;q=abc", None),  # malformed: identity
        ("gzip;q=2", None),
        (" , ;q=1", None),
    ],
)
def test_negotiate(header, coding):
    assert compression.negotiate(header) == coding


@pytest.mark.parametrize("coding", DECODERS)
def test_the_decoded_body_is_the_identity_body(api_client, products, on, coding):
    with toggles.override(compression=False):
        plain = api_client.get(LIST, HTTP_ACCEPT_ENCODING=coding)
    assert not plain.has_header("Content-Encoding")
    response = api_client.get(LIST, HTTP_ACCEPT_ENCODING=coding)
    assert response["Content-Encoding"] == coding
    assert int(response["Content-Length"]) == len(response.content) < len(plain.content)
    assert DECODERS[coding](response.content) == plain.content
    assert "Accept-Encoding" in response["Vary"]
    assert "compress;dur=" in response["Server-Timing"]


@pytest.mark.parametrize("header", [None, "", "identity", "gzip;q=0", "gzip;q=oops", "deflate"])
def test_no_acceptable_coding_is_identity_with_vary(api_client, products, on, header):
    extra = {} if header is None else {"HTTP_ACCEPT_ENCODING": header}
    response = api_client.get(LIST, **extra)
    assert response.status_code == 200
    assert not response.has_header("Content-Encoding")
    assert response.json()["count"] == 12
    assert "Accept-Encoding" in response["Vary"]  # a cache must not give it to a gzip client


def test_tiny_bodies_are_not_compressed(api_client, on, db):
    response = api_client.get("/api/products/999999/", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 404
    assert 0 < len(response.content) < compression.MIN_BYTES
    assert not response.has_header("Content-Encoding")


def test_streamed_bodies_are_not_compressed(staff_client, on):
    response = staff_client.get("/api/staff/orders/export.csv", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response.streaming
    assert not response.has_header("Content-Encoding")


def test_off_never_compresses(api_client, products):
    with toggles.override(compression=False):
        response = api_client.get(LIST, HTTP_ACCEPT_ENCODING="br, gzip")
    assert not response.has_header("Content-Encoding")
    assert "Accept-Encoding" not in response.get("Vary", "")


# --- BREACH: a secret next to reflected input, to a client an attacker can drive ---------------


@pytest.fixture
def everything_large(monkeypatch):
    """No size floor, so only the BREACH rules can keep a body uncompressed."""
    monkeypatch.setattr(compression, "MIN_BYTES", 0)


def test_the_auth_token_is_never_compressed(api_client, on, everything_large, db):
    UserFactory(username="alice", password="s3cret-pass")
    response = api_client.post(
        "/api/auth/token/",
        {"username": "alice", "password": "s3cret-pass"},
        HTTP_ACCEPT_ENCODING="gzip",
    )
    assert response.status_code == 200
    assert "token" in response.json()
    assert not response.has_header("Content-Encoding")


def test_html_pages_are_never_compressed(customer_client, products, on):
    response = customer_client.get(LIST, HTTP_ACCEPT="text/html", HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Type"].startswith("text/html")
    assert len(response.content) > compression.MIN_BYTES
    assert not response.has_header("Content-Encoding")


def test_a_page_that_used_the_csrf_token_is_never_compressed(on, everything_large):
    request = RequestFactory().get("/api/orders/")
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    assert compression.breach_exposed(request, JsonResponse({"orders": []}))


@pytest.fixture
def many_orders(customer):
    variant = VariantFactory()
    OrderFactory.create_batch(15, user=customer, lines=[(variant, 1)])
    return customer


def test_private_pages_with_a_session_cookie_are_not_compressed(many_orders, on):
    session = APIClient()
    session.force_login(many_orders)  # a cookie: what a cross-site page can make a browser send
    response = session.get("/api/orders/?page_size=50", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert len(response.content) > compression.MIN_BYTES
    assert not response.has_header("Content-Encoding")
    # The same page for a token client (an Authorization header no other site can send).
    token = APIClient()
    token.force_authenticate(many_orders)
    assert (
        token.get("/api/orders/?page_size=50", HTTP_ACCEPT_ENCODING="gzip")["Content-Encoding"]
        == "gzip"
    )


def test_public_catalog_pages_are_compressed_with_a_session_too(many_orders, products, on):
    session = APIClient()
    session.force_login(many_orders)
    response = session.get(LIST, HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"


# --- with http_caching: a 304 says what its 200 varies by ------------------------------------


def test_a_304_carries_vary_accept_encoding(api_client, products):
    with toggles.override(compression=True, http_caching=True, local_cache=False):
        full = api_client.get(LIST, HTTP_ACCEPT_ENCODING="br")
        assert full["Content-Encoding"] == "br"
        assert full["ETag"].startswith('W/"')
        response = api_client.get(LIST, HTTP_ACCEPT_ENCODING="br", HTTP_IF_NONE_MATCH=full["ETag"])
    assert response.status_code == 304
    assert response.content == b""
    assert "Accept-Encoding" in response["Vary"]
    assert not response.has_header("Content-Encoding")


def test_compression_is_listed_once_outside_http_caching_which_is_innermost():
    from django.conf import settings

    compression_at = settings.MIDDLEWARE.index("shop.techniques.compression.Middleware")
    caching_at = settings.MIDDLEWARE.index("shop.techniques.http_caching.Middleware")
    assert settings.MIDDLEWARE.count("shop.techniques.compression.Middleware") == 1
    assert settings.MIDDLEWARE.count("shop.techniques.http_caching.Middleware") == 1
    # Inside the toggle header's scope, so the header switches it.
    assert settings.MIDDLEWARE.index("shop.perf_headers.PerfToggleMiddleware") < compression_at
    assert compression_at < caching_at == len(settings.MIDDLEWARE) - 1
