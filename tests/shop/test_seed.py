"""`shop.seed` and `manage.py seed`: counts, determinism, exact denormalized fields, logins.

Each test seeds the small size inside its own transaction (the seed's transaction becomes a
savepoint), so everything is rolled back afterwards.
"""

import json
import re
from datetime import date, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from catalog import payloads
from catalog.models import Brand, Category
from shop import cache
from shop.management.commands import seed as seed_command
from shop.private_broker import PrivateBroker
from shop.seed import SIZES, SeedReport, redis_state, seed
from shop.seed import db as seed_db
from shop.seed.generate import COLUMNS, World
from shop.techniques import local_cache, write_behind

ANCHOR = date(2025, 6, 1)
TABLES = list(COLUMNS)


def quiet(line: str) -> None:
    pass


def scalar(sql: str, params=None):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def fingerprints() -> dict[str, str]:
    return {
        table: scalar(f"SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM {table} t")
        for table in TABLES
    }


@pytest.fixture
def seeded(db) -> SeedReport:
    return seed(size="small", seed=42, anchor=ANCHOR, out=quiet)


def test_small_row_counts_are_in_range(seeded):
    spec = SIZES["small"]
    counts = {table: scalar(f"SELECT count(*) FROM {table}") for table in TABLES}
    assert counts == seeded.counts
    assert counts["auth_user"] == spec.users + 2
    assert counts["orders_address"] == spec.users
    assert counts["catalog_category"] == 48
    assert scalar("SELECT count(*) FROM catalog_category WHERE parent_id IS NULL") == 8
    assert counts["catalog_brand"] == spec.brands
    assert counts["catalog_product"] == spec.products
    assert 2.5 * spec.products <= counts["catalog_variant"] <= 3.5 * spec.products
    assert 0.8 * spec.reviews <= counts["catalog_review"] <= 1.2 * spec.reviews
    assert counts["orders_order"] == spec.orders
    assert 2.7 * spec.orders <= counts["orders_orderitem"] <= 3.3 * spec.orders
    assert 0.9 * spec.orders <= counts["orders_payment"] <= spec.orders
    assert 2.5 * spec.orders <= counts["orders_orderevent"] <= 3 * spec.orders
    assert seeded.total_rows == sum(counts.values())
    assert seeded.all_targets_met


def test_same_seed_same_rows_whatever_the_batching(db, monkeypatch):
    default = seed(size="small", seed=7, anchor=ANCHOR, out=quiet)
    first = fingerprints()
    assert all(first.values())
    # Tiny COPY batches, no FREEZE, indexes kept: the load strategy must not change any row.
    monkeypatch.setattr(seed_db, "FLUSH_BYTES", 16 * 1024)
    report = seed(
        size="small", seed=7, anchor=ANCHOR, out=quiet, freeze=False, rebuild_indexes=False
    )
    assert report.copy_statements > default.copy_statements
    assert fingerprints() == first
    monkeypatch.undo()

    seed(size="small", seed=8, anchor=ANCHOR, out=quiet)
    other = fingerprints()
    changed = {table for table in TABLES if other[table] != first[table]}
    # Taxonomy is fixed; everything generated from the seed differs.
    assert changed == set(TABLES) - {"catalog_category"}
    seed(size="small", seed=7, anchor=ANCHOR + timedelta(days=1), out=quiet)
    assert fingerprints()["orders_order"] != first["orders_order"]


