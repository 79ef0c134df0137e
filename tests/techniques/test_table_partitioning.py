"""table_partitioning: the migration partitions the event log by month and keeps it
append-only; partitions are made ahead; `archive` retires old months by detaching them, and
the plain table's DELETE retires the same rows; the app reads the same answers from a plain and
a partitioned log. Timings are the bench's (shop/bench/scenarios/table_partitioning.py).

Most tests run in a transaction rolled back: partition DDL is transactional, and archive()
uses the plain DETACH there. The ones marked transaction=True run the real path, DETACH
PARTITION ... CONCURRENTLY, which cannot run in a transaction block.
"""

import re
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from orders import selectors
from orders.models import OrderEvent
from shop.bench import event_tables
from shop.bench.scenarios import table_partitioning as scenarios
from shop.techniques import table_partitioning
from shop.techniques.table_partitioning import TABLE, add_months, month_start, partition_name
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

OLD = date(2020, 3, 1)  # a month long before any test's events


def _event(*, at: datetime, kind: str = "placed") -> OrderEvent:
    return OrderEvent.objects.create(order=OrderFactory(), kind=kind, created_at=at, data={})


def _at(month: date, day: int = 10) -> datetime:
    return datetime(month.year, month.month, day, 12, tzinfo=UTC)


def test_the_migration_partitions_the_log_by_month_up_to_three_months_ahead():
    assert table_partitioning.in_effect()
    months = [partition.month for partition in table_partitioning.partitions()]
    this_month = month_start(timezone.now())
    assert [add_months(this_month, n) for n in range(4)] == months[-4:]
    # The migration's frozen SQL names them as the module does.
    names = {partition.name for partition in table_partitioning.partitions()}
    assert {partition_name(month) for month in months} == names
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'p'",
            [TABLE],
        )
        assert cursor.fetchone()[0] == "PRIMARY KEY (id, created_at)"


def test_the_log_stays_append_only_in_every_partition():
    table_partitioning.ensure(OLD, OLD)
    for event in (_event(at=timezone.now()), _event(at=_at(OLD))):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            OrderEvent.objects.filter(pk=event.pk).update(kind="shipped")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            OrderEvent.objects.filter(pk=event.pk).delete()
    assert OrderEvent.objects.count() == 2


def test_an_event_for_a_month_without_a_partition_is_refused():
    """No DEFAULT partition: the months ahead must exist before their events come."""
    with pytest.raises(DatabaseError, match="no partition"), transaction.atomic():
        _event(at=_at(date(1999, 1, 1)))


def test_ensure_ahead_makes_the_missing_months_once():
    this_month = month_start(timezone.now())
    created = table_partitioning.ensure_ahead(5)
    assert created == [partition_name(add_months(this_month, n)) for n in (4, 5)]
    assert table_partitioning.ensure_ahead(5) == []
    # and an event five months ahead now has a home
    _event(at=_at(add_months(this_month, 5)))


def test_the_daily_task_runs_ensure_ahead():
    from orders.tasks import event_partitions_ahead

    this_month = month_start(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {partition_name(add_months(this_month, 3))}")
    assert event_partitions_ahead.apply().get() == [partition_name(add_months(this_month, 3))]


def test_archive_drops_the_old_months_and_keeps_the_rest():
    table_partitioning.ensure(OLD, add_months(OLD, 2))
    for month, count in ((OLD, 3), (add_months(OLD, 1), 2), (add_months(OLD, 2), 1)):
        for _ in range(count):
            _event(at=_at(month))
    recent = _event(at=timezone.now())
    # "today" in OLD + 3 months: older than 1 month means the months ended by OLD + 2.
    archived = table_partitioning.archive(older_than_months=1, today=add_months(OLD, 3))
    assert [(done.month, done.rows, done.to) for done in archived] == [
        (OLD, 3, "dropped"),
        (add_months(OLD, 1), 2, "dropped"),
    ]
    assert [p.month for p in table_partitioning.partitions()][0] == add_months(OLD, 2)
    assert list(OrderEvent.objects.values_list("created_at", flat=True).order_by("id")) == [
        _at(add_months(OLD, 2)),
        recent.created_at,
    ]


def test_archive_can_move_the_rows_to_the_archive_table():
    table_partitioning.ensure(OLD, OLD)
    moved = [_event(at=_at(OLD, day)).pk for day in (1, 2)]
    archived = table_partitioning.archive(older_than_months=1, move=True, today=add_months(OLD, 2))
    assert [done.to for done in archived] == [table_partitioning.ARCHIVE_TABLE]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table_partitioning.ARCHIVE_TABLE} ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == moved
    assert not OrderEvent.objects.filter(pk__in=moved).exists()


