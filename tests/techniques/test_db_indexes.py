"""db_indexes: with the indexes each served query's plan uses its index; without them it does
not, and every answer stays the same. The toggle alone changes nothing: only the database does.

Each test runs in a transaction that is rolled back. Plain CREATE and DROP INDEX are
transactional in PostgreSQL, so dropping the indexes here never touches another test, and
drop_all() uses the plain form inside a transaction (CONCURRENTLY cannot run in one).
"""

import ast
import importlib
import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Product, Review
from orders.models import Order, OrderItem
from shop import toggles
from shop.bench import served_queries
from shop.bench.scenarios import db_indexes as scenarios
from shop.techniques import db_indexes
from shop.techniques.db_indexes import INDEXES, NamedIndex
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db

ALL_PRESENT = {index.name: True for index in INDEXES}
NONE_PRESENT = {index.name: False for index in INDEXES}
MIGRATIONS = [
    ("catalog", "catalog.migrations.0003_db_indexes"),
    ("orders", "orders.migrations.0004_db_indexes"),
    ("orders", "orders.migrations.0006_db_indexes_status_created"),
]


@pytest.fixture
def shop_data():
    """Enough rows that PostgreSQL's planner picks the plans it picks on the seeded data: 800
    products (1 in 40 a kettle, 1 in 25 inactive), 1,000 orders over two years (a tenth of them
    the busiest customer's, 1 in 20 placed), 150 reviews (60 on one product). With half as many, a sort of a
    product's 40 reviews already costs less than the index, and the review list goes without.
    Built in bulk: the plans need volume, not orders placed one by one through the service."""
    now = timezone.now()
    category, brand = CategoryFactory(), BrandFactory()
    products = Product.objects.bulk_create(
        ProductFactory.build(
            name=f"Steel Kettle {n}" if n % 40 == 0 else f"Product {n}",
            category=category,
            brand=brand,
            is_active=n % 25 != 0,
            created_at=now - timedelta(hours=n),
        )
        for n in range(800)
    )
    variant = VariantFactory(product=products[1], price=Decimal("12.50"))
    customers = UserFactory.create_batch(60)
    busiest, staff = customers[0], UserFactory(is_staff=True)
    # Pending is rare, as on the seeded data (1 in 20 here, 4% at medium): a filter on it is
    # what an index led by status serves, where the date index would read past the others.
    others = [Order.Status.PAID, Order.Status.SHIPPED, Order.Status.CANCELLED]
    orders = Order.objects.bulk_create(
        Order(
            user=busiest if n % 10 == 0 else customers[n % 59 + 1],
            status=Order.Status.PLACED if n % 20 == 0 else others[n % 3],
            created_at=now - timedelta(hours=n * 17.4),  # 1,000 orders over 725 days
            item_count=n % 3 + 1,
            total_amount=Decimal("12.50") * (n % 3 + 1),
        )
        for n in range(1000)
    )
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            variant=variant,
            product_name=variant.product.name,
            sku=variant.sku,
            unit_price=variant.price,
            quantity=order.item_count,
        )
        for order in orders
    )
    Review.objects.bulk_create(
        Review(
            product=products[1] if n < 60 else products[n % 45 + 2],
            author=customers[n % 60],
            author_username=customers[n % 60].username,
            rating=n % 5 + 1,
            title="Fine",
            body="Does the job.",
            created_at=now - timedelta(hours=n),
        )
        for n in range(150)
    )
    with connection.cursor() as cursor:  # statistics, as autovacuum would gather them
        # auth_user too: the staff list JOINs it, and with another test's statistics (a table
        # of one row) the planner would drive the join from it and skip the order indexes.
        cursor.execute(
            "ANALYZE catalog_product, catalog_review, orders_order, orders_orderitem, auth_user"
        )
    return {"busiest": busiest, "staff": staff, "reviewed": products[1]}


def _frozen_indexes() -> dict[str, tuple[str, str]]:
    """`{index name: (app, the CREATE INDEX statement)}`, read from the migrations' RunSQL."""
    frozen = {}
    for app, module in MIGRATIONS:
        for operation in importlib.import_module(module).Migration.operations:
            sql = getattr(operation, "sql", "")
            if sql.startswith("CREATE INDEX"):
                name = sql.removeprefix("CREATE INDEX IF NOT EXISTS ").split()[0]
                frozen[name] = (app, sql)
    return frozen