def test_denormalized_fields_are_exact(seeded):
    for table in (
        "catalog_review",
        "catalog_product",
        "orders_order",
        "orders_orderitem",
        "orders_payment",
    ):
        assert scalar(f"SELECT count(*) FROM {table}") > 0, table  # not vacuously true
    # Review.author_username is the author's username.
    assert (
        scalar("""
        SELECT count(*) FROM catalog_review r JOIN auth_user u ON u.id = r.author_id
        WHERE r.author_username IS DISTINCT FROM u.username""")
        == 0
    )
    # Product.rating_avg = avg(rating) rounded half up to 2 places (0 without reviews), and
    # Product.review_count = count.
    assert (
        scalar("""
        SELECT count(*) FROM catalog_product p
        LEFT JOIN (SELECT product_id, count(*) AS n, round(avg(rating), 2) AS a
                   FROM catalog_review GROUP BY product_id) s ON s.product_id = p.id
        WHERE p.review_count <> coalesce(s.n, 0) OR p.rating_avg <> coalesce(s.a, 0)""")
        == 0
    )
    assert scalar("SELECT count(*) FROM catalog_product WHERE review_count = 0") > 0
    assert scalar("SELECT count(DISTINCT rating_avg) FROM catalog_product") > 50
    # Order.item_count = units, Order.total_amount = sum(unit_price * quantity).
    assert (
        scalar("""
        SELECT count(*) FROM orders_order o
        LEFT JOIN (SELECT order_id, sum(quantity) AS units, sum(unit_price * quantity) AS total
                   FROM orders_orderitem GROUP BY order_id) i ON i.order_id = o.id
        WHERE i.order_id IS NULL OR o.item_count <> i.units OR o.total_amount <> i.total""")
        == 0
    )
    assert scalar("SELECT count(*) FROM orders_order WHERE item_count > 3") > 0  # units, not lines
    # OrderItem copies the variant's product name, sku and price.
    assert (
        scalar("""
        SELECT count(*) FROM orders_orderitem oi
        JOIN catalog_variant v ON v.id = oi.variant_id JOIN catalog_product p ON p.id = v.product_id
        WHERE oi.product_name <> p.name OR oi.sku <> v.sku OR oi.unit_price <> v.price""")
        == 0
    )
    # One payment per paid, shipped or cancelled order, for its total; refunded iff cancelled.
    assert (
        scalar("""
        SELECT count(*) FROM orders_order o
        LEFT JOIN (SELECT order_id, count(*) AS n, min(amount) AS amount, min(status) AS status
                   FROM orders_payment GROUP BY order_id) p ON p.order_id = o.id
        WHERE CASE WHEN o.status = 'placed' THEN p.n IS NOT NULL
                   ELSE p.n IS DISTINCT FROM 1 OR p.amount <> o.total_amount
                        OR (p.status = 'refunded') <> (o.status = 'cancelled') END""")
        == 0
    )
    assert scalar("SELECT count(DISTINCT idempotency_key) = count(*) FROM orders_payment")


def test_orders_events_and_timestamps_are_plausible(seeded):
    anchor = datetime(ANCHOR.year, ANCHOR.month, ANCHOR.day).isoformat() + "+00"
    # Statuses: mostly shipped/paid, some cancelled, a few placed (not yet paid).
    with connection.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM orders_order GROUP BY status")
        share = {status: n / SIZES["small"].orders for status, n in cur.fetchall()}
    assert share["shipped"] + share["paid"] > 0.75
    assert 0.03 < share["cancelled"] < 0.15
    assert 0 < share["placed"] < 0.1
    # Every order starts with "placed"; events match the status, in increasing time order.
    assert (
        scalar("""
        SELECT count(*) FROM (
            SELECT o.status, string_agg(e.kind, ',' ORDER BY e.id) AS kinds,
                   bool_and(e.created_at > e.prev OR e.prev IS NULL) AS increasing
            FROM orders_order o JOIN (
                SELECT *, lag(created_at) OVER (PARTITION BY order_id ORDER BY id) AS prev
                FROM orders_orderevent) e ON e.order_id = o.id
            GROUP BY o.id, o.status) x
        WHERE NOT increasing OR kinds <> CASE status
            WHEN 'placed' THEN 'placed' WHEN 'paid' THEN 'placed,paid'
            WHEN 'shipped' THEN 'placed,paid,shipped' ELSE 'placed,paid,cancelled' END""")
        == 0
    )
    # Nothing at or after the anchor; orders over the 730 days before it, the last 30 included.
    for table in TABLES:
        for column in ("created_at", "updated_at", "date_joined", "paid_at", "cancelled_at"):
            if column in COLUMNS[table]:
                assert (
                    scalar(f"SELECT count(*) FROM {table} WHERE {column} >= %s", [anchor]) == 0
                ), (table, column)
    assert scalar("SELECT min(created_at) FROM orders_order") >= (
        datetime.fromisoformat(anchor) - timedelta(days=730)
    )
    assert (
        scalar(
            "SELECT count(*) FROM orders_order WHERE created_at >= %s::timestamptz - "
            "interval '30 days'",
            [anchor],
        )
        > 0.03 * SIZES["small"].orders
    )
    assert scalar("SELECT count(*) FROM orders_order WHERE updated_at < created_at") == 0
    # Ratings lean towards 4-5; descriptions are long; review bodies 100-600 characters.
    assert scalar("SELECT avg(rating) FROM catalog_review") > 3.5
    assert scalar("SELECT min(length(description)) FROM catalog_product") >= 2000
    assert scalar("SELECT max(length(description)) FROM catalog_product") <= 4096
    assert scalar(
        "SELECT min(length(body)) >= 100 AND max(length(body)) <= 600 FROM catalog_review"
    )
    assert scalar("SELECT count(DISTINCT slug) = count(*) FROM catalog_product")
    assert scalar("SELECT min(price) >= 2 AND max(price) <= 500 FROM catalog_variant")
    assert scalar("SELECT min(stock) >= 50 FROM catalog_variant")


