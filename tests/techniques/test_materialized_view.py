"""materialized_view: after a refresh, the sales report is byte-identical live (off) and from
the read model (on), on the primary and on the replica; before one, the read model is stale and
its X-Report-As-Of header says since when; a refresh CONCURRENTLY never waits for a reader; bad
input is a 400 either way."""

import copy
import json
import os
import pwd
import subprocess
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.db.backends.postgresql.base import DatabaseWrapper
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Order, OrderItem
from shop import replication, toggles
from shop.bench.scenarios import materialized_view as scenario
from shop.devstack.pgbouncer import find_pgbouncer, pgbouncer_up
from shop.perf_headers import parse_query_counts
from shop.private_broker import free_port
from shop.seed import seed
from shop.techniques import materialized_view, read_replica
from tests.concurrency import run_concurrently
from tests.factories import OrderFactory, UserFactory, VariantFactory

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
REPORT = "/api/reports/sales/?date_from=2026-03-10&date_to=2026-03-12"
HEADER = "X-Report-As-Of"


def _ties():
    """Three products earning the same 30.00 from different units: product id breaks the tie."""
    three, five, ten = (VariantFactory(price=Decimal(price)) for price in ("3.00", "5.00", "10.00"))
    OrderFactory(created_at=DAY, lines=[(ten, 3)])
    OrderFactory(created_at=DAY, lines=[(five, 6)])
    OrderFactory(created_at=DAY, lines=[(three, 4)])
    OrderFactory(created_at=DAY, lines=[(three, 6)])


def _excluded_statuses():
    """Cancelled and placed (unpaid) orders count for nothing, even when they would top the
    list; a confirmed one counts."""
    cheap, dear = VariantFactory(price=Decimal("2.00")), VariantFactory(price=Decimal("99.99"))
    OrderFactory(created_at=DAY, lines=[(cheap, 2)])
    OrderFactory(created_at=DAY, lines=[(cheap, 1)], status=Order.Status.CONFIRMED)
    OrderFactory(created_at=DAY, lines=[(dear, 50)], status=Order.Status.CANCELLED)
    OrderFactory(created_at=DAY, lines=[(dear, 40)], status=Order.Status.PLACED)


def _utc_day_boundaries():
    """Days are UTC days: the last microsecond of a day and the first of the next differ, and
    the day after the range is out of it."""
    variants = [VariantFactory(price=Decimal("1.99")), VariantFactory(price=Decimal("7.25"))]
    midnight = datetime(2026, 3, 11, tzinfo=UTC)
    OrderFactory(created_at=midnight - timedelta(microseconds=1), lines=[(variants[0], 1)])
    OrderFactory(created_at=midnight, lines=[(variants[0], 2), (variants[1], 1)])
    OrderFactory(created_at=midnight + timedelta(days=1, hours=23), lines=[(variants[1], 3)])
    OrderFactory(created_at=midnight + timedelta(days=2), lines=[(variants[1], 9)])  # out


def _best_sellers_elsewhere():
    """The all-time best sellers sold outside the range, and twelve products inside it: the
    bar their range sales set is 0, so every product is a candidate, and the top 10 cut
    leaves two of the twelve out."""
    outside = [VariantFactory(price=Decimal("500.00")) for _ in range(10)]
    for variant in outside:
        OrderFactory(created_at=DAY - timedelta(days=30), lines=[(variant, 9)])
    inside = [VariantFactory(price=Decimal(f"{n}.10")) for n in range(1, 13)]
    for n, variant in enumerate(inside):
        OrderFactory(created_at=DAY, lines=[(variant, n % 3 + 1)])


