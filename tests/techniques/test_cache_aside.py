"""cache_aside: the same bytes off and on, a hit that runs no query, every write that changes a
cached page invalidating it on commit, versioned keys, and an outage of Redis that costs
speed, never a 500."""

import logging
import threading
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from catalog import payloads
from catalog import services as catalog_services
from orders import services as order_services
from shop import cache, replication, toggles
from shop.errors import InvalidInput
from shop.perf_headers import parse_cache_ops, parse_query_counts
from shop.private_broker import PrivateBroker
from shop.techniques import cache_aside, read_replica
from tests.concurrency import run_concurrently
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
    review_by_service,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop_rows():
    """A tree (Home > Kitchen > Knives, and Garden), two brands, products in each category
    with one or two variants, and reviews: enough for every facet to count something."""
    home = CategoryFactory(name="Home")
    kitchen = CategoryFactory(name="Kitchen", parent=home)
    knives = CategoryFactory(name="Knives", parent=kitchen)
    garden = CategoryFactory(name="Garden")
    acme, zeta = BrandFactory(name="Acme"), BrandFactory(name="Zeta")
    rows = {}
    for name, category, brand, prices in [
        ("pan", kitchen, acme, ["19.99", "24.50"]),
        ("chef knife", knives, acme, ["89.00"]),
        ("paring knife", knives, zeta, ["9.50"]),
        ("rug", home, zeta, ["300.00"]),
        ("hose", garden, zeta, ["30.00"]),
    ]:
        product = ProductFactory(name=name, category=category, brand=brand)
        for price in prices:
            VariantFactory(product=product, price=Decimal(price), stock=5)
        rows[name] = product
    review_by_service(rows["pan"], 5)
    review_by_service(rows["chef knife"], 3)
    return {"home": home, "kitchen": kitchen, "knives": knives, "garden": garden, **rows}


def _paths(rows) -> dict[str, str]:
    """Every cached endpoint, by name."""
    return {
        "detail": f"/api/products/{rows['pan'].pk}/",
        "list": "/api/products/?page_size=3",
        "list filtered": f"/api/products/?category={rows['kitchen'].pk}",
        "tree": "/api/categories/",
        "category page": f"/api/categories/{rows['home'].pk}/products/?page_size=2&page=2",
    }


def get(client, path, *, on: bool = True):
    response = client.get(path, HTTP_X_PERF_TOGGLES=f"cache_aside={'on' if on else 'off'}")
    assert response.status_code == 200, response.content
    return response


def queries(response) -> int:
    return sum(parse_query_counts(response["X-DB-Queries"]).values())


def ops(response) -> dict[str, int]:
    return parse_cache_ops(response["X-Cache-Ops"])


# --- fetch ---------------------------------------------------------------------------------------


def test_fetch_off_computes_every_time_and_never_calls_redis():
    computed = []
    with toggles.override(cache_aside=False), cache.counting() as counted:
        for _ in range(3):
            assert cache_aside.fetch("k", lambda: computed.append(1) or {"n": 1}, ttl=60) == {
                "n": 1
            }
    assert len(computed) == 3
    assert counted.header() == "hits=0 misses=0 sets=0 deletes=0 errors=0"


def test_fetch_on_computes_on_a_miss_only():
    computed = []
    key = cache.key("test", 1, version=1)
    with toggles.override(cache_aside=True), cache.counting() as counted:
        for _ in range(3):
            assert cache_aside.fetch(key, lambda: computed.append(1) or {"n": 1}, ttl=60) == {
                "n": 1
            }
    assert len(computed) == 1
    assert (counted.hits, counted.misses, counted.sets) == (2, 1, 1)