def test_seeded_accounts_log_in_with_password(seeded):
    user1 = authenticate(username="user1", password="password")
    assert user1 is not None and user1.email == "user1@example.com"
    assert not user1.is_staff
    staff = authenticate(username="staff", password="password")
    assert staff is not None and staff.is_staff and not staff.is_superuser
    admin = authenticate(username="admin", password="password")
    assert admin is not None and admin.is_superuser
    assert authenticate(username="user1", password="wrong") is None
    assert scalar("SELECT count(*) FROM orders_address WHERE user_id = %s", [user1.id]) == 1


def test_sequences_continue_after_the_seeded_ids(seeded):
    for table in TABLES:
        last = scalar(f"SELECT pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id'))")
        assert last == scalar(f"SELECT max(id) FROM {table}"), table
    user = get_user_model().objects.create_user("newcomer", password="x")
    assert user.id == seeded.counts["auth_user"] + 1
    assert (
        Brand.objects.create(name="New", slug="new-brand").id == seeded.counts["catalog_brand"] + 1
    )
    assert Category.objects.create(name="New", slug="new-cat").id == 49


def test_a_failed_seed_leaves_the_previous_data(
    seeded, monkeypatch, django_capture_on_commit_callbacks
):
    before = fingerprints()
    page = payloads.product_detail_key(42)
    cache.set(page, "product 42's page", timeout=60)

    def broken(self):
        yield from []
        raise RuntimeError("generator failed")

    monkeypatch.setattr(World, "order_blocks", broken)
    with (
        pytest.raises(RuntimeError, match="generator failed"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        seed(size="small", seed=9, anchor=ANCHOR, out=quiet)
    assert fingerprints() == before
    assert cache.get(page) == "product 42's page"  # the rows stay, and so do their pages
    # The indexes and constraints dropped for the load are back too.
    assert scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'orders_orderitem'") >= 3


def test_a_failed_copy_leaves_the_previous_data(seeded, monkeypatch):
    before = fingerprints()
    # A bad row: the COPY fails on the writer thread, and the error reaches the caller.
    monkeypatch.setattr(World, "staff_block", lambda self: {"auth_user": ("1\tbad\n", 1)})
    with pytest.raises(Exception, match="missing data for column"):
        seed(size="small", seed=9, anchor=ANCHOR, out=quiet)
    assert fingerprints() == before


def test_command_warns_reports_and_writes_json(db, tmp_path, django_capture_on_commit_callbacks):
    out = StringIO()
    path = tmp_path / "report.json"
    page = payloads.product_detail_key(42)
    cache.set(page, "the old product 42's page", timeout=60)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed", size="small", seed=3, anchor="2025-01-15", json=str(path), stdout=out)
    assert cache.get(page) is cache.MISS  # the new product 42 is not the old one
    text = out.getvalue()
    assert re.search(r"^Dropped [0-9,]+ Redis keys of this database", text, re.MULTILINE)
    assert "This replaces all shop data (users, catalog, orders)" in text
    assert "Current rows:" in text
    assert "anchor=2025-01-15" in text
    assert "target: peak memory < 1,024 MB  →  met" in text
    assert "admin" in text and "staff" in text and "user1 .. user1000" in text
    data = json.loads(path.read_text())
    assert data["size"] == "small" and data["anchor"] == "2025-01-15"
    assert data["counts"]["orders_order"] == SIZES["small"].orders

    out = StringIO()
    call_command("seed", "--size", "small", "--quiet", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Seeded size=small seed=42 anchor=")
    assert lines[-1].startswith("target: peak memory")


def test_command_quiet_still_prints_warnings(db, monkeypatch):
    """--quiet drops the progress lines, not a warning (a Redis that did not answer when the
    seed dropped its keys): that goes to stderr."""

    def run(*, out, **_options):
        out("users 1,000 / 1,000")
        out(f"{redis_state.WARNING}the cache's Redis did not answer")
        return SeedReport(size="small", seed=42, anchor=ANCHOR, database="perfshop")

    monkeypatch.setattr(seed_command, "run_seed", run)
    out, err = StringIO(), StringIO()
    call_command("seed", "--size", "small", "--quiet", stdout=out, stderr=err)
    assert err.getvalue() == "warning: the cache's Redis did not answer\n"
    assert "users" not in out.getvalue()


def test_command_rejects_bad_arguments(db):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("seed", size="huge")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("seed", size="small", anchor="2025-13-01")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("seed", size="small", anchor="yesterday")


# --- this database's Redis state, dropped after the seed commits ----------------------------


def _raw_cache():
    return cache.backend()._cache.get_client(write=True)


def test_the_seed_drops_this_databases_keys_and_no_others(settings):
    write_behind.discard()  # the counts earlier tests of this run left
    backend = cache.backend()
    prefix = backend.key_prefix
    views = f"{settings.WRITE_BEHIND_KEY_PREFIX}:{{product_views}}:live"
    for pk in (1, 42):
        cache.set(payloads.product_detail_key(pk), "old", timeout=60)
    cache.set(payloads.category_tree_key(), "old tree", timeout=60)
    write_behind.client().hset(views, "42", 3)
    kept = {  # another database whose name starts with this one's; state that is not rows
        _raw_cache(): [
            f"{prefix}_fig:{backend.version}:{payloads.product_detail_key(42)}",
            f"{settings.CIRCUIT_BREAKER_KEY_PREFIX}:{{payment}}:state",
            f"{prefix}:ratelimit:order:client",
        ],
        write_behind.client(): [f"{prefix}_fig:views:{{product_views}}:live"],
    }
    for client, keys in kept.items():
        for key in keys:
            client.set(key, "kept")
    local_cache.l1(local_cache.TOKENS).set("a token", "old user")
    lines = []
    try:
        assert redis_state.drop(out=lines.append) == 4
        for client, keys in kept.items():
            assert client.exists(*keys) == len(keys)
    finally:
        for client, keys in kept.items():
            client.delete(*keys)
    assert lines == ["Dropped 4 Redis keys of this database (cached pages, view counts)"]
    assert cache.get(payloads.product_detail_key(42)) is cache.MISS
    assert cache.get(payloads.category_tree_key()) is cache.MISS
    assert not write_behind.client().exists(views)
    assert local_cache.l1(local_cache.TOKENS).get("a token") is cache.MISS


def test_the_seed_drops_keys_in_batches(monkeypatch):
    monkeypatch.setattr(redis_state, "UNLINK_BATCH", 3)
    write_behind.discard()  # the counts earlier tests of this run left
    for pk in range(7):
        cache.set(payloads.product_detail_key(pk), "old", timeout=60)
    assert redis_state.drop(out=quiet) == 7
    backend = cache.backend()
    assert _raw_cache().keys(f"{backend.key_prefix}:{backend.version}:*") == []


def test_with_redis_down_the_seed_warns_and_finishes(tmp_path, settings):
    with PrivateBroker(tmp_path / "redis") as redis_server:
        redis_server.stop()
        caches = {"default": {**settings.CACHES["default"], "LOCATION": redis_server.url}}
        with override_settings(CACHES=caches, WRITE_BEHIND_REDIS_URL=redis_server.url):
            local_cache.l1(local_cache.TOKENS).set("a token", "old user")
            lines = []
            assert redis_state.drop(out=lines.append) == 0
    assert [line.split(" (")[0] for line in lines] == [
        "warning: the cache's Redis did not answer",
        "warning: write_behind's Redis did not answer",
        "Dropped 0 Redis keys of this database",
    ]
    assert local_cache.l1(local_cache.TOKENS).get("a token") is cache.MISS  # L1 went anyway


def test_a_redis_pattern_matches_a_database_name_literally():
    client = _raw_cache()
    prefix = cache.backend().key_prefix
    keys = [f"{prefix}-[x]*:1:k", f"{prefix}-x*:1:k"]
    try:
        for key in keys:
            client.set(key, "v")
        pattern = f"{redis_state.glob_escape(keys[0].removesuffix(':1:k'))}:1:*"
        assert client.keys(pattern) == [keys[0].encode()]
    finally:
        client.delete(*keys)
