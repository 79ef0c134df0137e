"""write_behind: product page views counted by one UPDATE each (off), or in Redis and added to
PostgreSQL in bulk by a flush (on), with the same counts in the end, none lost and none added
twice, even when the flush is killed with SIGKILL at any of its steps.

Everything is real: the views come through the API or `count_view()`, the counts wait in the
test run's Redis (its broker database, as in production), the flush runs in this process, on a
real Celery worker, or as `manage.py write_behind_flush` in a process of its own that the crash
tests kill, and the outage is a private redis-server (shop/private_broker.py) stopped under it.
"""

import io
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import tasks
from catalog.models import Product, ViewCountFlush
from shop import toggles
from shop.private_broker import PrivateBroker
from shop.techniques import write_behind
from tests import workers
from tests.concurrency import run_concurrently

PAUSED_WITHIN_S = 60  # a cold Django start on a busy machine takes a few seconds


@pytest.fixture(autouse=True)
def _nothing_waiting():
    """Each test starts and ends with no counts in this run's Redis and no remembered outage."""
    write_behind.reset()
    write_behind.discard()
    yield
    write_behind.discard()
    write_behind.reset()


def url(product: Product) -> str:
    return f"/api/products/{product.pk}/"


def stored(*products: Product) -> list[int]:
    """The products' view_count as PostgreSQL has it now."""
    counts = dict(
        Product.objects.filter(pk__in=[p.pk for p in products]).values_list("pk", "view_count")
    )
    return [counts[p.pk] for p in products]


def count_updates(queries: CaptureQueriesContext) -> int:
    return sum(
        query["sql"].replace('"', "").startswith("UPDATE catalog_product ")
        for query in queries.captured_queries
    )


# --- off and on, one view at a time ----------------------------------------------------------


def test_off_writes_one_update_per_view(api_client, products):
    product = products[0]
    with toggles.override(write_behind=False), CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert api_client.get(url(product)).status_code == 200
    assert count_updates(queries) == 3
    assert stored(product) == [3]
    assert write_behind.waiting() == {}


def test_on_writes_nothing_until_the_flush_adds_every_view_in_one_update(api_client, products):
    first, second = products[0], products[1]
    with toggles.override(write_behind=True), CaptureQueriesContext(connection) as queries:
        for product in (first, first, second, first):
            assert api_client.get(url(product)).status_code == 200
    assert count_updates(queries) == 0
    assert stored(first, second) == [0, 0]
    assert write_behind.waiting() == {first.pk: 3, second.pk: 1}

    with CaptureQueriesContext(connection) as queries:
        done = write_behind.flush()
    assert done == write_behind.Flushed(applied=1, views=4, products=2)
    assert count_updates(queries) == 1  # both products, one statement
    assert stored(first, second) == [3, 1]
    assert write_behind.waiting() == {}
    assert list(ViewCountFlush.objects.values_list("products", "views")) == [(2, 4)]


def test_a_flush_with_nothing_counted_writes_nothing(products):
    assert write_behind.flush() == write_behind.Flushed()
    assert not ViewCountFlush.objects.exists()


def test_same_answer_off_and_on_the_same_body_and_after_a_flush_the_same_counts(
    api_client, products
):
    product = products[0]
    bodies = {}
    for enabled in (False, True):
        with toggles.override(write_behind=enabled):
            responses = [api_client.get(url(product)) for _ in range(5)]
        assert {r.status_code for r in responses} == {200}
        bodies[enabled] = [r.json() for r in responses]
        write_behind.flush()
        assert stored(product) == [5 if not enabled else 10]  # +5 each side
    assert bodies[False] == bodies[True]
    assert "view_count" not in bodies[True][0]  # staff-only: the admin shows it


@pytest.mark.parametrize("enabled", [False, True])
def test_a_view_the_cache_answers_counts_too(api_client, products, enabled):
    """cache_aside on: the second and third GETs are hits that build nothing, and still count."""
    product = products[0]
    with toggles.override(cache_aside=True, write_behind=enabled):
        api_client.get(url(product))  # the miss that fills the cache
        with CaptureQueriesContext(connection) as queries:
            for _ in range(2):
                assert api_client.get(url(product)).status_code == 200
    assert len(queries.captured_queries) == (0 if enabled else 2)  # hits: the UPDATEs alone
    write_behind.flush()
    assert stored(product) == [3]