@pytest.mark.django_db(transaction=True)
def test_the_archive_command_detaches_concurrently_outside_a_transaction():
    table_partitioning.ensure(OLD, OLD)
    _event(at=_at(OLD))
    out = StringIO()
    executed = []
    with connection.execute_wrapper(lambda run, sql, *a: executed.append(sql) or run(sql, *a)):
        call_command("archive", "--older-than", "1", stdout=out)
    assert f"DETACH PARTITION {partition_name(OLD)} CONCURRENTLY" in " ".join(executed)
    assert re.search(rf"{partition_name(OLD)}\s+1 rows\s+dropped", out.getvalue())
    assert re.search(r"archived \d+ partitions? \(\d+ rows\) older than 1 months", out.getvalue())
    assert OLD not in [p.month for p in table_partitioning.partitions()]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--older-than", "0"], "--older-than must be at least 1 month, not 0"),
        (["--older-than", "-3"], "--older-than must be at least 1 month, not -3"),
        (["--older-than", "soon"], "invalid int value: 'soon'"),
    ],
)
def test_the_archive_command_refuses_bad_input_in_one_line(args, message):
    with pytest.raises(CommandError, match=re.escape(message)) as refused:
        call_command("archive", *args, stdout=StringIO())
    assert "\n" not in str(refused.value)


def test_the_status_and_ahead_commands():
    out = StringIO()
    call_command("table_partitioning", "ahead", "--months", "4", stdout=out)
    assert "created 1 partitions (4 months ahead)" in out.getvalue()
    out = StringIO()
    call_command("table_partitioning", "status", stdout=out)
    assert partition_name(add_months(month_start(timezone.now()), 4)) in out.getvalue()
    with pytest.raises(CommandError, match="--months must be 0 or more, not -1"):
        call_command("table_partitioning", "ahead", "--months", "-1", stdout=StringIO())


def test_the_plain_tables_delete_retires_the_same_rows_and_keeps_the_rule():
    """The off path on the real (partitioned) table: the trigger is lifted for its DELETE only."""
    table_partitioning.ensure(OLD, OLD)
    _event(at=_at(OLD))
    kept = _event(at=timezone.now())
    assert table_partitioning.delete_older(datetime(2020, 4, 1, tzinfo=UTC)) == 1
    assert list(OrderEvent.objects.values_list("pk", flat=True)) == [kept.pk]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OrderEvent.objects.filter(pk=kept.pk).delete()


# The bench's two copies: the same rows, the same answers, the same rows retired.


@pytest.fixture
def copies():
    now = timezone.now()
    first = add_months(month_start(now), -3)
    table_partitioning.ensure(first, now)  # the test database's log starts this month
    for month_back, count in ((3, 2), (2, 3), (1, 4)):
        for n in range(count):
            _event(at=_at(add_months(month_start(now), -month_back), n + 1), kind="paid")
    for hours in (1, 2, 30):
        _event(at=now - timedelta(hours=hours))
    event_tables.build(2)
    yield
    event_tables.release()


def _answers() -> tuple:
    recent = list(selectors.event_list_recent(hours=24).values_list("id", "kind", "created_at"))
    month = add_months(month_start(timezone.now()), -2)
    return recent, selectors.event_month_counts(month=month)


def test_the_copies_give_the_app_the_same_answers(copies):
    event_tables.use(partitioned=False)
    assert not table_partitioning.in_effect()
    plain = _answers()
    event_tables.use(partitioned=True)
    assert table_partitioning.in_effect()
    assert _answers() == plain
    assert len(plain[0]) == 2 * 2  # the two events of the last 24 h, copied twice over
    assert plain[1] == [{"kind": "paid", "count": 2 * 3}]


