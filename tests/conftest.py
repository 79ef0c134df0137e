import contextlib
import dataclasses

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from shop import carrier_stub, payment_gateway_stub, toggles
from tests.factories import (
    AddressFactory,
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    UserFactory,
)


@pytest.fixture(autouse=True)
def _replica_only_where_listed(request, settings):
    """Reads go to the replica only in a test that lists it, as Django requires of every
    database a test uses: `@pytest.mark.django_db(databases=["default", "replica"])`. Elsewhere
    the read_replica technique finds no replica and reads the primary: a test that commits rows
    and reads them at once would otherwise race the replication (shop/replication.py waits for it)."""
    marker = request.node.get_closest_marker("django_db")
    databases = marker.kwargs.get("databases") if marker else None
    if databases != "__all__" and "replica" not in (databases or ()):
        settings.READ_REPLICA_DATABASE = None


# Techniques whose registered default (on) would change what most tests see; each says why
# next to its name. The fixture below turns their defaults off unless a test is marked
# `registered_defaults`; a technique's own tests switch it on with an override or the header.
OFF_IN_TESTS = (
    # A placed order would wait for a Celery worker to be paid.
    "async_tasks",
    # A cached catalog read runs no query: the tests that count a read's queries would see 0.
    "cache_aside",
    # A miss takes a fill lock and stores an Entry: one more cache set than the tests that
    # count a cached read's operations expect.
    "stampede_protection",
    # A staff price or stock change would store the product page rebuilt instead of deleting
    # it: the invalidation tests expect the next read to miss.
    "write_through",
    # Tests place orders and log in far faster than a customer, all from 127.0.0.1.
    "rate_limiting",
    # The sales report would show the orders a test wrote only after a refresh of its views.
    "materialized_view",
    # A catalog GET would carry ETag and Cache-Control headers, and a private one no-store.
    "http_caching",
    # A client sending Accept-Encoding would get compressed bytes and a Vary header.
    "compression",
    # A token or a category tree kept in the process: a test's second request would run
    # fewer queries than its first.
    "local_cache",
    # Sessions in Redis: a session-authenticated request (the admin's) would read no table,
    # and the tests of its first query (an exhausted pool answers 503) see none.
    "session_store",
)


@pytest.fixture(autouse=True)
def _defaults_off_in_tests(request, monkeypatch):
    """The techniques of OFF_IN_TESTS are off by default in tests. Their registry default is
    changed, not PERF_TOGGLES or an override: every thread a test starts sees it (the live
    server's, the concurrency tests'), and the X-Perf-Toggles echo, which names what differs
    from the defaults, stays what the tests expect. A technique's own tests (and any test)
    switch it on with an override or the header."""
    if request.node.get_closest_marker("registered_defaults"):
        return
    for name in OFF_IN_TESTS:
        toggle = toggles.get(name)
        monkeypatch.setitem(toggles._registry, name, dataclasses.replace(toggle, default=False))


@pytest.fixture(autouse=True)
def _cache_empty():
    """Every test starts with an empty cache: the entries of this run's prefix (the test
    settings give each run its own) are deleted, so an entry an earlier test cached never
    answers for this test's rows. Nothing to do when Redis is down (the outage tests).
    The process's own caches (local_cache's L1) are emptied too."""
    from django.conf import settings
    from django.core.cache import caches
    from redis.exceptions import RedisError

    from shop.techniques import local_cache

    local_cache.clear()

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    try:
        client = caches["default"]._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    except (RedisError, OSError):
        pass


@pytest.fixture(scope="session", autouse=True)
def _view_counts_dropped():
    """The product views this run's requests counted in Redis (write_behind, on by default)
    are the run's own: dropped at its end, so the broker's test database keeps no hash per run."""
    yield
    from redis.exceptions import RedisError

    from shop.techniques import write_behind

    with contextlib.suppress(RedisError, OSError):
        write_behind.discard()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The order event log is partitioned by month (table_partitioning) and refuses an event for
    a month without a partition; the migration makes this month's and the next three only. Tests
    that freeze the clock in the past write events there too, so the test database gets the
    months from 2024 on."""
    from datetime import date

    from shop.techniques import table_partitioning

    with django_db_blocker.unblock():
        table_partitioning.ensure(date(2024, 1, 1), date.today())


@pytest.fixture(scope="session", autouse=True)
def payment_gateway():
    """Every order a test places is charged at a real stub gateway on loopback (a thread of
    this process), answering at once and never failing. Tests of slow or failing gateways
    start stubs of their own."""
    stub = payment_gateway_stub.GatewayStub()
    with payment_gateway_stub.running(stub) as url, override_settings(PAYMENT_GATEWAY_URL=url):
        yield stub


@pytest.fixture(scope="session", autouse=True)
def shipping_carriers():
    """The shipping estimate's carriers (async_io): real stubs on loopback, answering at once.
    Tests of slow, failing or missing carriers start stubs of their own."""
    stubs = [carrier_stub.CarrierStub(name) for name in carrier_stub.RATES]
    with carrier_stub.running(*stubs) as urls, override_settings(SHIPPING_CARRIERS=urls):
        yield stubs


@pytest.fixture
def celery_worker(tmp_path):
    """Start real Celery workers on this run's queues: `celery_worker("email", pool="solo")`.
    The queues are purged first and every worker is stopped at the end (tests/workers.py)."""
    from config.celery_app import app as celery_app
    from tests import workers

    celery_app.control.purge()
    started: list[workers.Worker] = []

    def start(*queues: str, **options) -> workers.Worker:
        worker = workers.start_worker(*queues, log_dir=tmp_path / "workers", **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def smtp_server(tmp_path):
    """A real SMTP server of this test's own on a free port (shop/smtp_sink.py), keeping each
    message: `celery_worker("email", env=smtp_server.environment())`, `smtp_server.messages()`.
    Without it, tests send mail to Django's in-memory backend."""
    from shop import smtp_sink

    with smtp_sink.running(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def customer(db):
    user = UserFactory()
    AddressFactory(user=user)
    return user


@pytest.fixture
def customer_client(customer) -> APIClient:
    client = APIClient()
    client.force_authenticate(customer)
    return client


@pytest.fixture
def staff_client(db) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


@pytest.fixture
def products(db):
    """Twelve products over three categories and four brands: each category and brand is
    shared by several rows, so a query per row shows against one per table."""
    categories = CategoryFactory.create_batch(3)
    brands = BrandFactory.create_batch(4)
    return [ProductFactory(category=categories[i % 3], brand=brands[i % 4]) for i in range(12)]


@pytest.fixture(autouse=True)
def _payment_circuit_closed():
    """Every test starts with the payment gateway's circuit breaker closed: the failures an
    earlier test provoked (a gateway that timed out) never make a later one's charge fail fast."""
    from shop import payment_gateway
    from shop.techniques import circuit_breaker

    circuit_breaker.reset(payment_gateway.BREAKER)