@pytest.mark.parametrize("enabled", [False, True])
def test_a_missing_product_is_no_view(api_client, products, enabled):
    with toggles.override(write_behind=enabled), CaptureQueriesContext(connection) as queries:
        assert api_client.get("/api/products/999999999/").status_code == 404
    assert count_updates(queries) == 0
    assert write_behind.waiting() == {}


# --- concurrency: real connections, real transactions ----------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("enabled", [False, True])
def test_views_at_once_are_all_counted_and_flushes_at_once_add_each_exactly_once(products, enabled):
    """Six threads count 40 views each over two products while two others flush in a loop
    (on): every view lands in a batch, every batch is applied once, whichever flush took it."""
    counters, per_thread, targets = 6, 40, products[:2]
    counting_done = threading.Barrier(counters + 1)
    finished = threading.Event()

    def work(i: int) -> None:
        with toggles.override(write_behind=enabled):
            if i < 2:
                while not finished.is_set():
                    write_behind.flush()
                return
            for n in range(per_thread):
                write_behind.count_view(product_id=targets[n % 2].pk)
            counting_done.wait()

    def release_flushers() -> None:
        counting_done.wait()
        finished.set()

    releaser = threading.Thread(target=release_flushers)
    releaser.start()
    run_concurrently(work, count=counters + 2)
    releaser.join()
    write_behind.flush()

    half = counters * per_thread // 2
    assert stored(*targets) == [half, half]
    assert write_behind.waiting() == {}
    if enabled:
        views = sum(ViewCountFlush.objects.values_list("views", flat=True))
        assert views == counters * per_thread  # the ledger agrees: no batch applied twice


# --- a flush killed halfway: SIGKILL at each step ---------------------------------------------