def test_the_read_path_can_be_replaced_and_restored():
    seen = []

    def path(cache_key, compute, *, ttl):
        seen.append((cache_key, ttl))
        return cache_aside.read(cache_key, compute, ttl=ttl)

    previous = cache_aside._read_path  # stampede_protection's, registered at start-up
    cache_aside.set_read_path(path)
    try:
        with toggles.override(cache_aside=True):
            assert cache_aside.fetch("seam", lambda: 7, ttl=9) == 7
            assert cache_aside.fetch("seam", lambda: 8, ttl=9) == 7  # a hit, through the path
    finally:
        cache_aside.set_read_path(previous)
    assert seen == [("seam", 9), ("seam", 9)]
    assert cache_aside._read_path is previous
    cache_aside.set_read_path(None)
    try:
        assert cache_aside._read_path is cache_aside.read
    finally:
        cache_aside.set_read_path(previous)


# --- same bytes, and a hit costs no query ---------------------------------------------------


def test_off_and_on_give_the_same_bytes_and_a_hit_runs_no_query(shop_rows):
    client = APIClient()
    for name, path in _paths(shop_rows).items():
        off = get(client, path, on=False)
        miss = get(client, path)
        hit = get(client, path)
        assert off.content == miss.content == hit.content, name
        assert queries(off) > 0 and queries(miss) > 0, name  # local_cache may spare one
        assert queries(hit) == 0, name
        assert ops(miss)["sets"] >= 1 and ops(hit)["sets"] == 0 and ops(hit)["misses"] == 0, name


def test_the_cost_header_counts_the_cache_operations(shop_rows):
    client = APIClient()
    path = _paths(shop_rows)["detail"]
    assert ops(get(client, path)) == {"hits": 0, "misses": 1, "sets": 1, "deletes": 0, "errors": 0}
    assert ops(get(client, path)) == {"hits": 1, "misses": 0, "sets": 0, "deletes": 0, "errors": 0}
    # A list page reads its generation, then the page: two hits.
    path = _paths(shop_rows)["category page"]
    get(client, path)
    assert ops(get(client, path))["hits"] == 2


def test_the_category_page_lists_the_descendants_with_their_facets(shop_rows):
    page = get(APIClient(), f"/api/categories/{shop_rows['home'].pk}/products/").json()
    assert page["category"]["name"] == "Home"
    assert [p["name"] for p in page["results"]] == ["rug", "paring knife", "chef knife", "pan"]
    assert page["count"] == 4 and page["next"] is None
    pan = page["results"][-1]
    assert (pan["price_from"], pan["rating_avg"], pan["review_count"]) == ("19.99", "5.00", 1)
    facets = page["facets"]
    assert [(b["name"], b["count"]) for b in facets["brand"]] == [("Acme", 2), ("Zeta", 2)]
    assert {b["band"]: b["count"] for b in facets["price"]} == {
        "under-10": 1,
        "10-25": 1,
        "25-50": 0,
        "50-100": 1,
        "100-250": 0,
        "250-and-up": 1,
    }
    assert {r["min_rating"]: r["count"] for r in facets["rating"]} == {4: 1, 3: 2, 2: 2, 1: 2}


def test_the_category_tree_nests_the_children(shop_rows):
    tree = get(APIClient(), "/api/categories/").json()["categories"]
    assert [(c["name"], [k["name"] for k in c["children"]]) for c in tree] == [
        ("Home", ["Kitchen"]),
        ("Garden", []),
    ]
    assert tree[0]["children"][0]["children"][0]["name"] == "Knives"


@pytest.mark.parametrize(
    ("path", "status", "built"),
    [
        ("/api/categories/999999/products/", 404, True),
        ("/api/categories/{home}/products/?page=0", 400, False),
        ("/api/categories/{home}/products/?page_size=500", 400, False),
        ("/api/categories/{home}/products/?page=99", 404, True),
        ("/api/products/999999/", 404, True),
    ],
)
def test_bad_requests_are_answered_and_never_cached(shop_rows, path, status, built):
    """`built`: the error comes from building the page, after the cache missed; it must not
    be stored, so the next request misses again. Otherwise the view refuses the parameters
    before the cache is asked at all."""
    client = APIClient()
    path = path.format(home=shop_rows["home"].pk)
    cache_aside.list_generation()  # started: its first read stores it
    for _ in range(2):
        response = client.get(path, HTTP_X_PERF_TOGGLES="cache_aside=on")
        assert response.status_code == status, response.content
        counted = ops(response)
        assert counted["sets"] == 0
        if built:
            assert counted["misses"] == 1  # the page's key, every time: nothing was stored
        else:
            assert counted == {"hits": 0, "misses": 0, "sets": 0, "deletes": 0, "errors": 0}