def _a_bar_that_prunes():
    """The ten best sellers of all time sell 1 to 10 units in range too, so their range sales
    set a bar (the tenth: 100.00). One product tops the range without being an all-time best
    seller; two tie the bar after selling more outside the range; two sell so little ever that
    they cannot reach it."""
    ever = [VariantFactory(price=Decimal("100.00")) for _ in range(10)]
    for n, variant in enumerate(ever):
        OrderFactory(created_at=DAY - timedelta(days=60), lines=[(variant, 20)])
        OrderFactory(created_at=DAY, lines=[(variant, n + 1)])
    rising = VariantFactory(price=Decimal("100.00"))
    OrderFactory(created_at=DAY + timedelta(days=1), lines=[(rising, 15)])
    for _ in range(2):
        fading = VariantFactory(price=Decimal("100.00"))
        OrderFactory(created_at=DAY - timedelta(days=90), lines=[(fading, 18)])
        OrderFactory(created_at=DAY, lines=[(fading, 1)])
    for _ in range(2):
        OrderFactory(created_at=DAY, lines=[(VariantFactory(price=Decimal("50.00")), 1)])


DATA_SETS = {
    "ties": _ties,
    "excluded statuses": _excluded_statuses,
    "UTC day boundaries": _utc_day_boundaries,
    "best sellers elsewhere": _best_sellers_elsewhere,
    "a bar that prunes": _a_bar_that_prunes,
    "empty range": lambda: None,
}


def _report(client, state, path=REPORT):
    response = client.get(path, HTTP_X_PERF_TOGGLES=f"materialized_view={state}")
    assert response.status_code == 200, response.content
    return response


@pytest.mark.django_db
@pytest.mark.parametrize("build", DATA_SETS.values(), ids=DATA_SETS.keys())
def test_after_a_refresh_the_report_is_the_same_bytes_off_and_on(staff_client, build):
    build()
    materialized_view.refresh()
    live, read_model = _report(staff_client, "off"), _report(staff_client, "on")
    assert read_model.content == live.content
    assert HEADER not in live
    assert datetime.fromisoformat(read_model[HEADER]) == materialized_view.last_refresh()[0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/reports/sales/?date_from=2026-03-11&date_to=2026-03-11",  # a single day
        "/api/reports/sales/?date_from=2026-03-12&date_to=2026-03-12",  # a day with none
        "/api/reports/sales/?date_from=2025-03-13&date_to=2026-03-13",  # the longest range
        "/api/reports/sales/",  # the default: the last 30 days
        "/api/reports/sales/?date_to=0001-01-05",  # clipped at the calendar's first day
    ],
)
def test_same_bytes_for_single_days_and_the_longest_range(staff_client, path):
    _a_bar_that_prunes()
    _utc_day_boundaries()
    OrderFactory(created_at=datetime.now(UTC), lines=[(VariantFactory(), 2)])  # for the default
    materialized_view.refresh()
    assert _report(staff_client, "on", path).content == _report(staff_client, "off", path).content


@pytest.mark.django_db
def test_the_top_products_read_only_the_candidates_days():
    """The pruning is real: the second pass sums the days of fewer products than sold in
    range."""
    _a_bar_that_prunes()
    materialized_view.refresh()
    days = {"date_from": DAY.date(), "date_to": DAY.date() + timedelta(days=2), "top": 10}
    with connection.cursor() as cursor:
        cursor.execute(materialized_view.CANDIDATES + "SELECT revenue FROM bar", days)
        (bar,) = cursor.fetchone()
        cursor.execute(materialized_view.CANDIDATES + "SELECT product_id FROM candidates", days)
        candidates = cursor.fetchall()
    assert bar == Decimal("100.00")  # the tenth best seller's range sales: 1 unit
    assert len(candidates) == 13  # of the 15 sold in range: not the two that sold 50.00 ever


@pytest.mark.django_db
@pytest.mark.parametrize(("price", "quantity"), [("0.00", 1), ("-1.00", 1), ("5.00", 0)])
def test_no_order_item_earns_nothing_or_less(price, quantity):
    """The bar holds because a product's range revenue is at most its all-time revenue, which
    needs every item's revenue positive: the database refuses any other price or quantity."""
    order = OrderFactory(created_at=DAY, lines=[(VariantFactory(), 1)])
    item = order.items.get()
    with pytest.raises(IntegrityError, match="positive"), transaction.atomic():
        OrderItem.objects.filter(pk=item.pk).update(unit_price=Decimal(price), quantity=quantity)