def _definitions() -> dict[str, str]:
    """`{index name: indexdef}` of the technique's indexes, as PostgreSQL reports them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)",
            [list(ALL_PRESENT)],
        )
        return dict(cursor.fetchall())


def test_migrations_create_every_index_in_the_module():
    frozen = _frozen_indexes()
    for name, (app, _sql) in frozen.items():
        assert db_indexes.BY_NAME[name].table.startswith(f"{app}_"), name
    assert sorted(frozen) == sorted(db_indexes.BY_NAME)
    assert db_indexes.present() == ALL_PRESENT  # the test database was migrated


def test_the_migrations_frozen_sql_builds_what_the_module_builds():
    """The migrations hold their own copy of the SQL (a migration never imports live code):
    `db_indexes off` then `on` must rebuild exactly the indexes the migrations made."""
    migrated = _definitions()  # the test database was built by the migrations
    assert sorted(migrated) == sorted(ALL_PRESENT)
    db_indexes.drop_all()
    assert _definitions() == {}
    db_indexes.create_all()
    assert _definitions() == migrated


def test_migrations_and_techniques_never_import_up_the_layers():
    """A migration imports no live project code (only Django): it must build the same schema
    whatever the code says later. A technique imports no domain selector or service: the
    domain calls the technique, never the other way round."""
    root = Path(__file__).resolve().parents[2]

    def imported(path: Path) -> set[str]:
        """Every dotted name the module imports: `from a import b` gives `a.b`."""
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                found |= {f"{module}.{alias.name}" for alias in node.names}
        return found

    migrations = sorted(root.glob("*/migrations/0*.py"))
    assert len(migrations) > 3
    for path in migrations:
        project = {name for name in imported(path) if name.split(".")[0] != "django"}
        assert not project, (path.relative_to(root), project)
    techniques = sorted((root / "shop" / "techniques").glob("*.py"))
    assert len(techniques) > 5
    for path in techniques:
        domain = {
            name for name in imported(path) if {"selectors", "services"} & set(name.split("."))
        }
        assert not domain, (path.relative_to(root), domain)


def test_every_index_has_its_served_query():
    assert sorted(served_queries.SERVED_QUERIES) == sorted(index.query for index in INDEXES)


def _foreign_key_index(table: str, column: str) -> str:
    """The name Django gave the index of a foreign key (`orders_order_user_id_e9b59eb1`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            [table, f"{table}_{column}_%"],
        )
        (name,) = cursor.fetchone()
    return name


def _expected_off_scans() -> dict[str, str]:
    """Without the technique's indexes, the scan node each served query's plan must hold:
    a sequential scan where Django indexes nothing the query can use, and Django's own
    foreign-key index where it can (the reason order history is not a bench scenario)."""
    return {
        "customer_orders": f"using {_foreign_key_index('orders_order', 'user_id')}",
        "staff_orders": "Seq Scan on orders_order",
        "staff_filter": "Seq Scan on orders_order",
        "sales_report": "Seq Scan on orders_order",
        "product_search": "Seq Scan on catalog_product",
        "active_products": "Seq Scan on catalog_product",
        # 60 of 150 reviews: reading the small table beats the foreign-key index here (at
        # medium, 610 of 101,972, it does not, and the foreign-key index serves it)
        "product_reviews": "Seq Scan on catalog_review",
    }


def _scans_on() -> dict[str, bool]:
    """For each index: does its query's plan scan with it, by an index node naming it?"""
    kinds = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
    return {
        index.name: bool({f"{kind} using {index.name}" for kind in kinds} & scans(index.query))
        for index in INDEXES
    }


def scans(query: str) -> set[str]:
    return served_queries.scans(query)


def test_each_served_query_uses_its_index_only_while_it_exists(shop_data):
    assert _scans_on() == ALL_PRESENT
    # The toggle alone changes no plan: only apply_state() (the bench, `manage.py db_indexes`)
    # does, which is why the header refuses it (test_the_header_refuses_db_indexes).
    with toggles.override(db_indexes=False):
        assert _scans_on() == ALL_PRESENT

    db_indexes.apply_state(False)
    expected = _expected_off_scans()
    assert sorted(expected) == sorted(index.query for index in INDEXES)
    for query, node in expected.items():
        found = scans(query)
        assert any(scan == node or scan.endswith(node) for scan in found), (query, found)
    assert _scans_on() == NONE_PRESENT

    db_indexes.apply_state(True)
    assert _scans_on() == ALL_PRESENT


def _staff_filter_path() -> str:
    example = served_queries.staff_filter_example()
    return (
        f"/api/staff/orders/?status={example['status']}&date_from={example['date_from']}"
        f"&date_to={example['date_to']}&page_size=50"
    )


