"""The bench's counts beyond time and queries: cache operations on the real Redis, connections
opened as PostgreSQL counts them, a scenario's own counts, and the primary's share."""

import threading
import time

import psycopg
import pytest
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import request_started
from django.db import connections

from shop import cache as shop_cache
from shop.bench import metrics
from shop.bench.alternation import Plan
from shop.bench.discovery import Suite
from shop.bench.measure import Prepared, Requester, send
from shop.bench.runner import run_scenario
from shop.bench.samples import Sample, Side
from shop.bench.scenario import Call, Scenario

pytestmark = pytest.mark.django_db


class Quiet:
    def start(self, label: str, total: int) -> None: ...
    def advance(self) -> None: ...
    def note(self, line: str) -> None: ...


@pytest.fixture
def requester():
    requester = Requester()
    yield requester
    requester.close()


def test_cache_operations_are_counted_on_the_real_redis():
    cache.delete_many(["bench:a", "bench:b"])
    with metrics.CacheCounter() as counter:
        assert cache.get("bench:a") is None  # miss
        cache.set("bench:a", 1)
        assert cache.get("bench:a") == 1  # hit
        assert cache.get_many(["bench:a", "bench:b"]) == {"bench:a": 1}  # a hit, a miss
        assert cache.get_or_set("bench:b", 2) == 2  # a miss, an add, a hit
        assert cache.get("bench:b", 2) == 2  # a hit, though the value is the default
        assert cache.has_key("bench:b") and not cache.has_key("bench:c")  # a hit, a miss
        cache.set_many({"bench:c": 3, "bench:d": 4})  # two keys written
        cache.delete_many(["bench:c", "bench:d"])  # two deleted
        cache.delete("bench:a")
    assert dict(counter.counts) == {
        metrics.CACHE_HITS: 5,
        metrics.CACHE_MISSES: 4,
        metrics.CACHE_SETS: 4,
        metrics.CACHE_DELETES: 3,
    }
    cache.delete("bench:b")
    with metrics.CacheCounter() as counter:
        pass
    assert not counter.counts
    assert cache.get("bench:b") is None  # the wrappers are gone: this counted nowhere
    assert not counter.counts


def test_the_projects_own_operations_count_as_the_cost_header_counts_them():
    """shop.cache's fill (a read that sees, a compare-and-set) and its drop (a marker per key):
    the bench counts them as X-Cache-Ops does, the drop as deletes, not as the SETs it sends."""
    with metrics.CacheCounter() as counter, shop_cache.counting() as ops:
        value, seen = shop_cache.get_seen("bench:page")  # a miss
        assert value is shop_cache.MISS
        assert shop_cache.set_if_unchanged("bench:page", 1, seen=seen, timeout=60)  # a set
        assert shop_cache.get("bench:page") == 1  # a hit
        shop_cache.invalidate("bench:page", "bench:other")  # two deletes
        assert shop_cache.get("bench:page") is shop_cache.MISS  # the marker: a miss
    assert dict(counter.counts) == {
        metrics.CACHE_HITS: 1,
        metrics.CACHE_MISSES: 2,
        metrics.CACHE_SETS: 1,
        metrics.CACHE_DELETES: 2,
    }
    assert (ops.hits, ops.misses, ops.sets, ops.deletes) == (1, 2, 1, 2)


def test_overlapping_counters_count_their_own_calls_and_leave_the_backend_as_it_was():
    original = RedisCache.get
    first, second = metrics.CacheCounter(), metrics.CacheCounter()
    first.__enter__()
    cache.get("bench:x")
    second.__enter__()
    cache.get("bench:x")
    first.__exit__(None, None, None)  # not in the order they were entered
    cache.get("bench:x")
    second.__exit__(None, None, None)
    assert first.counts == {metrics.CACHE_MISSES: 2}
    assert second.counts == {metrics.CACHE_MISSES: 2}
    assert RedisCache.get is original


def test_a_counter_in_another_thread_counts_only_that_threads_calls():
    counts = {}

    def worker(name: str, calls: int) -> None:
        with metrics.CacheCounter() as counter:
            for _ in range(calls):
                cache.get(f"bench:{name}")
        counts[name] = counter.counts[metrics.CACHE_MISSES]

    threads = [threading.Thread(target=worker, args=(n, c)) for n, c in (("a", 3), ("b", 5))]
    with metrics.CacheCounter() as outer:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert counts == {"a": 3, "b": 5}
    assert not outer.counts