def _loops_over_the_days_by_product(days: dict) -> list[int]:
    """EXPLAIN ANALYZE of the report's statement: how many times each read of
    orders_sales_day_product ran."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {materialized_view.REPORT}", days)
        (plan,) = cursor.fetchone()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    loops, nodes = [], [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Relation Name") == "orders_sales_day_product":
            loops.append(node["Actual Loops"])
        nodes.extend(node.get("Plans", ()))
    return sorted(loops)


@pytest.mark.django_db
def test_each_products_days_are_summed_on_their_own_whatever_the_statistics_say():
    """The plan is written into the statement: the days are read once per best seller (the
    bar) and once per candidate, each time only that product's. As a join, the planner may
    read every product's days in range at once (one loop), which is what it chooses when the
    views' statistics are missing or it guesses how many products pass the bar."""
    _a_bar_that_prunes()
    materialized_view.refresh()
    days = {"date_from": DAY.date(), "date_to": DAY.date() + timedelta(days=2), "top": 10}
    assert _loops_over_the_days_by_product(days) == [10, 13]  # best sellers, candidates


@pytest.mark.django_db
def test_the_report_is_one_statement_on_the_read_model(staff_client):
    """Days, top products and refresh time in one statement (one snapshot, no transaction
    to open), then the products' names: two queries, where the live report sends three."""
    _a_bar_that_prunes()
    materialized_view.refresh()
    counts = {}
    for state in ("off", "on"):
        response = _report(staff_client, state)
        counts[state] = sum(parse_query_counts(response["X-DB-Queries"]).values())
    assert counts == {"off": 3, "on": 2}