def _answers(shop_data, client) -> dict:
    paths = {
        None: ["/api/products/?page_size=50", "/api/products/?search=kettle&page_size=50"],
        shop_data["busiest"]: ["/api/orders/?page_size=50"],
        shop_data["staff"]: [
            "/api/staff/orders/?page_size=50",
            _staff_filter_path(),
            "/api/reports/sales/",
        ],
    }
    paths[None].append(f"/api/products/{shop_data['reviewed'].pk}/reviews/?page_size=50")
    answers = {}
    for user, user_paths in paths.items():
        client.force_authenticate(user)
        for path in user_paths:
            response = client.get(path)
            assert response.status_code == 200, (path, response.content)
            answers[path] = response.json()
    return answers


def test_same_answers_with_and_without_the_indexes(shop_data, api_client):
    with_indexes = _answers(shop_data, api_client)
    db_indexes.apply_state(False)
    without = _answers(shop_data, api_client)
    assert without == with_indexes
    assert len(with_indexes["/api/orders/?page_size=50"]["results"]) == 50
    assert with_indexes["/api/products/?search=kettle&page_size=50"]["count"] == 16
    # 1 in 20 orders placed (not yet paid), one every 17.4 hours: three in the last 30 days.
    filtered = with_indexes[_staff_filter_path()]["results"]
    assert len(filtered) == 3 and {order["status"] for order in filtered} == {"placed"}


def test_the_staff_filter_keeps_one_status_in_the_date_range(shop_data, api_client):
    api_client.force_authenticate(shop_data["staff"])
    every = api_client.get("/api/staff/orders/?page_size=100").json()["results"]
    pages, path = [], "/api/staff/orders/?status=paid&date_from=2000-01-01&page_size=7"
    while path:
        page = api_client.get(path).json()
        pages += page["results"]
        path = page["next"]  # the cursor keeps the filter
    expected = Order.objects.filter(status="paid").order_by("-created_at", "-id")
    assert [order["id"] for order in pages] == [order.pk for order in expected]
    assert len(pages) > 7 * 10 and len(every) == 100

    newest = Order.objects.order_by("-created_at").first().created_at.date()
    day = api_client.get(f"/api/staff/orders/?date_from={newest}&date_to={newest}").json()
    assert [order["id"] for order in day["results"]] == list(
        Order.objects.filter(created_at__date=newest)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("date_from=yesterday", "date_from"),
        ("date_from=2026-02-01&date_to=2026-01-01", "date_from"),
        ("date_to=9999-12-31", "date_to"),
    ],
)
def test_the_staff_filter_refuses_bad_input_with_field_messages(api_client, query, field):
    api_client.force_authenticate(UserFactory(is_staff=True))
    response = api_client.get(f"/api/staff/orders/?{query}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert field in response.json()


def test_the_header_refuses_db_indexes_and_says_how_to_switch(api_client):
    for spec in ("db_indexes=off", "select_related=off, db_indexes=on"):
        response = api_client.get("/api/products/", HTTP_X_PERF_TOGGLES=spec)
        assert response.status_code == 400
        (message,) = response.json()["X-Perf-Toggles"]
        assert "manage.py db_indexes on|off" in message
    assert db_indexes.present() == ALL_PRESENT


def _listed() -> dict:
    from rest_framework.test import APIClient

    rows = APIClient().get("/api/perf/toggles/").json()
    return next(row for row in rows if row["name"] == "db_indexes")


def test_the_toggle_list_and_the_echo_say_what_the_database_holds(api_client, monkeypatch):
    assert _listed() | {"description": ""} == {
        "name": "db_indexes",
        "group": "data_access",
        "description": "",
        "default": True,
        "enabled": True,
        "source": "database",
    }
    # PERF_TOGGLES cannot switch it either: the list and the echo ignore the flag.
    monkeypatch.setenv("PERF_TOGGLES", "db_indexes=off")
    assert _listed()["enabled"] is True
    assert "db_indexes" not in api_client.get("/api/products/")["X-Perf-Toggles"]

    db_indexes.drop_all()
    assert (_listed()["enabled"], _listed()["source"]) == (False, "database")
    db_indexes.create_all()
    monkeypatch.delenv("PERF_TOGGLES")
    assert _listed()["enabled"] is True


def test_apply_state_is_idempotent_and_present_reports_it():
    assert db_indexes.drop_all() == [index.name for index in INDEXES]
    assert db_indexes.drop_all() == []
    db_indexes.apply_state(False)
    assert db_indexes.present() == NONE_PRESENT
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [list(ALL_PRESENT)]
        )
        assert cursor.fetchall() == []

    assert db_indexes.create_all() == [index.name for index in INDEXES]
    assert db_indexes.create_all() == []
    db_indexes.apply_state(True)
    assert db_indexes.present() == ALL_PRESENT