def test_both_sides_of_the_archive_scenario_retire_the_same_month(copies):
    answers = {}
    for partitioned in (False, True, False):
        event_tables.use(partitioned=partitioned)
        sample = scenarios._archive(partitioned)
        answers.setdefault(partitioned, []).append(sample.answer)
        assert OrderEvent.objects.count() == event_tables.rows() - 2 * 2
    month = add_months(month_start(timezone.now()), -3)
    expected = {"month": f"{month:%Y-%m}", "rows retired": 2 * 2}
    assert answers == {False: [expected, expected], True: [expected]}
    event_tables.use(partitioned=True)
    assert month not in [p.month for p in table_partitioning.partitions()]


def test_release_drops_the_copies_and_the_user_log_is_untouched(copies):
    before = OrderEvent.objects.count()
    event_tables.use(partitioned=True)
    assert OrderEvent.objects.count() == 2 * before
    assert event_tables.release()
    assert event_tables.release() == []
    assert OrderEvent.objects.count() == before


# The API the bench reads, and the toggle a request cannot set.


def _staff_client(client):
    client.force_login(UserFactory(is_staff=True))
    return client


def test_the_activity_feed_lists_the_newest_events_first(client):
    now = timezone.now()
    ids = [_event(at=now - timedelta(hours=h)).pk for h in (3, 1, 2, 30)]
    response = _staff_client(client).get("/api/staff/events/?hours=24")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == [ids[1], ids[2], ids[0]]


def test_a_months_counts_by_kind(client):
    table_partitioning.ensure(OLD, OLD)
    for kind in ("paid", "placed", "placed"):
        _event(at=_at(OLD), kind=kind)
    response = _staff_client(client).get("/api/staff/events/month/?month=2020-03")
    assert response.json() == [{"kind": "paid", "count": 1}, {"kind": "placed", "count": 2}]


@pytest.mark.parametrize("query", ["?hours=0", "?hours=169", "?hours=x"])
def test_the_feed_refuses_bad_hours(client, query):
    response = _staff_client(client).get(f"/api/staff/events/{query}")
    assert response.status_code == 400 and "hours" in response.json()


def test_the_month_must_be_a_month(client):
    response = _staff_client(client).get("/api/staff/events/month/?month=2020-13")
    assert response.status_code == 400 and "month" in response.json()


def test_customers_cannot_read_the_log(client):
    client.force_login(UserFactory())
    assert client.get("/api/staff/events/").status_code == 403


def test_a_request_cannot_flip_the_layout(client):
    response = client.get(
        "/api/perf/toggles/", headers={"X-Perf-Toggles": "table_partitioning=off"}
    )
    assert response.status_code == 400
    assert "table_partitioning cannot be set per request" in response.content.decode()
    rows = {row["name"]: row for row in client.get("/api/perf/toggles/").json()}
    assert rows["table_partitioning"]["enabled"] is True
    assert rows["table_partitioning"]["source"] == "database"


def test_the_seed_loads_into_monthly_partitions_and_rebuilds_their_indexes():
    """The seed drops the log's indexes for its COPY and builds them again: on the parent,
    so that every partition gets them (not `ON ONLY` the parent), and without COPY FREEZE,
    which a partitioned table refuses."""
    from shop.seed.core import seed

    seed(size="small", seed=1, anchor=date(2025, 6, 1), out=lambda *args, **kwargs: None)
    filled = [p.name for p in table_partitioning.partitions() if p.month <= date(2025, 5, 1)]
    assert OrderEvent.objects.count() > 0 and len(filled) >= 24
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE indisvalid), count(*) FROM pg_index "
            "WHERE indrelid = %s::regclass",
            [TABLE],
        )
        assert cursor.fetchone() == (3, 3)
        cursor.execute(
            "SELECT c.relname, count(i.indexrelid) FROM pg_class c "
            "LEFT JOIN pg_index i ON i.indrelid = c.oid WHERE c.relname = ANY(%s) GROUP BY 1",
            [filled],
        )
        assert set(dict(cursor.fetchall()).values()) == {3}


def test_the_http_modes_refuse_the_pair_whose_sides_live_in_this_process():
    with pytest.raises(CommandError, match="table_partitioning runs in process only"):
        call_command("bench", "--http", "table_partitioning", stdout=StringIO())