@pytest.mark.django_db(transaction=True)
def test_a_refresh_leaves_the_views_analyzed_and_vacuumed():
    """As the beat task runs it, in a transaction of its own: the views' statistics arrive
    with their rows (ANALYZE, in the refresh's transaction), and their pages are marked
    all-visible once it commits (VACUUM), so the report's index-only scans read no heap."""
    OrderFactory(created_at=DAY, lines=[(VariantFactory(), 2)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (started,) = cursor.fetchone()
    materialized_view.refresh()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, last_analyze >= %s, last_vacuum >= %s FROM pg_stat_user_tables"
            " WHERE relname = ANY(%s) ORDER BY relname",
            [started, started, list(materialized_view.VIEWS)],
        )
        seen = cursor.fetchall()
    assert seen == [(view, True, True) for view in sorted(materialized_view.VIEWS)]


@pytest.mark.django_db(transaction=True)
def test_the_read_model_is_stale_until_refreshed_and_says_since_when():
    """Each refresh in a transaction of its own, as the beat task's: its time is its own."""
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    variant = VariantFactory(price=Decimal("12.50"))
    OrderFactory(created_at=DAY, lines=[(variant, 1)])
    materialized_view.refresh()
    first = _report(client, "on")
    assert first.json()["orders"] == 1

    OrderFactory(created_at=DAY, lines=[(variant, 3)])
    assert _report(client, "off").json()["orders"] == 2  # live: at once
    stale = _report(client, "on")
    assert stale.content == first.content  # the read model: not yet
    assert stale[HEADER] == first[HEADER]  # and it says it is as old as before

    before = datetime.now(UTC)
    materialized_view.refresh()
    after = datetime.now(UTC)
    fresh = _report(client, "on")
    assert fresh.json()["orders"] == 2
    assert fresh.content == _report(client, "off").content
    assert before <= datetime.fromisoformat(fresh[HEADER]) <= after


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_refresh_does_not_wait_for_a_reader_and_a_plain_one_does():
    """A reader holds the views in an open transaction, as a slow report would (its
    ACCESS SHARE locks). REFRESH ... CONCURRENTLY completes meanwhile; a plain REFRESH needs
    ACCESS EXCLUSIVE and waits for it: here, until its lock_timeout."""
    materialized_view.refresh()  # empty, whatever earlier tests left in the views
    OrderFactory(created_at=DAY, lines=[(VariantFactory(), 1)])
    reading, release, seen = threading.Event(), threading.Event(), []

    def reader():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    for view in materialized_view.VIEWS:
                        cursor.execute(f"SELECT count(*) FROM {view}")
                        seen.append(cursor.fetchone()[0])
                reading.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert reading.wait(10)
        materialized_view.refresh()  # completes while the reader's transaction is open
        assert thread.is_alive() and not release.is_set()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        try:
            with pytest.raises(OperationalError, match="lock timeout"):
                materialized_view.refresh(concurrently=False)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        release.set()
        thread.join(10)
    assert seen == [0, 0, 0]  # the reader saw the views as they were: empty
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM orders_sales_day")
        assert cursor.fetchone()[0] == 1  # the concurrent refresh's contents


@pytest.mark.django_db(transaction=True)
def test_refreshes_at_the_same_time_take_turns():
    """The beat task's and a command's, say. Each starts from the last one's views: without
    the advisory lock, the ones whose snapshots predate the first commit apply the same new
    rows again, and fail on the UNIQUE index."""
    materialized_view.refresh()
    variant = VariantFactory(price=Decimal("4.00"))
    for day in range(5):
        OrderFactory(created_at=DAY + timedelta(days=day), lines=[(variant, 1)])
    seconds = run_concurrently(lambda _: materialized_view.refresh(), 4)
    assert len(seconds) == 4
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    path = "/api/reports/sales/?date_from=2026-03-10&date_to=2026-03-16"
    assert _report(client, "on", path).json()["orders"] == 5
    assert _report(client, "on", path).content == _report(client, "off", path).content


@pytest.mark.django_db(transaction=True)
def test_a_refresh_waits_its_turn_longer_than_a_requests_statement_bound():
    """At the large size one refresh takes longer than the session's statement_timeout
    (DB_STATEMENT_TIMEOUT_MS, 30 s); the next one, a command's while the beat task's runs,
    waits for it under the refresh's own bound, not a request's. Here the session's bound is
    300 ms and the first refresh holds the turn for a second (its transaction kept open)."""
    materialized_view.refresh()
    holding, release = threading.Event(), threading.Event()

    def first():
        try:
            with transaction.atomic():
                materialized_view.refresh()
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert holding.wait(10)
        threading.Timer(1.0, release.set).start()
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '300ms'")
        try:
            materialized_view.refresh()  # waits about a second for the first
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
    finally:
        release.set()
        thread.join(10)


def _waiting_on_a_lock(pid: int) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", [pid])
        return cursor.fetchone()[0] > 0


def _refresh_on_a_thread(errors: list) -> tuple[threading.Thread, list[int]]:
    """refresh() on a connection of its own; its backend's pid, once known, and its error."""
    pid: list[int] = []

    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid.append(cursor.fetchone()[0])
            materialized_view.refresh()
        except Exception as error:  # noqa: BLE001 (the test asserts there is none)
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, pid


def _until(condition, seconds=10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_refresh_in_a_callers_transaction_holds_its_turn_until_that_commits():
    """The seed refreshes inside its own transaction: until that commits, a refresh on
    another connection (the beat task's) must not start, or its snapshot predates the seed's
    orders and views, and it fails on the refresh time's row (a serialization failure)."""
    materialized_view.refresh()
    variant = VariantFactory(price=Decimal("4.00"))
    refreshed, release, errors = threading.Event(), threading.Event(), []

    def seed_like():
        try:
            with transaction.atomic():
                OrderFactory(created_at=DAY, lines=[(variant, 2)])
                materialized_view.refresh(concurrently=False)
                refreshed.set()
                release.wait(30)
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    seeder = threading.Thread(target=seed_like)
    seeder.start()
    try:
        assert refreshed.wait(10)
        beat, pid = _refresh_on_a_thread(errors)
        _until(lambda: pid and _waiting_on_a_lock(pid[0]))  # on the seed's, whichever it is
    finally:
        release.set()
        seeder.join(10)
    beat.join(30)
    assert errors == []
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    assert _report(client, "on").json()["orders"] == 1
    assert _report(client, "on").content == _report(client, "off").content


@pytest.fixture
def bouncer():
    """A PgBouncer of the test's own, in transaction mode as DB_PGBOUNCER=on expects, in front
    of the test database; the alias "bouncer" connects through it as that setting configures
    Django (connection_pooling.configure). Stopped at the end, with its server connections."""
    binary = find_pgbouncer()
    if binary is None:
        pytest.skip("pgbouncer is not installed")
    primary = connections["default"].settings_dict
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="mv-pgbouncer-") as folder:
        os.chmod(folder, 0o755)  # noqa: S103 (read by the postgres account when we are root)
        ini, users = os.path.join(folder, "pgbouncer.ini"), os.path.join(folder, "users.txt")
        with open(users, "w") as file:
            file.write(f'"{primary["USER"]}" ""\n')
        with open(ini, "w") as file:
            file.write(
                f"[databases]\n* = host={primary['HOST'] or '127.0.0.1'} port={primary['PORT']}\n"
                f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
                f"unix_socket_dir =\nauth_type = trust\nauth_file = {users}\n"
                "pool_mode = transaction\n"
            )
        account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None  # it refuses root
        as_account = {"user": account.pw_uid, "group": account.pw_gid} if account else {}
        process = subprocess.Popen(
            [binary, ini], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, **as_account,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while not pgbouncer_up(port):
                assert process.poll() is None and time.monotonic() < deadline, "no pgbouncer"
                time.sleep(0.05)
            settings_dict = copy.deepcopy(primary)
            settings_dict.update(HOST="127.0.0.1", PORT=str(port), DISABLE_SERVER_SIDE_CURSORS=True)
            options = settings_dict["OPTIONS"]
            for name in ("pool", "options"):
                options.pop(name, None)
            options["prepare_threshold"] = None
            connections["bouncer"] = DatabaseWrapper(settings_dict, alias="bouncer")
            yield {"host": "127.0.0.1", "port": port, "dbname": primary["NAME"],
                   "user": primary["USER"]}  # fmt: skip
        finally:
            bouncer_connection = connections["bouncer"]
            bouncer_connection.close()
            del connections["bouncer"]
            process.terminate()
            process.wait(10)


@pytest.mark.django_db(transaction=True)
def test_behind_pgbouncer_in_transaction_mode_a_refresh_leaves_the_turn_free(bouncer):
    """DB_PGBOUNCER=on: each transaction of a client may run on another server connection,
    whenever other clients took the last one (a busy web tier's do). Here, before each of the
    refresh's statements, another client opens a transaction and keeps it, so the refresh's
    transactions and statements never find the server connection they last ran on. Once the
    refresh returned, nothing of it may hold the turn: the next refresh, on the primary, must
    not wait for it."""
    OrderFactory(created_at=DAY, lines=[(VariantFactory(), 2)])
    others: list[psycopg.Connection] = []

    def another_client_takes_a_server_connection(execute, sql, params, many, context):
        other = psycopg.connect(**bouncer, autocommit=True)
        other.execute("BEGIN")
        other.execute("SELECT 1")  # holds the server connection last released until COMMIT
        others.append(other)
        return execute(sql, params, many, context)

    try:
        with connections["bouncer"].execute_wrapper(another_client_takes_a_server_connection):
            materialized_view.refresh(using="bouncer")
    finally:
        for other in others:
            other.execute("COMMIT")  # their server connections go back to PgBouncer's pool
            other.close()
    assert len(others) > 2
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")
    try:
        materialized_view.refresh()  # at once: no turn is left held on a server connection
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    assert _report(client, "on").content == _report(client, "off").content


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["off", "on"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("date_from=2026-03-12&date_to=2026-03-10", "date_from"),  # from after to
        ("date_from=2026-13-01", "date_from"),  # not a date
        ("date_to=yesterday", "date_to"),
        ("date_from=2020-01-01&date_to=2026-01-01", "date_from"),  # more than 366 days
        ("date_to=9999-12-31", "date_to"),
    ],
)
def test_bad_input_is_a_400_with_field_messages_either_way(staff_client, state, query, field):
    response = staff_client.get(
        f"/api/reports/sales/?{query}", HTTP_X_PERF_TOGGLES=f"materialized_view={state}"
    )
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert HEADER not in response


@pytest.mark.django_db
def test_the_beat_task_refreshes_and_is_scheduled_on_a_queue_with_a_worker(staff_client):
    from orders.tasks import refresh_sales_report

    OrderFactory(created_at=DAY, lines=[(VariantFactory(), 2)])
    assert _report(staff_client, "on").json()["orders"] == 0
    seconds = refresh_sales_report.apply().get()
    assert seconds == pytest.approx(materialized_view.last_refresh()[1])
    assert _report(staff_client, "on").json()["orders"] == 1
    # Bounded by the refresh's own limit, not a request's, in the database and on the worker.
    with connection.cursor() as cursor:  # the test's transaction: the refresh's SET LOCAL holds
        cursor.execute("SELECT current_setting('statement_timeout')")
        assert cursor.fetchone()[0] == f"{settings.SALES_REPORT_REFRESH_TIMEOUT_S // 60}min"
    assert refresh_sales_report.soft_time_limit == settings.SALES_REPORT_REFRESH_TIMEOUT_S

    entry = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == refresh_sales_report.name
    )
    assert entry["schedule"] == settings.SALES_REPORT_REFRESH_S
    # Routed nowhere, so to the default queue, which the Procfile's worker-default consumes.
    assert refresh_sales_report.name not in settings.CELERY_TASK_ROUTES
    procfile = (settings.BASE_DIR / "Procfile").read_text()
    assert "worker --loglevel INFO --queues default " in procfile
    assert "celery -A config beat" in procfile