# --- every write invalidates on commit -------------------------------------------------------


@pytest.fixture
def staff():
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


def _cached(client, rows):
    """Every endpoint read once with the cache on, so each is cached; their bodies."""
    return {name: get(client, path).json() for name, path in _paths(rows).items()}


def _pan_variant(rows):
    return rows["pan"].variants.order_by("price").first()


def test_a_price_change_shows_on_the_next_read(
    shop_rows, staff, django_capture_on_commit_callbacks
):
    client = APIClient()
    _cached(client, shop_rows)
    home_page = f"/api/categories/{shop_rows['home'].pk}/products/"
    assert get(client, home_page).json()["results"][-1]["price_from"] == "19.99"  # cached
    variant = _pan_variant(shop_rows)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.patch(f"/api/staff/variants/{variant.pk}/", {"price": "5.00"})
    assert response.status_code == 200, response.content
    after = _cached(client, shop_rows)
    assert "5.00" in [v["price"] for v in after["detail"]["variants"]]
    page = get(client, home_page).json()
    assert page["results"][-1]["price_from"] == "5.00"
    assert {b["band"]: b["count"] for b in page["facets"]["price"]}["under-10"] == 2
    assert after == {
        name: get(client, path, on=False).json() for name, path in _paths(shop_rows).items()
    }


def test_a_stock_change_shows_on_the_next_read(
    shop_rows, staff, django_capture_on_commit_callbacks
):
    client = APIClient()
    _cached(client, shop_rows)
    variant = _pan_variant(shop_rows)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.patch(f"/api/staff/variants/{variant.pk}/", {"stock": 77})
    assert response.status_code == 200, response.content
    detail = get(client, _paths(shop_rows)["detail"]).json()
    assert 77 in [v["stock"] for v in detail["variants"]]
    # No list shows stock: the list pages are still cached (an order does not empty them).
    for name in ("list", "list filtered", "category page", "tree"):
        assert queries(get(client, _paths(shop_rows)[name])) == 0, name


def test_placing_and_cancelling_an_order_show_the_stock(
    shop_rows, customer, django_capture_on_commit_callbacks
):
    client = APIClient()
    path = _paths(shop_rows)["detail"]
    variant = _pan_variant(shop_rows)
    get(client, path)
    with django_capture_on_commit_callbacks(execute=True):
        placement = order_services.order_place(
            user=customer, lines=[order_services.OrderLine(sku=variant.sku, quantity=2)]
        )
    stocks = {v["sku"]: v["stock"] for v in get(client, path).json()["variants"]}
    assert stocks[variant.sku] == 3
    with django_capture_on_commit_callbacks(execute=True):
        order_services.order_cancel(user=customer, order_id=placement.order.pk)
    stocks = {v["sku"]: v["stock"] for v in get(client, path).json()["variants"]}
    assert stocks[variant.sku] == 5