def test_the_primary_share_is_the_default_alias_share_of_the_queries():
    def sample(default: int, replica: int) -> Sample:
        return Sample(ms=1.0, queries={"default": default, "replica": replica}, bytes=0, status=200)

    assert Side([sample(1, 3), sample(1, 3)]).primary_share == 0.25
    assert Side([sample(0, 0)]).primary_share is None


def test_a_requests_cache_operations_reach_its_sample(requester):
    def looks_up(**kwargs):
        cache.get("bench:during-request")

    request_started.connect(looks_up)
    try:
        sample = send(requester, Prepared.of(Call("GET", "/api/perf/ping/"), requester), flags={})
    finally:
        request_started.disconnect(looks_up)
    assert sample.metrics == {metrics.CACHE_MISSES: 1, metrics.CONNECTIONS_OPENED: 0}


@pytest.mark.django_db(transaction=True)
def test_connections_opened_are_read_from_postgresql(requester):
    sessions = metrics.SessionCounter()
    try:
        with metrics.counted(sessions) as counts:
            pass
        assert counts[metrics.CONNECTIONS_OPENED] == 0  # its own readings count nothing
        params = connections["default"].get_connection_params()
        with metrics.counted(sessions) as counts:
            for _ in range(3):
                psycopg.connect(
                    host=params.get("host"),
                    port=params.get("port"),
                    dbname=params["dbname"],
                    user=params.get("user"),
                    password=params.get("password"),
                ).close()
        assert counts[metrics.CONNECTIONS_OPENED] == 3
    finally:
        sessions.close()

    # A request on a closed connection opens a new one, and the sample says so.
    prepared = Prepared.of(Call("GET", "/api/products/"), requester)
    send(requester, prepared, flags={})  # the readers are opened before this one is timed
    assert send(requester, prepared, flags={}).metrics.get(metrics.CONNECTIONS_OPENED, 0) == 0
    connections.close_all()
    assert send(requester, prepared, flags={}).metrics[metrics.CONNECTIONS_OPENED] == 1


@pytest.mark.django_db(transaction=True)
def test_a_reading_waits_for_the_connections_opened_since_the_last_one_to_end():
    """A backend adds its session to the shared statistics when it first goes idle, unless
    another backend holds their lock just then; at the latest, it adds it as it exits. So a
    reading with `settle_s` (over HTTP) waits while a connection opened since the last reading
    is still there, until it ends or settle_s has passed: a connection closed meanwhile is in
    the reading either way."""
    params = connections["default"].get_connection_params()

    def connect() -> psycopg.Connection:
        return psycopg.connect(
            host=params.get("host"),
            port=params.get("port"),
            dbname=params["dbname"],
            user=params.get("user"),
            password=params.get("password"),
        )

    sessions = metrics.SessionCounter(settle_s=metrics.SETTLE_S)
    closing = threading.Event()
    try:
        before = sessions.read()
        closed_later = connect()

        def close() -> None:
            time.sleep(0.2)
            closing.set()
            closed_later.close()

        closer = threading.Thread(target=close)
        closer.start()
        assert sessions.read() - before == 1
        # Without the wait, the reading would have been taken 0.2 s before the close.
        assert closing.is_set()
        closer.join()
    finally:
        sessions.close()


def test_a_scenario_reports_counts_of_its_own_and_the_primary_share(products):
    scenario = Scenario(
        name="select_related",
        title="product list, with a count of its own",
        call=lambda: Call("GET", "/api/products/?page_size=5"),
        metrics=lambda response: {
            metrics.UNITS_OVERSOLD: len(response.json()["results"]),
            "stale_reads": 0,
        },
    )
    entry = run_scenario(
        Suite("select_related", [scenario]),
        0,
        scenario,
        requester=Requester(),
        plan=Plan(repeat=3, warmup=0),
        progress=Quiet(),
    )
    assert not entry.error
    on = entry.to_dict()["on"]
    assert on["metrics"][metrics.UNITS_OVERSOLD] == {"p50": 5, "max": 5, "total": 15}
    assert list(on["metrics"])[: len(metrics.COMMON)] == list(metrics.COMMON)
    assert on["metrics"][metrics.CACHE_HITS] == {"p50": 0, "max": 0, "total": 0}
    # A count of the scenario's own is reported when it is 0 too, not left out.
    assert on["metrics"]["stale_reads"] == {"p50": 0, "max": 0, "total": 0}
    # The test settings mirror the replica onto the primary: every query is the primary's.
    assert on["primary_share"] == 1.0