@pytest.mark.django_db
def test_the_command_refreshes_and_prints_the_staleness_bound(staff_client):
    OrderFactory(created_at=DAY, lines=[(VariantFactory(), 2)])
    out = StringIO()
    call_command("refresh_sales_report", stdout=out)
    assert "refreshed in" in out.getvalue()
    assert f"{settings.SALES_REPORT_REFRESH_S} s (SALES_REPORT_REFRESH_S)" in out.getvalue()
    assert _report(staff_client, "on").json()["orders"] == 1


@pytest.mark.django_db
def test_the_seed_leaves_the_read_model_refreshed(staff_client):
    """`manage.py seed` (and so `make demo` and the bench) never leaves an empty report."""
    anchor = date(2025, 6, 1)
    seed(size="small", seed=42, anchor=anchor, out=lambda line: None)
    path = f"/api/reports/sales/?date_from={anchor - timedelta(days=365)}&date_to={anchor}"
    read_model = _report(staff_client, "on", path)
    assert read_model.json()["orders"] > 0
    assert read_model.content == _report(staff_client, "off", path).content


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_on_the_replica_the_read_model_is_the_primarys_once_replayed(settings):
    """With read_replica on (production's default), the report reads the views on the
    streaming replica, in its one statement: the refresh reaches it by replication, like any
    table's rows."""
    settings.READ_REPLICA_MAX_LAG_SECONDS = 60
    read_replica.health.reset()
    token = Token.objects.create(user=UserFactory(is_staff=True))
    _a_bar_that_prunes()
    materialized_view.refresh()
    replication.wait_for_replay()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    both = "read_replica=on, materialized_view={}"
    live = client.get(REPORT, HTTP_X_PERF_TOGGLES=both.format("off"))
    on_replica = client.get(REPORT, HTTP_X_PERF_TOGGLES=both.format("on"))
    assert on_replica.status_code == live.status_code == 200
    assert on_replica.content == live.content
    counts = parse_query_counts(on_replica["X-DB-Queries"])
    assert counts["default"] == 0 and counts["replica"] > 0
    assert datetime.fromisoformat(on_replica[HEADER]) == materialized_view.last_refresh()[0]
    read_replica.health.reset()


@pytest.mark.django_db
def test_the_bench_explains_each_sides_top_products_statement():
    OrderFactory(created_at=datetime.now(UTC), lines=[(VariantFactory(), 2)])
    scenario.SCENARIO.prepare()  # refreshes the views
    with toggles.override(materialized_view=False):
        live = scenario.plans()["top products"]
    with toggles.override(materialized_view=True):
        read_model = scenario.plans()["top products"]
    assert "orders_orderitem" in live and "orders_sales" not in live
    assert "on orders_sales_day_product" in read_model and "orders_orderitem" not in read_model