def test_a_review_shows_its_rating_on_the_next_read(
    shop_rows, customer_client, django_capture_on_commit_callbacks
):
    client = APIClient()
    before = _cached(client, shop_rows)
    assert before["detail"]["review_count"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(
            f"/api/products/{shop_rows['pan'].pk}/reviews/",
            {"rating": 2, "title": "meh", "body": "it rusts"},
            format="json",
        )
    assert response.status_code == 201, response.content
    after = _cached(client, shop_rows)
    assert (after["detail"]["rating_avg"], after["detail"]["review_count"]) == ("3.50", 2)
    listed = {p["id"]: p for p in after["list filtered"]["results"]}
    assert listed[shop_rows["pan"].pk]["rating_avg"] == "3.50"


@pytest.mark.parametrize("denormalized", [False, True], ids=["computed", "stored"])
def test_a_user_deleted_with_their_reviews_shows_on_the_next_read(
    shop_rows, denormalized, django_capture_on_commit_callbacks
):
    """The user's reviews go by Django's cascade, which no service sees: the rating (computed,
    or stored by the trigger) changes, and the product's pages with it."""
    client = APIClient()
    critic = UserFactory()
    review_by_service(shop_rows["pan"], 2, author=critic)
    with toggles.override(denormalized_fields=denormalized):
        before = _cached(client, shop_rows)
        assert (before["detail"]["rating_avg"], before["detail"]["review_count"]) == ("3.50", 2)
        with django_capture_on_commit_callbacks(execute=True):
            critic.delete()
        after = _cached(client, shop_rows)
    assert (after["detail"]["rating_avg"], after["detail"]["review_count"]) == ("5.00", 1)
    listed = {p["id"]: p for p in after["list filtered"]["results"]}
    assert listed[shop_rows["pan"].pk]["rating_avg"] == "5.00"


def test_a_product_deleted_by_the_orm_is_gone_on_the_next_read(
    shop_rows, django_capture_on_commit_callbacks
):
    client = APIClient()
    before = _cached(client, shop_rows)
    assert shop_rows["pan"].pk in {p["id"] for p in before["list filtered"]["results"]}
    with django_capture_on_commit_callbacks(execute=True):
        shop_rows["pan"].delete()
    gone = client.get(_paths(shop_rows)["detail"], HTTP_X_PERF_TOGGLES="cache_aside=on")
    assert gone.status_code == 404
    listed = get(client, _paths(shop_rows)["list filtered"]).json()["results"]
    assert shop_rows["pan"].pk not in {p["id"] for p in listed}


@pytest.mark.parametrize("reviews", [1, 4])
def test_a_user_deleted_with_reviews_invalidates_once_whatever_their_number(
    reviews, django_capture_on_commit_callbacks
):
    """One query for the products the user reviewed, then one invalidation of them all: the
    same three calls on commit (the pages' delete, the lists' generation, the validators)
    for one review as for four, and one delete of all the pages."""
    critic = UserFactory()
    products = [ProductFactory() for _ in range(reviews)]
    for product in products:
        review_by_service(product, 4, author=critic)
    with django_capture_on_commit_callbacks() as callbacks:
        critic.delete()
    assert len(callbacks) == 3
    with cache.counting() as counted:
        for callback in callbacks:
            callback()
    assert counted.deletes == reviews  # one DEL of every page, each product's once


def test_moving_a_product_shows_on_the_next_read(
    shop_rows, staff, django_capture_on_commit_callbacks
):
    client = APIClient()
    before = _cached(client, shop_rows)
    assert shop_rows["hose"].pk not in [p["id"] for p in before["list filtered"]["results"]]
    hose = f"/api/products/{shop_rows['hose'].pk}/"
    assert get(client, hose).json()["category"]["name"] == "Garden"  # cached
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.patch(
            f"/api/staff/products/{shop_rows['hose'].pk}/", {"category": shop_rows["knives"].pk}
        )
    assert response.status_code == 200, response.content
    after = _cached(client, shop_rows)
    assert shop_rows["hose"].pk in [p["id"] for p in after["list filtered"]["results"]]
    assert get(client, hose).json()["category"]["name"] == "Knives"


def test_moving_a_category_shows_on_the_next_read(
    shop_rows, staff, django_capture_on_commit_callbacks
):
    client = APIClient()
    garden_page = f"/api/categories/{shop_rows['garden'].pk}/products/"
    get(client, garden_page)
    _cached(client, shop_rows)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.patch(
            f"/api/staff/categories/{shop_rows['kitchen'].pk}/", {"parent": shop_rows["garden"].pk}
        )
    assert response.status_code == 200, response.content
    tree = get(client, "/api/categories/").json()["categories"]
    assert [(c["name"], [k["name"] for k in c["children"]]) for c in tree] == [
        ("Home", []),
        ("Garden", ["Kitchen"]),
    ]
    assert get(client, garden_page).json()["count"] == 4  # hose, pan and the two knives
    assert get(client, garden_page).content == get(client, garden_page, on=False).content


def test_a_bulk_import_shows_on_the_next_read(shop_rows, django_capture_on_commit_callbacks):
    client = APIClient()
    page = f"/api/categories/{shop_rows['knives'].pk}/products/"
    newest = "/api/products/?page_size=3"
    assert get(client, page).json()["count"] == 2  # cached, as the next one
    assert get(client, newest).json()["results"][0]["name"] != "bread knife"
    row = catalog_services.ProductRow(
        name="bread knife",
        slug="bread-knife",
        description="Serrated.",
        category_id=shop_rows["knives"].pk,
        brand_id=shop_rows["chef knife"].brand_id,
        variants=[
            catalog_services.VariantRow(sku="BK-1", name="20 cm", price=Decimal("31"), stock=4)
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.product_import(rows=[row])
    assert get(client, page).json()["count"] == 3
    assert get(client, newest).json()["results"][0]["name"] == "bread knife"


def test_the_entry_goes_on_commit_not_before(shop_rows, django_capture_on_commit_callbacks):
    """Inside the writing transaction the old entry still answers: deleting it before the
    commit would let a reader cache the old row again in between."""
    client = APIClient()
    path = _paths(shop_rows)["detail"]
    get(client, path)
    variant = _pan_variant(shop_rows)
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        catalog_services.variant_update(variant_id=variant.pk, price=Decimal("1.00"))
        assert "1.00" not in [v["price"] for v in get(client, path).json()["variants"]]
    for hook in hooks:
        hook()
    assert "1.00" in [v["price"] for v in get(client, path).json()["variants"]]


@pytest.mark.django_db(transaction=True)
def test_a_read_racing_a_write_caches_the_old_row_and_the_commit_drops_it():
    """The race deleting on commit leaves: a reader misses while the write is in flight, reads
    the old row (the new one is not committed) and stores it. The write's delete comes after
    its commit, so it removes that entry; a delete made inside the transaction would have come
    before it, and the old price would stay for a whole TTL."""
    variant = VariantFactory(price=Decimal("10.00"))
    path = f"/api/products/{variant.product_id}/"
    written, read = threading.Event(), threading.Event()

    def write() -> None:
        try:
            with transaction.atomic():
                catalog_services.variant_update(variant_id=variant.pk, price=Decimal("12.00"))
                written.set()
                read.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert written.wait(10)
        during = get(APIClient(), path)  # on this thread's own connection
    finally:
        read.set()
        writer.join(10)
    assert during.json()["variants"][0]["price"] == "10.00"
    assert ops(during)["sets"] == 1  # the old row, cached while the write was in flight
    after = get(APIClient(), path)
    assert after.json()["variants"][0]["price"] == "12.00"
    assert ops(after)["misses"] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("stampede_protection", "write_through"),
    [(False, False), (True, False), (False, True)],
    ids=["plain fill", "stampede_protection's fill", "write_through's writer"],
)
def test_a_read_before_a_write_commits_is_not_stored_after_it(
    stampede_protection, write_through, monkeypatch
):
    """The window deleting on commit left: a reader misses and reads the old row, the write
    commits and drops the entry, and only then does the reader store what it read. The drop
    leaves a marker and the store is a compare-and-set, so the old row is not stored, and the
    next read shows the new price. Real transactions on two connections."""
    variant = VariantFactory(price=Decimal("10.00"))
    path = f"/api/products/{variant.product_id}/"
    key = payloads.product_detail_key(variant.product_id)
    computed, committed = threading.Event(), threading.Event()
    real_store = cache.set_if_unchanged

    def store_after_the_commit(cache_key, value, **kwargs):
        if cache_key == key and not computed.is_set():  # the reader, having read the old row
            computed.set()
            assert committed.wait(30)
        return real_store(cache_key, value, **kwargs)

    monkeypatch.setattr(cache, "set_if_unchanged", store_after_the_commit)
    flags = f"cache_aside=on,stampede_protection={'on' if stampede_protection else 'off'}"

    def work(i):
        if i == 0:
            response = APIClient().get(path, HTTP_X_PERF_TOGGLES=flags)
            return response.json()["variants"][0]["price"]
        assert computed.wait(30)
        with toggles.override(write_through=write_through):
            catalog_services.variant_update(variant_id=variant.pk, price=Decimal("12.00"))
        committed.set()
        return None

    assert run_concurrently(work, count=2) == ["10.00", None]  # its own answer: what it read
    after = APIClient().get(path, HTTP_X_PERF_TOGGLES=flags)
    assert after.json()["variants"][0]["price"] == "12.00"


@pytest.mark.django_db(transaction=True)
def test_two_moves_that_together_make_a_cycle_cannot_both_succeed():
    """A under B and B under A at once: each alone is fine. The second waits for the first's
    locks, then sees its move, and is refused."""
    a, b = CategoryFactory(), CategoryFactory()
    moves = [(a.pk, b.pk), (b.pk, a.pk)]

    def move(i: int):
        category_id, parent_id = moves[i]
        try:
            catalog_services.category_move(category_id=category_id, parent_id=parent_id)
        except InvalidInput as exc:
            return exc
        return "moved"

    outcomes = run_concurrently(move, count=2)
    assert sorted(map(str, outcomes)).count("moved") == 1
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.parent_id, b.parent_id) in {(b.pk, None), (None, a.pk)}


def test_writes_invalidate_even_with_the_toggle_off(shop_rows, django_capture_on_commit_callbacks):
    """A change made while the toggle is off must not leave an entry that turning it on serves."""
    client = APIClient()
    path = _paths(shop_rows)["detail"]
    get(client, path)
    with toggles.override(cache_aside=False), django_capture_on_commit_callbacks(execute=True):
        catalog_services.variant_update(variant_id=_pan_variant(shop_rows).pk, stock=1)
    assert get(client, path).content == get(client, path, on=False).content


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("variants/{variant}/", {"price": "0"}, "price"),
        ("variants/{variant}/", {"price": "abc"}, "price"),
        ("variants/{variant}/", {"stock": -1}, "stock"),
        ("variants/{variant}/", {}, "non_field_errors"),
        ("products/{pan}/", {"category": 999999}, "category"),
        ("products/{pan}/", {}, "category"),
        ("categories/{home}/", {"parent": "{knives}"}, "parent"),
        ("categories/{home}/", {"parent": "{home}"}, "parent"),
        ("categories/{home}/", {"parent": 999999}, "parent"),
    ],
)
def test_staff_writes_refuse_bad_input_with_field_messages(shop_rows, staff, path, body, field):
    ids = {
        "variant": _pan_variant(shop_rows).pk,
        "pan": shop_rows["pan"].pk,
        "home": shop_rows["home"].pk,
        "knives": shop_rows["knives"].pk,
    }
    body = {
        k: (int(v.format(**ids)) if v.startswith("{") else v) if isinstance(v, str) else v
        for k, v in body.items()
    }
    response = staff.patch(f"/api/staff/{path.format(**ids)}", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()


def test_staff_writes_need_staff_and_an_existing_row(shop_rows, customer_client, staff):
    assert customer_client.patch("/api/staff/variants/1/", {"stock": 1}).status_code == 403
    assert staff.patch("/api/staff/variants/999999/", {"stock": 1}).status_code == 404
    assert staff.patch("/api/staff/products/999999/", {"category": 1}).status_code == 404
    assert (
        staff.patch("/api/staff/categories/999999/", {"parent": None}, format="json").status_code
        == 404
    )


# --- versioned keys ------------------------------------------------------------------------------


def test_an_entry_of_an_older_payload_version_is_never_read(shop_rows, monkeypatch):
    client = APIClient()
    path = _paths(shop_rows)["detail"]
    get(client, path)
    # What an older deploy stored, under the key it used: never read by this code.
    old_key = payloads.product_detail_key(shop_rows["pan"].pk)
    cache.set(old_key, {"shape": "old"}, timeout=60)
    monkeypatch.setattr(payloads, "PRODUCT_DETAIL_VERSION", payloads.PRODUCT_DETAIL_VERSION + 1)
    assert payloads.product_detail_key(shop_rows["pan"].pk) != old_key
    fresh = get(client, path)
    assert ops(fresh)["misses"] == 1 and fresh.json()["name"] == "pan"


def test_a_new_cache_schema_version_moves_every_key(shop_rows):
    client = APIClient()
    paths = _paths(shop_rows)
    for path in paths.values():
        get(client, path)
    with override_settings(CACHE_SCHEMA_VERSION=settings.CACHE_SCHEMA_VERSION + 1):
        for name, path in paths.items():
            assert queries(get(client, path)) > 0, name  # built again, not read


# --- the fill reads the primary ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_the_fill_after_a_write_reads_the_primary_not_a_lagging_replica(settings):
    """A replica that has not replayed the price change yet would put the old price back in
    the cache for a whole TTL: the fill reads the primary."""
    settings.READ_REPLICA_MAX_LAG_SECONDS = 60
    read_replica.health.reset()
    variant = VariantFactory(price=Decimal("10.00"))
    path = f"/api/products/{variant.product_id}/"
    replication.wait_for_replay()
    client = APIClient()
    both = "cache_aside=on,read_replica=on"
    assert client.get(path, HTTP_X_PERF_TOGGLES=both).json()["variants"][0]["price"] == "10.00"
    try:
        with replication.apply_delay(3):
            catalog_services.variant_update(variant_id=variant.pk, price=Decimal("12.00"))
            uncached = client.get(path, HTTP_X_PERF_TOGGLES="cache_aside=off,read_replica=on")
            refilled = client.get(path, HTTP_X_PERF_TOGGLES=both)
    finally:
        read_replica.health.reset()
    # Off, the read went to the lagging replica: the old price, for this one request.
    assert uncached.json()["variants"][0]["price"] == "10.00"
    assert parse_query_counts(uncached["X-DB-Queries"])["replica"] > 0
    # On, the miss was filled from the primary, so what is cached is the new price.
    assert refilled.json()["variants"][0]["price"] == "12.00"
    assert parse_query_counts(refilled["X-DB-Queries"])["replica"] == 0


# --- Redis down ----------------------------------------------------------------------------------


@pytest.fixture
def redis_down(tmp_path, monkeypatch):
    """The cache pointed at a real Redis of this test's own, which is then stopped."""
    broker = PrivateBroker(tmp_path)
    broker.start()
    caches = {"default": {**settings.CACHES["default"], "LOCATION": broker.url}}
    monkeypatch.setattr(cache, "_last_warning", 0.0)  # the warning is rate-limited per process
    try:
        with override_settings(CACHES=caches):
            assert cache.set(cache.key("probe", version=1), 1, timeout=5)  # it was up
            broker.stop()
            yield broker
    finally:
        broker.stop()


def test_redis_down_every_cached_read_comes_from_postgresql(shop_rows, redis_down, caplog):
    client = APIClient()
    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        for name, path in _paths(shop_rows).items():
            down = get(client, path)
            assert queries(down) > 0, name
            assert down.content == get(client, path, on=False).content, name
            assert ops(down)["errors"] >= 1, name
    assert "serving from PostgreSQL" in caplog.text


def test_redis_down_writes_still_succeed(
    shop_rows, redis_down, staff, customer_client, django_capture_on_commit_callbacks, caplog
):
    """The writes commit, and their deletes and the generation's bump, run on commit, fail
    softly: a logged warning, never a 500."""
    variant = _pan_variant(shop_rows)
    with (
        caplog.at_level(logging.WARNING, logger=cache.__name__),
        django_capture_on_commit_callbacks(execute=True) as hooks,
    ):
        price = staff.patch(f"/api/staff/variants/{variant.pk}/", {"price": "7.00"})
    assert price.status_code == 200, price.content
    assert len(hooks) >= 2  # the product page's delete and the lists' generation, which ran
    assert "cache delete failed" in caplog.text and "left to the TTLs" in caplog.text
    with django_capture_on_commit_callbacks(execute=True):
        review = customer_client.post(
            f"/api/products/{shop_rows['rug'].pk}/reviews/",
            {"rating": 4, "title": "ok", "body": "soft"},
            format="json",
        )
        order = customer_client.post(
            "/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json"
        )
    assert (review.status_code, order.status_code) == (201, 201), (review.content, order.content)
    variant.refresh_from_db()
    assert (variant.price, variant.stock) == (Decimal("7.00"), 4)


@pytest.fixture
def redis_full(tmp_path, monkeypatch):
    """The cache pointed at a real Redis of this test's own that is up but refuses every
    write: `maxmemory` 1 byte under `noeviction`, so each SET answers `OOM command not
    allowed` (a ResponseError, not a connection error). Reads and DELs still work."""
    with PrivateBroker(tmp_path) as broker:
        server = redis.Redis.from_url(broker.url)
        server.config_set("maxmemory-policy", "noeviction")
        server.config_set("maxmemory", 1)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            server.set("probe", 1)
        caches = {"default": {**settings.CACHES["default"], "LOCATION": broker.url}}
        monkeypatch.setattr(cache, "_last_warning", 0.0)  # the warning is rate-limited per process
        with override_settings(CACHES=caches):
            yield server
        server.close()


def test_redis_refusing_writes_serves_every_cached_read_from_postgresql(
    shop_rows, redis_full, caplog
):
    """A Redis that answers with an error is the outage path too: the read misses, its fill is
    refused and logged, the page comes from PostgreSQL, and the next read does the same."""
    client = APIClient()
    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        for name, path in _paths(shop_rows).items():
            for _ in range(2):  # nothing was stored: the second read misses as well
                full = get(client, path)
                assert queries(full) > 0, name
                assert full.content == get(client, path, on=False).content, name
                assert ops(full)["hits"] == 0 and ops(full)["errors"] >= 1, name
    assert "failed: Redis refused it (OutOfMemoryError" in caplog.text
    assert "set failed: Redis refused it (OutOfMemoryError" in caplog.text
    assert "one it does not hold is read from PostgreSQL" in caplog.text
    assert redis_full.dbsize() == 0


@pytest.mark.parametrize("write_through", [False, True])
def test_a_full_redis_still_drops_a_changed_page(
    shop_rows, redis_full, write_through, django_capture_on_commit_callbacks
):
    """A full Redis refuses the marker's SET and lets a DEL through: the drop falls back to
    it, so a page a write changed is not served from there for its TTL."""
    client = APIClient()
    path = _paths(shop_rows)["detail"]
    redis_full.config_set("maxmemory", 0)
    get(client, path)  # cached while there was room
    redis_full.config_set("maxmemory", 1)
    assert ops(get(client, path))["hits"] == 1
    variant = _pan_variant(shop_rows)
    with (
        toggles.override(write_through=write_through),
        django_capture_on_commit_callbacks(execute=True),
    ):
        catalog_services.variant_update(variant_id=variant.pk, price=Decimal("1.00"))
    after = get(client, path)
    assert ops(after)["hits"] == 0
    assert "1.00" in [v["price"] for v in after.json()["variants"]]


def test_redis_refusing_writes_lets_a_login_and_an_order_through(
    shop_rows, redis_full, customer_client, django_capture_on_commit_callbacks
):
    user = UserFactory(password="Correct-Horse-7731")
    login = APIClient().post(
        "/api/auth/token/",
        {"username": user.username, "password": "Correct-Horse-7731"},
        format="json",
    )
    assert login.status_code == 200, login.content
    variant = _pan_variant(shop_rows)
    with django_capture_on_commit_callbacks(execute=True):
        order = customer_client.post(
            "/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json"
        )
    assert order.status_code == 201, order.content
