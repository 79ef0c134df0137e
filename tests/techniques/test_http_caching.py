"""http_caching: validators on catalog reads, a 304 that skips the view, no stale 304 after any
kind of write, Cache-Control public on the catalog and private elsewhere, Redis down."""

import time
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils.http import http_date
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Variant
from shop import cache, toggles
from shop.private_broker import PrivateBroker
from shop.techniques import http_caching, write_behind
from tests.factories import (
    CategoryFactory,
    UserFactory,
    VariantFactory,
)

LIST = "/api/products/?page_size=50"


@pytest.fixture
def on():
    # local_cache off: with it on, a list page gets no ETag for the category tree's TTL after
    # its token starts (the settling window, tested on its own below).
    with toggles.override(http_caching=True, compression=False, local_cache=False):
        yield


@pytest.fixture
def catalog(products):
    """The conftest's twelve products, each with a variant."""
    for product in products:
        VariantFactory(product=product, stock=10, price=Decimal("10.00"))
    return products


def _detail(product) -> str:
    return f"/api/products/{product.pk}/"


def _held(client, path, **headers):
    """The page as a client holds it once it has a validator. A product page's token starts
    after the page's first 200, which carries no ETag: so every page is fetched twice."""
    client.get(path, **headers)
    return client.get(path, **headers)


def test_catalog_reads_carry_a_weak_etag_and_public_cache_control(api_client, catalog, on):
    category_page = f"/api/categories/{catalog[0].category_id}/products/"
    for path in (LIST, _detail(catalog[0]), "/api/categories/", category_page):
        response = _held(api_client, path)
        assert response.status_code == 200
        assert response["ETag"].startswith('W/"')
        assert response["Cache-Control"] == "public, max-age=30, must-revalidate"
        assert "Accept" in response["Vary"]


def test_a_matching_if_none_match_is_a_304_without_the_view(
    api_client, catalog, on, django_assert_num_queries
):
    category_page = f"/api/categories/{catalog[0].category_id}/products/"
    for path in (LIST, _detail(catalog[0]), "/api/categories/", category_page):
        etag = _held(api_client, path)["ETag"]
        with django_assert_num_queries(0):  # no view, no token lookup, no serializer
            response = api_client.get(path, HTTP_IF_NONE_MATCH=etag)
        assert response.status_code == 304
        assert response.content == b""
        assert response["ETag"] == etag
        assert response["Cache-Control"] == http_caching.PUBLIC_CACHE_CONTROL
        assert "Accept" in response["Vary"]


def test_a_revalidated_product_page_counts_as_a_view(api_client, catalog, on):
    """write_behind counts every product page view; a 304 skips the view, not the count."""
    product = catalog[0]
    write_behind.discard()
    try:
        with toggles.override(write_behind=True):
            etag = _held(api_client, _detail(product))["ETag"]
            assert api_client.get(_detail(product), HTTP_IF_NONE_MATCH=etag).status_code == 304
            assert write_behind.waiting() == {product.pk: 3}
            # The list is no product view.
            list_etag = api_client.get(LIST)["ETag"]
            assert api_client.get(LIST, HTTP_IF_NONE_MATCH=list_etag).status_code == 304
            assert write_behind.waiting() == {product.pk: 3}
    finally:
        write_behind.discard()


def test_an_etag_that_does_not_match_gets_the_page(api_client, catalog, on):
    full = api_client.get(LIST)
    response = api_client.get(LIST, HTTP_IF_NONE_MATCH='W/"someone-else"')
    assert response.status_code == 200
    assert response.json() == full.json()


def test_each_url_and_representation_has_its_own_etag(api_client, catalog, on):
    etags = {
        _held(api_client, path, **headers)["ETag"]
        for path, headers in [
            (LIST, {}),
            ("/api/products/?page_size=10", {}),
            (_detail(catalog[0]), {}),
            (_detail(catalog[1]), {}),
            (LIST, {"HTTP_ACCEPT": "application/json; indent=2"}),
        ]
    }
    assert len(etags) == 5
    # Another page's ETag never matches this one.
    other = _held(api_client, _detail(catalog[1]))["ETag"]
    assert api_client.get(_detail(catalog[0]), HTTP_IF_NONE_MATCH=other).status_code == 200


