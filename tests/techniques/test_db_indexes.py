"""db_indexes: with the indexes each served query's plan uses its index; without them it does
not, and every answer stays the same. The toggle alone changes nothing: only the database does.

Each test runs in a transaction that is rolled back. Plain CREATE and DROP INDEX are
transactional in PostgreSQL, so dropping the indexes here never touches another test, and
drop_all() uses the plain form inside a transaction (CONCURRENTLY cannot run in one).
"""

import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Product, Review
from orders.models import Order, OrderItem
from shop import toggles
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
MIGRATIONS = {
    "catalog": "catalog.migrations.0003_db_indexes",
    "orders": "orders.migrations.0004_db_indexes",
}


@pytest.fixture
def shop_data():
    """Enough rows that PostgreSQL's planner picks the plans it picks on the seeded data: 800
    products (1 in 40 a kettle, 1 in 25 inactive), 1,000 orders over two years (a tenth of them
    the busiest customer's), 150 reviews (60 on one product). With half as many, a sort of a
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
    statuses = list(Order.Status)
    orders = Order.objects.bulk_create(
        Order(
            user=busiest if n % 10 == 0 else customers[n % 59 + 1],
            status=statuses[n % 4],
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
        cursor.execute("ANALYZE catalog_product, catalog_review, orders_order, orders_orderitem")
    return {"busiest": busiest, "staff": staff, "reviewed": products[1]}


def test_migrations_create_every_index_in_the_module():
    created = {}
    for app, module in MIGRATIONS.items():
        for name in importlib.import_module(module).INDEXES:
            assert db_indexes.BY_NAME[name].table.startswith(f"{app}_"), name
            created[name] = app
    assert sorted(created) == sorted(db_indexes.BY_NAME)
    assert db_indexes.present() == ALL_PRESENT  # the test database was migrated


def _plans_using_their_index() -> dict[str, bool]:
    return {index.name: index.name in db_indexes.explain(index.query) for index in INDEXES}


def test_each_served_query_uses_its_index_only_while_it_exists(shop_data):
    assert _plans_using_their_index() == ALL_PRESENT
    # X-Perf-Toggles: db_indexes=off reaches the code, not the schema: the toggle alone
    # changes no plan. Only apply_state() (the bench, `manage.py db_indexes`) does.
    with toggles.override(db_indexes=False):
        assert _plans_using_their_index() == ALL_PRESENT

    db_indexes.apply_state(False)
    assert _plans_using_their_index() == NONE_PRESENT

    db_indexes.apply_state(True)
    assert _plans_using_their_index() == ALL_PRESENT


def _answers(shop_data, client, state: str) -> dict:
    paths = {
        None: ["/api/products/?page_size=50", "/api/products/?search=kettle&page_size=50"],
        shop_data["busiest"]: ["/api/orders/?page_size=50"],
        shop_data["staff"]: ["/api/staff/orders/?page_size=50", "/api/reports/sales/"],
    }
    paths[None].append(f"/api/products/{shop_data['reviewed'].pk}/reviews/?page_size=50")
    answers = {}
    for user, user_paths in paths.items():
        client.force_authenticate(user)
        for path in user_paths:
            response = client.get(path, HTTP_X_PERF_TOGGLES=f"db_indexes={state}")
            assert response.status_code == 200, (path, response.content)
            answers[path] = response.json()
    return answers


def test_same_answers_with_and_without_the_indexes(shop_data, api_client):
    with_indexes = _answers(shop_data, api_client, "on")
    db_indexes.apply_state(False)
    without = _answers(shop_data, api_client, "off")
    assert without == with_indexes
    assert len(with_indexes["/api/orders/?page_size=50"]["results"]) == 50
    assert with_indexes["/api/products/?search=kettle&page_size=50"]["count"] == 16


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
    assert drops == [f"DROP INDEX IF EXISTS {index.name}" for index in INDEXES]
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
    assert index.drop_sql(concurrently=True) == (
        "DROP INDEX CONCURRENTLY IF EXISTS orders_order_created_idx"
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
    assert "0 of 6 db_indexes indexes present" in capsys.readouterr().out
    call_command("db_indexes", "on")
    call_command("db_indexes", "status")
    assert "6 of 6 db_indexes indexes present" in capsys.readouterr().out


def test_scenario_hooks_switch_the_database_and_restore_it():
    scenarios.before(False)
    assert db_indexes.present() == NONE_PRESENT
    scenarios.before(True)
    assert db_indexes.present() == ALL_PRESENT
    scenarios.before(False)
    scenarios.after()
    assert db_indexes.present() == ALL_PRESENT


def test_scenarios_prepare_real_requests(shop_data, client):
    for scenario in [scenarios.SCENARIO, *scenarios.EXTRA_SCENARIOS]:
        assert scenario.name == "db_indexes"
        if scenario.prepare:
            scenario.prepare()
        call = scenario.call()
        if call.user:
            client.force_login(shop_data["busiest"])
            assert call.user == shop_data["busiest"].username
        response = client.generic(call.method, call.path)
        assert response.status_code == 200, response.content
    plans = scenarios.plans()
    assert "orders_order_user_created_idx" in plans["order history"]
    assert "catalog_product_name_trgm_idx" in plans["product search"]
    assert "catalog_product_active_created_idx" in plans["product list"]