def test_inside_a_transaction_drop_is_plain_and_concurrent_create_is_refused():
    with CaptureQueriesContext(connection) as captured:
        db_indexes.drop_all()
    drops = [query["sql"] for query in captured if query["sql"].startswith("DROP")]
    assert drops == [f"DROP INDEX IF EXISTS public.{index.name}" for index in INDEXES]
    with pytest.raises(ValueError, match="inside a transaction"):
        db_indexes.create_all(concurrently=True)


def test_create_all_rebuilds_an_index_a_failed_concurrent_build_left_invalid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("marking an index invalid takes a superuser")
        # What an interrupted CREATE INDEX CONCURRENTLY leaves behind.
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false "
            "WHERE indexrelid = 'catalog_product_name_trgm_idx'::regclass"
        )
    assert db_indexes.present()["catalog_product_name_trgm_idx"] is False
    assert db_indexes.create_all() == ["catalog_product_name_trgm_idx"]
    assert db_indexes.present() == ALL_PRESENT


def test_sql_variants_and_a_statement_that_disagrees_with_its_name():
    index = db_indexes.BY_NAME["orders_order_created_idx"]
    assert index.create_sql(concurrently=True) == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_order_created_idx "
        "ON orders_order (created_at DESC, id DESC)"
    )
    assert index.drop_sql("public", concurrently=True) == (
        "DROP INDEX CONCURRENTLY IF EXISTS public.orders_order_created_idx"
    )
    with pytest.raises(ValueError, match="must start"):
        NamedIndex(
            name="a_idx",
            table="orders_order",
            sql="CREATE INDEX b_idx ON orders_order (id)",
            purpose="",
            query="staff_orders",
        )


def test_management_command_switches_and_reports(capsys):
    call_command("db_indexes", "off")
    assert db_indexes.present() == NONE_PRESENT
    call_command("db_indexes", "status")
    assert "0 of 7 db_indexes indexes present" in capsys.readouterr().out
    call_command("db_indexes", "on")
    call_command("db_indexes", "status")
    assert "7 of 7 db_indexes indexes present" in capsys.readouterr().out


def test_scenario_hooks_switch_the_database_and_restore_it():
    scenarios.before(False)
    assert db_indexes.present() == NONE_PRESENT
    scenarios.before(True)
    assert db_indexes.present() == ALL_PRESENT
    assert scenarios.after() == []  # nothing was missing
    db_indexes.drop_all()
    # What the bench prints at start-up after a run that was killed with its indexes dropped.
    assert scenarios.after() == [index.name for index in INDEXES]
    assert db_indexes.present() == ALL_PRESENT


def test_scenarios_prepare_real_requests(shop_data, client):
    for scenario in [scenarios.SCENARIO, *scenarios.EXTRA_SCENARIOS]:
        assert scenario.name == "db_indexes"
        if scenario.prepare:
            scenario.prepare()
        call = scenario.call()
        if call.user:
            assert call.user == scenarios.STAFF  # the seeded staff account
            client.force_login(shop_data["staff"])
        response = client.generic(call.method, call.path)
        assert response.status_code == 200, response.content
        assert response.json()["results"]
    plans = scenarios.plans()
    assert "Index Scan using orders_order_status_created_idx" in plans["staff filter"]
    assert "Bitmap Index Scan on catalog_product_name_trgm_idx" in plans["product search"]
    assert "Index Scan using catalog_product_active_created_idx" in plans["product list"]


def test_the_bench_pairs_run_each_side_on_its_own_schema(shop_data, tmp_path):
    """End to end: `manage.py bench db_indexes` drops the indexes for the off side (the header
    never carries db_indexes, which the server would refuse), gives the same answers, shows a
    sequential scan off and the index on, and leaves every index in place."""
    UserFactory(username=scenarios.STAFF, is_staff=True)
    call_command(
        "bench",
        "db_indexes",
        "--repeat",
        "2",
        "--report",
        str(tmp_path),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    data = json.loads((tmp_path / "bench.json").read_text())
    entries = data["techniques"]
    assert [entry["error"] for entry in entries] == ["", "", ""]
    assert all(entry["same_answer"] and entry["answer_stable"] for entry in entries)
    plans = entries[0]["plans"]
    assert "Seq Scan on orders_order" in plans["off"]["staff filter"]
    assert "Index Scan using orders_order_status_created_idx" in plans["on"]["staff filter"]
    assert "Seq Scan on catalog_product" in plans["off"]["product search"]
    assert "Bitmap Index Scan on catalog_product_name_trgm_idx" in plans["on"]["product search"]
    # The staff token's lookup is the baseline's too: the "own" ratio leaves it out.
    assert entries[0]["own_db_speedup_p50"] is not None
    assert entries[1]["own_db_speedup_p50"] is None  # anonymous: no statement to leave out
    assert db_indexes.present() == ALL_PRESENT