def test_off_sends_no_validators_and_always_the_page(api_client, catalog):
    with toggles.override(http_caching=True, local_cache=False):
        etag = api_client.get(LIST)["ETag"]
        on_body = api_client.get(LIST).json()
    with toggles.override(http_caching=False):
        response = api_client.get(LIST, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert not response.has_header("ETag")
    assert not response.has_header("Cache-Control")
    assert response.json() == on_body


def _age_tokens(*names, seconds=5):
    """Tokens as a write `seconds` ago would have left them: a Last-Modified in a past second."""
    past = time.time_ns() - seconds * 1_000_000_000
    for name in names:
        cache.set(http_caching._key(name), past, timeout=http_caching.TOKEN_TTL_S)
    return (past // 1_000_000_000) * 1_000_000_000


def test_if_modified_since_is_a_304_only_for_a_date_not_before_the_last_change(
    api_client, catalog, on
):
    _age_tokens("catalog", "lists")
    response = api_client.get(LIST)
    last_modified = response["Last-Modified"]
    assert api_client.get(LIST, HTTP_IF_MODIFIED_SINCE=last_modified).status_code == 304
    earlier = http_date(time.time() - 3600)
    assert api_client.get(LIST, HTTP_IF_MODIFIED_SINCE=earlier).status_code == 200
    # If-None-Match takes precedence (RFC 9110 §13.2.2): a wrong ETag is a 200 whatever the date.
    mismatched = {"HTTP_IF_MODIFIED_SINCE": last_modified, "HTTP_IF_NONE_MATCH": 'W/"x"'}
    assert api_client.get(LIST, **mismatched).status_code == 200


def test_no_last_modified_within_the_second_of_the_last_change(
    api_client, catalog, on, monkeypatch
):
    """A change later in the same second would have the same Last-Modified. The module's clock
    is held, so the request never crosses into the next second by chance."""
    second = int(time.time())
    clock = SimpleNamespace(time_ns=lambda: second * 1_000_000_000 + 500_000_000)
    monkeypatch.setattr(http_caching, "time", clock)
    with toggles.override(read_replica=False):  # no settling window: the ETag at once
        http_caching.bump(["catalog", "lists"])  # half way through `second`
        response = api_client.get(LIST)
        assert response.has_header("ETag")
        assert not response.has_header("Last-Modified")
        clock.time_ns = lambda: (second + 1) * 1_000_000_000  # `second` is over
        response = api_client.get(LIST)
        assert response["Last-Modified"] == http_date(second)


FAR_FUTURE = "Fri, 31 Dec 9999 23:59:59 GMT"


def test_if_unmodified_since_is_ignored_on_a_page_without_last_modified(
    api_client, catalog, on, monkeypatch
):
    """RFC 9110 §13.1.4: a recipient MUST ignore If-Unmodified-Since when the representation has
    no modification date. Django's get_conditional_response answers it 412 whatever the date
    when there is none; the page sent no Last-Modified, so the client gets a 412 it cannot
    explain, where the technique off answers 200."""
    second = int(time.time())
    clock = SimpleNamespace(time_ns=lambda: second * 1_000_000_000 + 500_000_000)
    monkeypatch.setattr(http_caching, "time", clock)
    with toggles.override(read_replica=False):
        http_caching.bump(["catalog", "lists"])  # within this second: no Last-Modified
        held = api_client.get(LIST)
        assert held.has_header("ETag") and not held.has_header("Last-Modified")
        for headers in (
            {"HTTP_IF_UNMODIFIED_SINCE": FAR_FUTURE},
            {"HTTP_IF_UNMODIFIED_SINCE": FAR_FUTURE, "HTTP_IF_NONE_MATCH": held["ETag"]},
            {"HTTP_IF_UNMODIFIED_SINCE": FAR_FUTURE, "HTTP_IF_NONE_MATCH": "*"},
        ):
            response = api_client.get(LIST, **headers)
            assert response.status_code in (200, 304), (headers, response.content)
        assert api_client.get(LIST, HTTP_IF_UNMODIFIED_SINCE=FAR_FUTURE).json() == held.json()


def test_if_unmodified_since_still_fails_a_page_changed_after_it(api_client, catalog, on):
    _age_tokens("catalog", "lists")
    api_client.get(LIST)
    earlier = http_date(time.time() - 3600)
    response = api_client.get(LIST, HTTP_IF_UNMODIFIED_SINCE=earlier)
    assert response.status_code == 412
    assert response.json()["code"] == "precondition_failed"
    assert api_client.get(LIST, HTTP_IF_UNMODIFIED_SINCE=FAR_FUTURE).status_code == 200


@override_settings(HTTP_CACHING_VALIDATOR="rendered")
def test_the_rendered_validator_ignores_if_unmodified_since(api_client, catalog, on):
    # Django's ConditionalGetMiddleware sets no Last-Modified: any date was a 412.
    for date in (FAR_FUTURE, http_date(time.time() - 3600)):
        response = api_client.get(LIST, HTTP_IF_UNMODIFIED_SINCE=date)
        assert response.status_code == 200, (date, response.content)


# --- every kind of write moves the validator: never a stale 304 -----------------------------


def _staff() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


def _set_price(product):
    variant = product.variants.first()
    response = _staff().patch(f"/api/staff/variants/{variant.pk}/", {"price": "99.00"})
    assert response.status_code == 200, response.content


def _set_stock(product):
    variant = product.variants.first()
    response = _staff().patch(f"/api/staff/variants/{variant.pk}/", {"stock": 3})
    assert response.status_code == 200, response.content


def _take_stock(product):
    client = APIClient()
    client.force_authenticate(UserFactory())
    sku = product.variants.first().sku
    response = client.post("/api/orders/", {"items": [{"sku": sku, "quantity": 2}]}, format="json")
    assert response.status_code == 201, response.content
    return client, response.json()["id"]


def _review(product):
    client = APIClient()
    client.force_authenticate(UserFactory())
    body = {"rating": 1, "title": "Broke", "body": "On day one."}
    assert client.post(f"/api/products/{product.pk}/reviews/", body).status_code == 201


def _rename_brand(product):
    """Through the admin's change form, as staff rename a brand."""
    client = APIClient()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    brand = product.brand
    response = client.post(
        f"/admin/catalog/brand/{brand.pk}/change/", {"name": "Renamed", "slug": brand.slug}
    )
    assert response.status_code == 302, response.content[:500]


def _move_product(product):
    response = _staff().patch(
        f"/api/staff/products/{product.pk}/", {"category": CategoryFactory().pk}
    )
    assert response.status_code == 200, response.content


def _import(product):
    body = {
        "products": [
            {
                "name": "Imported",
                "slug": "imported-1",
                "description": "New.",
                "category_id": product.category_id,
                "brand_id": product.brand_id,
                "variants": [{"sku": "IMP-1", "name": "One", "price": "5.00", "stock": 3}],
            }
        ]
    }
    response = _staff().post("/api/staff/products/import/", body, format="json")
    assert response.status_code == 201, response.content


# The write, and the pages whose content it visibly changes (it may move more validators).
WRITES = {
    "price": (_set_price, ["detail", "category page"]),
    "stock set by staff": (_set_stock, ["detail"]),
    "stock taken by an order": (_take_stock, ["detail"]),
    "review": (_review, ["list", "detail", "category page"]),
    "brand renamed in the admin": (_rename_brand, ["list", "detail", "category page"]),
    "product moved to a category": (_move_product, ["list", "detail", "category page"]),
    "import": (_import, ["list", "category page"]),
}


@pytest.mark.parametrize("kind", WRITES)
def test_every_kind_of_write_moves_the_validators_of_the_pages_it_changes(
    kind, api_client, catalog, on, django_capture_on_commit_callbacks
):
    write, pages = WRITES[kind]
    product = catalog[0]
    paths = {
        "list": LIST,
        "detail": _detail(product),
        "category page": f"/api/categories/{product.category_id}/products/",
    }
    before = {page: _held(api_client, paths[page]) for page in pages}
    with django_capture_on_commit_callbacks(execute=True):
        write(product)
    for page in pages:
        response = api_client.get(paths[page], HTTP_IF_NONE_MATCH=before[page]["ETag"])
        assert response.status_code == 200, f"{kind}: a stale 304 for the {page} page"
        assert response.json() != before[page].json(), f"{kind}: the {page} page did not change"


def test_a_category_moved_under_another_moves_the_tree_and_that_ones_pages(
    api_client, catalog, on, django_capture_on_commit_callbacks
):
    parent = CategoryFactory()
    paths = [
        f"/api/products/?category={parent.pk}",
        f"/api/categories/{parent.pk}/products/",
        "/api/categories/",
    ]
    before = {path: api_client.get(path) for path in paths}
    assert before[paths[0]].json()["count"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        response = _staff().patch(
            f"/api/staff/categories/{catalog[0].category_id}/", {"parent": parent.pk}
        )
        assert response.status_code == 200, response.content
    for path in paths:
        response = api_client.get(path, HTTP_IF_NONE_MATCH=before[path]["ETag"])
        assert response.status_code == 200, path
        assert response.json() != before[path].json(), path
    assert api_client.get(paths[0]).json()["count"] == 4


def test_stock_given_back_by_a_cancel_moves_the_product_validator(
    api_client, catalog, on, django_capture_on_commit_callbacks
):
    product = catalog[0]
    with django_capture_on_commit_callbacks(execute=True):
        client, order_id = _take_stock(product)
    before = _held(api_client, _detail(product))
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/orders/{order_id}/cancel/").status_code == 200
    response = api_client.get(_detail(product), HTTP_IF_NONE_MATCH=before["ETag"])
    assert response.status_code == 200
    assert response.json()["variants"][0]["stock"] == before.json()["variants"][0]["stock"] + 2


def test_a_write_leaves_other_products_pages_alone(
    api_client, catalog, on, django_capture_on_commit_callbacks
):
    other = _held(api_client, _detail(catalog[1]))["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        _take_stock(catalog[0])
    assert api_client.get(_detail(catalog[1]), HTTP_IF_NONE_MATCH=other).status_code == 304


def test_a_rolled_back_write_moves_nothing(
    api_client, catalog, on, django_capture_on_commit_callbacks
):
    etag = _held(api_client, _detail(catalog[0]))["ETag"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        Variant.objects.filter(product=catalog[0]).update(stock=0)
        http_caching.changed_on_commit(product_ids=[catalog[0].pk])
    assert callbacks  # queued for the commit, which never comes
    assert api_client.get(_detail(catalog[0]), HTTP_IF_NONE_MATCH=etag).status_code == 304


# --- settling: no validator while a page may still be built from the rows before a change -----


@pytest.mark.django_db(databases=["default", "replica"])
def test_no_etag_while_the_replica_may_not_have_replayed_a_change(api_client, catalog, on):
    assert settings.READ_REPLICA_DATABASE == "replica"
    path = _detail(catalog[0])
    with toggles.override(read_replica=True):
        http_caching.bump(["catalog", f"product:{catalog[0].pk}"])
        assert not api_client.get(path).has_header("ETag")  # the replica may be behind
        _age_tokens(
            "catalog", f"product:{catalog[0].pk}", seconds=settings.READ_REPLICA_PIN_SECONDS
        )
        assert api_client.get(path).has_header("ETag")
    with toggles.override(read_replica=False):  # every read on the primary: at once
        http_caching.bump(["catalog", f"product:{catalog[0].pk}"])
        assert api_client.get(path).has_header("ETag")


def test_no_etag_while_other_processes_may_hold_the_old_category_tree(api_client, catalog, on):
    with toggles.override(local_cache=True):
        http_caching.bump(["catalog", "lists"])
        assert not api_client.get(LIST).has_header("ETag")
        _age_tokens("lists", seconds=1)
        assert not api_client.get(LIST).has_header("ETag")  # the tree's TTL is the bound
        _age_tokens("catalog", "lists", seconds=settings.LOCAL_CACHE_CATEGORY_TTL_S)
        assert api_client.get(LIST).has_header("ETag")
        # A product page reads no category tree: no wait.
        http_caching.bump(["catalog"])
        assert _held(api_client, _detail(catalog[0])).has_header("ETag")


# --- Cache-Control on private pages ---------------------------------------------------------


def test_private_pages_are_private_and_never_stored(customer_client, catalog, on):
    for path in ("/api/orders/", "/api/perf/ping/"):
        response = customer_client.get(path)
        assert response.status_code == 200
        assert response["Cache-Control"] == "private, no-store"
        assert not response.has_header("ETag")
        assert "Authorization" in response["Vary"]
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))
    assert staff.get("/api/staff/orders/")["Cache-Control"] == "private, no-store"


def test_the_token_endpoint_is_private(api_client, on, db):
    UserFactory(username="alice", password="s3cret-pass")
    response = api_client.post("/api/auth/token/", {"username": "alice", "password": "s3cret-pass"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"


def test_the_browsable_api_html_is_private(customer_client, catalog, on):
    response = customer_client.get(LIST, HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "private, no-store"
    assert not response.has_header("ETag")


# --- the comparison: Django's ConditionalGetMiddleware renders, then hashes ------------------


@override_settings(HTTP_CACHING_VALIDATOR="rendered")
def test_the_rendered_validator_saves_the_bytes_but_runs_the_view(api_client, catalog, on):
    etag = api_client.get(LIST)["ETag"]
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(LIST, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""
    assert len(queries) > 0  # the page was built, then thrown away


# --- Redis down -------------------------------------------------------------------------------


def test_redis_down_serves_the_page_without_validators(api_client, catalog, tmp_path, caplog):
    broker = PrivateBroker(tmp_path / "redis")
    broker.start()
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": broker.url,
            "KEY_PREFIX": "http-caching-outage",
        }
    }
    try:
        with (
            override_settings(CACHES=caches),
            toggles.override(http_caching=True, local_cache=False),
        ):
            etag = api_client.get(LIST)["ETag"]
            broker.stop()
            response = api_client.get(LIST, HTTP_IF_NONE_MATCH=etag)
            assert response.status_code == 200
            assert not response.has_header("ETag")
            assert len(response.json()["results"]) == 12
    finally:
        broker.stop()


# --- a product's token starts after a 200 of its page -----------------------------------------

MISSING_PRODUCT = "/api/products/999999999/"


def test_a_missing_product_starts_no_token(api_client, catalog, on):
    assert api_client.get(MISSING_PRODUCT).status_code == 404
    assert cache.get(http_caching._key("product:999999999")) is cache.MISS
    response = api_client.get(MISSING_PRODUCT, HTTP_IF_NONE_MATCH='W/"guessed"')
    assert response.status_code == 404
    assert not response.has_header("ETag")
    assert cache.get(http_caching._key("product:999999999")) is cache.MISS


def test_a_product_token_starts_after_its_first_200_which_carries_no_etag(api_client, catalog, on):
    """The token starts after the body was read: an ETag on that body could name a version
    committed between the read and the start. The next read is made after the token."""
    path, key = _detail(catalog[0]), http_caching._key(f"product:{catalog[0].pk}")
    assert cache.get(key) is cache.MISS
    first = api_client.get(path)
    assert first.status_code == 200
    assert not first.has_header("ETag")
    assert first["Cache-Control"] == http_caching.PUBLIC_CACHE_CONTROL
    assert cache.get(key) is not cache.MISS
    second = api_client.get(path)
    assert second["ETag"].startswith('W/"')
    assert api_client.get(path, HTTP_IF_NONE_MATCH=second["ETag"]).status_code == 304


# --- a 304 only for a page that exists, asked for with a valid request ------------------------

MISSING_CATEGORY = "/api/categories/999999/products/"
BAD_QUERY = "/api/products/?fields=no-such-field"


def test_if_none_match_star_is_no_304_for_a_missing_page_or_a_bad_request(api_client, catalog, on):
    """`*` matches any current representation: only the view knows whether there is one."""
    star = {"HTTP_IF_NONE_MATCH": "*"}
    assert api_client.get(MISSING_PRODUCT, **star).status_code == 404
    assert api_client.get(MISSING_CATEGORY, **star).status_code == 404
    assert api_client.get(BAD_QUERY, **star).status_code == 400


def test_if_modified_since_alone_is_no_304_for_a_missing_page_or_a_bad_request(
    api_client, catalog, on
):
    _age_tokens("catalog", "lists")
    future = {"HTTP_IF_MODIFIED_SINCE": http_date(time.time() + 3600)}
    assert api_client.get(MISSING_CATEGORY, **future).status_code == 404
    assert api_client.get(BAD_QUERY, **future).status_code == 400
    assert api_client.get(MISSING_PRODUCT, **future).status_code == 404


def test_if_modified_since_alone_and_star_are_decided_after_the_view(api_client, catalog, on):
    """Without an ETag to compare, the view runs; its 200 becomes a 304 (the bytes saved)."""
    product = catalog[0]
    paths = [LIST, f"/api/categories/{product.category_id}/products/", _detail(product)]
    _age_tokens("catalog", "lists", f"product:{product.pk}")
    for path in paths:
        held = api_client.get(path)
        for conditional in (
            {"HTTP_IF_MODIFIED_SINCE": held["Last-Modified"]},
            {"HTTP_IF_NONE_MATCH": "*"},
        ):
            with CaptureQueriesContext(connection) as queries:
                response = api_client.get(path, **conditional)
            assert response.status_code == 304, (path, conditional)
            assert response.content == b""
            assert len(queries) > 0, (path, conditional)  # the view ran
            assert response["ETag"] == held["ETag"]
            assert response["Cache-Control"] == http_caching.PUBLIC_CACHE_CONTROL
            assert "Accept" in response["Vary"]


def test_a_304_after_the_view_counts_the_product_view_once(api_client, catalog, on):
    product = catalog[0]
    _age_tokens(f"product:{product.pk}", "catalog")
    write_behind.discard()
    try:
        with toggles.override(write_behind=True):
            held = api_client.get(_detail(product))
            since = {"HTTP_IF_MODIFIED_SINCE": held["Last-Modified"]}
            assert api_client.get(_detail(product), **since).status_code == 304
            assert api_client.get(_detail(product), HTTP_IF_NONE_MATCH="*").status_code == 304
            assert write_behind.waiting() == {product.pk: 3}
    finally:
        write_behind.discard()


@pytest.mark.parametrize("with_token", [False, True], ids=["session", "session-and-token"])
def test_a_304_before_the_view_carries_the_vary_of_its_200(catalog, on, with_token):
    """A request with a session cookie and no token: authentication reads the session, so the
    200 varies on Cookie. With a token, the token authenticates and the session is not read.
    The 304 made before the view must carry the same Vary as the 200 (RFC 9110 §15.4.5)."""
    user = UserFactory()
    client = APIClient()
    client.force_login(user)
    if with_token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    page = _held(client, _detail(catalog[0]))
    assert page.status_code == 200
    not_modified = client.get(_detail(catalog[0]), HTTP_IF_NONE_MATCH=page["ETag"])
    assert not_modified.status_code == 304

    def vary(response):
        return sorted(value.strip() for value in response["Vary"].split(","))

    assert vary(page) == (["Accept"] if with_token else ["Accept", "Cookie"])
    assert vary(not_modified) == vary(page)


def test_a_304_before_the_view_does_not_check_credentials(api_client, catalog, on):
    """What the chapter says: a public page's early 304 runs no authentication, so a bad token
    gets the 304 where the view answers 401."""
    etag = _held(api_client, _detail(catalog[0]))["ETag"]
    api_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert api_client.get(_detail(catalog[0])).status_code == 401
    assert api_client.get(_detail(catalog[0]), HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_the_etag_is_keyed_with_the_secret_key(api_client, catalog, on):
    """The ETag's inputs can be guessed; the hash's key cannot: another SECRET_KEY makes
    another ETag of the same page, and the first one no longer matches."""
    etag = _held(api_client, LIST)["ETag"]
    with override_settings(SECRET_KEY="another secret key, " * 3):
        page = api_client.get(LIST, HTTP_IF_NONE_MATCH=etag)
    assert page.status_code == 200
    assert page["ETag"] not in ("", etag)