def _start_flush_process(point: str) -> subprocess.Popen:
    """`manage.py write_behind_flush` on this run's database and Redis, told to stop at
    `point` and wait there to be killed."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": workers.test_database_url(),
        "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TEST_QUEUE_SUFFIX": settings.TEST_QUEUE_SUFFIX,
        write_behind.PAUSE_ENV: point,
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "write_behind_flush"],
        cwd=workers.ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_until_paused(process: subprocess.Popen, point: str) -> None:
    deadline, said = time.monotonic() + PAUSED_WITHIN_S, b""
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stderr], [], [], 0.5)
        if ready:
            said += os.read(process.stderr.fileno(), 65536)
            if f"paused at {point}".encode() in said:
                return
    process.kill()
    raise AssertionError(f"the flush never paused at {point}:\n{said.decode(errors='replace')}")


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # a crash: no handler, no cleanup, no commit
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("point", "in_postgresql_after_the_kill"),
    [
        ("cut", False),  # the live hash renamed to a batch; nothing sent to PostgreSQL
        ("applied", False),  # the counts added, the transaction not committed
        ("committed", True),  # the counts committed, the batch still in Redis
    ],
)
def test_a_flush_killed_at_any_step_loses_no_view_and_adds_none_twice(
    products, point, in_postgresql_after_the_kill
):
    first, second = products[0], products[1]
    with toggles.override(write_behind=True):
        for product in [first] * 7 + [second] * 5:
            write_behind.count_view(product_id=product.pk)

        flusher = _start_flush_process(point)
        try:
            _wait_until_paused(flusher, point)
            # Views counted while the flush is stopped halfway: into a new live hash.
            for product in [first] * 2 + [second] * 3:
                write_behind.count_view(product_id=product.pk)
        finally:
            _kill(flusher)

    assert stored(first, second) == ([7, 5] if in_postgresql_after_the_kill else [0, 0])
    # Until the next flush, Redis still has the batch, applied or not, and the later views.
    assert write_behind.waiting() == {first.pk: 9, second.pk: 8}
    assert ViewCountFlush.objects.count() == int(in_postgresql_after_the_kill)

    done = write_behind.flush()

    assert stored(first, second) == [9, 8]  # every view, once
    assert write_behind.waiting() == {}
    assert ViewCountFlush.objects.count() == 2  # the killed flush's batch and the later views'
    if in_postgresql_after_the_kill:
        assert (done.applied, done.already_applied, done.views) == (1, 1, 5)
    else:
        assert (done.applied, done.already_applied, done.views) == (2, 0, 17)


# --- Redis down -------------------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path):
    redis_server = PrivateBroker(tmp_path / "redis")
    redis_server.start()
    try:
        with override_settings(WRITE_BEHIND_REDIS_URL=redis_server.url):
            yield redis_server
    finally:
        redis_server.stop()


def test_redis_down_counts_the_view_in_postgresql_with_a_warning_and_no_500(
    api_client, products, private_redis, caplog
):
    product = products[0]
    with toggles.override(write_behind=True):
        assert api_client.get(url(product)).status_code == 200
        assert write_behind.waiting() == {product.pk: 1}

        private_redis.stop()
        with caplog.at_level(logging.WARNING, logger="shop.techniques.write_behind"):
            assert api_client.get(url(product)).status_code == 200
        assert stored(product) == [1]  # counted the naive way
        assert "Redis unavailable" in caplog.text

        # Within WRITE_BEHIND_RETRY_S, views go to PostgreSQL without trying Redis again.
        caplog.clear()
        with CaptureQueriesContext(connection) as queries:
            assert api_client.get(url(product)).status_code == 200
        assert count_updates(queries) == 1
        assert stored(product) == [2]
        assert "Redis unavailable" not in caplog.text

        # The flush cannot run: the command says so, the beat task logs it and waits.
        with pytest.raises(redis.RedisError):
            write_behind.flush()
        with caplog.at_level(logging.WARNING, logger="catalog.tasks"):
            assert tasks.write_behind_flush() is None
        assert "the next one retries" in caplog.text

        # Back (with what it held: its append-only file), and views go to Redis again.
        private_redis.start()
        write_behind.reset()
        assert api_client.get(url(product)).status_code == 200
        assert write_behind.flush().views == 2  # the one before the outage and this one
    assert stored(product) == [4]


# --- the process: beat's task on a real worker, the command, the ledger's pruning -------------


@pytest.mark.django_db(transaction=True)
def test_the_beat_entry_runs_the_flush_on_a_worker_of_the_default_queue(products, celery_worker):
    entry = settings.CELERY_BEAT_SCHEDULE["write-behind-flush"]
    assert entry["task"] == tasks.write_behind_flush.name
    assert entry["schedule"] == settings.WRITE_BEHIND_FLUSH_EVERY_S
    assert tasks.write_behind_flush.name not in settings.CELERY_TASK_ROUTES  # so: `default`
    product = products[0]
    with toggles.override(write_behind=True):
        for _ in range(4):
            write_behind.count_view(product_id=product.pk)

    worker = celery_worker("default", pool="solo")
    tasks.write_behind_flush.delay()
    assert worker.wait_for(lambda: stored(product) == [4], seconds=60), worker.output()
    assert write_behind.waiting() == {}


def test_the_command_flushes_once_and_says_what_it_added(products):
    with toggles.override(write_behind=True):
        write_behind.count_view(product_id=products[0].pk)
        write_behind.count_view(product_id=products[0].pk)
    out = io.StringIO()
    call_command("write_behind_flush", stdout=out)
    assert out.getvalue().startswith("added 2 views of 1 products")
    assert stored(products[0]) == [2]


def test_the_flush_prunes_ledger_rows_past_their_keep(products, settings):
    settings.WRITE_BEHIND_LEDGER_KEEP_DAYS = 7
    now = timezone.now()
    for flush_id, age in (("old", timedelta(days=8)), ("recent", timedelta(days=6))):
        ViewCountFlush.objects.create(flush_id=flush_id, products=1, views=1, applied_at=now - age)
    write_behind.flush()
    assert list(ViewCountFlush.objects.values_list("flush_id", flat=True)) == ["recent"]
