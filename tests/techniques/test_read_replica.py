"""read_replica on the real streaming replica: reads routed there, writes and a user's reads
after their write on the primary, a lagging or dead replica answered by the primary.

Every test here commits its rows (transaction=True) and waits until the replica has replayed
them before it reads: the replica can never see a test's uncommitted transaction.
"""

import logging
import socket
import time
from contextlib import contextmanager

import pytest
from django.core.cache import cache
from django.db import connections, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Product
from shop import replication, toggles
from shop.bench import http
from shop.bench.discovery import Suite
from shop.bench.scenarios import read_replica as scenarios
from shop.perf_headers import parse_query_counts
from shop.techniques import read_replica
from tests.factories import AddressFactory, ProductFactory, UserFactory, VariantFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

LIST = "/api/products/?page_size=5"


@pytest.fixture(autouse=True)
def fresh_probe(settings):
    """Each test starts with no probe cached: the first routed read probes the replica. The
    lag bound is lifted (the lag test sets its own): the replica server is shared, and another
    run's bulk load can put it a second behind."""
    settings.READ_REPLICA_MAX_LAG_SECONDS = 60
    read_replica.health.reset()
    yield
    read_replica.health.reset()


@pytest.fixture
def catalog():
    for _ in range(3):
        VariantFactory(product=ProductFactory())
    replication.wait_for_replay()


@pytest.fixture
def buyer():
    """A customer with a token, an address and a variant in stock, all replayed."""
    user = UserFactory()
    AddressFactory(user=user)
    variant = VariantFactory(product=ProductFactory(), stock=50)
    token = Token.objects.create(user=user)
    replication.wait_for_replay()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client, variant


def get(client, path, side):
    return client.get(path, HTTP_X_PERF_TOGGLES=f"read_replica={side}")


def queries(response) -> dict[str, int]:
    return parse_query_counts(response["X-DB-Queries"])


@contextmanager
def statements():
    """(alias, sql) of every statement sent on either database while the block runs."""
    sent = []

    def recorder(alias):
        def record(execute, sql, params, many, context):
            sent.append((alias, sql))
            return execute(sql, params, many, context)

        return record

    with (
        connections["default"].execute_wrapper(recorder("default")),
        connections["replica"].execute_wrapper(recorder("replica")),
    ):
        yield sent


def test_the_replica_alias_is_the_streaming_standby_holding_the_test_database():
    primary, replica = connections["default"], connections["replica"]
    with replica.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), current_database(), inet_server_port()")
        in_recovery, name, port = cursor.fetchone()
    assert in_recovery is True
    assert name == primary.settings_dict["NAME"]
    assert str(port) == replica.settings_dict["PORT"] != primary.settings_dict["PORT"]


def test_off_every_query_reads_the_primary_on_the_reads_go_to_the_replica(catalog):
    client = APIClient()
    with statements() as sent:
        off = get(client, LIST, "off")
    assert {alias for alias, _ in sent} == {"default"}
    assert queries(off)["replica"] == 0
    with statements() as sent:
        on = get(client, LIST, "on")
    # The first routed read probes the lag, on a connection of the probe's own (not counted
    # here); then the list's own queries, all on the replica.
    assert read_replica.health.lag is not None
    assert {alias for alias, _ in sent} == {"replica"}
    assert queries(on) == {"default": 0, "replica": queries(off)["default"]}
    assert on.json() == off.json() and len(on.json()["results"]) == 3


def test_outside_a_request_every_read_is_the_primarys(catalog):
    with statements() as sent:
        assert Product.objects.count() == 3
    assert [alias for alias, _ in sent] == ["default"]


def test_a_streamed_body_is_read_after_the_request_so_on_the_primary(catalog):
    """The request's scope closes when its view returns; the CSV export's rows are read while
    the body is sent, outside it."""
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))
    response = get(staff, "/api/staff/orders/export.csv", "on")
    assert response.streaming
    with statements() as sent:
        b"".join(response.streaming_content)
    assert sent and {alias for alias, _ in sent} == {"default"}


def test_reads_inside_a_transaction_on_the_primary_stay_there(catalog):
    """So a service's atomic() reads its own uncommitted writes, and so do the plain
    (rolled-back) tests of the rest of the suite."""
    seen = []

    def view(request):
        seen.append(Product.objects.all().db)
        with transaction.atomic():
            seen.append(Product.objects.all().db)
        return HttpResponse()

    with toggles.override(read_replica=True):
        read_replica.Middleware(view)(RequestFactory().get("/"))
    assert seen == ["replica", "default"]


def test_a_write_and_everything_in_its_request_run_on_the_primary(buyer):
    client, variant = buyer
    placed = client.post(
        "/api/orders/",
        {"items": [{"sku": variant.sku, "quantity": 1}]},
        format="json",
        HTTP_X_PERF_TOGGLES="read_replica=on",
    )
    assert placed.status_code == 201
    # The token lookup and the stock check too: a request that writes reads what it writes.
    assert queries(placed)["replica"] == 0 and queries(placed)["default"] > 0


def test_the_users_next_read_goes_to_the_primary_for_the_pin_window(buyer, settings):
    client, variant = buyer
    order = client.post(
        "/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json"
    ).json()
    replication.wait_for_replay()
    with statements() as sent:
        after = get(client, f"/api/orders/{order['id']}/", "on")
    assert after.status_code == 200
    # The token lookup is on the replica (whose user is it?), then the pinned request reads
    # the primary.
    assert sent[0][0] == "replica" and "authtoken_token" in sent[0][1]
    assert {alias for alias, _ in sent[1:]} == {"default"}
    # Another user's read is not pinned.
    other = UserFactory()
    replication.wait_for_replay()
    stranger = APIClient()
    stranger.force_authenticate(other)
    assert queries(get(stranger, LIST, "on"))["default"] == 0


def test_a_write_rolled_back_by_an_outer_transaction_pins_nobody(buyer):
    """The marker waits for the commit: a write that an outer transaction rolls back (the
    bench's write pairs run so) left nothing to read back, so the user's reads stay routed."""
    client, variant = buyer
    user_id = Token.objects.get(key=client._credentials["HTTP_AUTHORIZATION"].split()[1]).user_id
    with transaction.atomic():
        placed = client.post(
            "/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json"
        )
        transaction.set_rollback(True)
    assert placed.status_code == 201
    assert cache.get(read_replica._marker(user_id)) is None
    client.post("/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json")
    assert cache.get(read_replica._marker(user_id)) is not None  # committed: pinned


@pytest.mark.parametrize("pin_seconds, stale", [(0, True), (5, False)])
def test_a_replica_2s_behind_misses_a_new_order_unless_read_your_writes_pins(
    buyer, settings, pin_seconds, stale
):
    """The stale read read-your-writes prevents: with the marker off (pin 0) the customer's
    next request reads the replica, which has not replayed the order yet, and answers 404.
    The lag bound is raised so that only the marker stands between the user and the replica."""
    client, variant = buyer
    settings.READ_REPLICA_PIN_SECONDS = pin_seconds
    with replication.apply_delay(2):
        placed = client.post(
            "/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json"
        )
        assert placed.status_code == 201
        order_id = placed.json()["id"]
        with statements() as sent:
            detail = get(client, f"/api/orders/{order_id}/", "on")
        history = get(client, "/api/orders/", "on")
    seen = (detail.status_code, [(alias, sql[:60]) for alias, sql in sent])
    if stale:
        assert detail.status_code == 404, seen
        assert order_id not in [o["id"] for o in history.json()["results"]], seen
        assert queries(detail)["default"] == 0, seen
    else:
        assert detail.status_code == 200 and detail.json()["id"] == order_id
        assert [o["id"] for o in history.json()["results"]] == [order_id]
        assert queries(detail)["default"] > 0


def test_a_token_created_a_moment_ago_is_found_on_the_primary():
    user = UserFactory()
    replication.wait_for_replay()
    with replication.apply_delay(2):
        token = Token.objects.create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        with statements() as sent:
            response = get(client, "/api/orders/", "on")
    assert response.status_code == 200
    lookups = [alias for alias, sql in sent if "authtoken_token" in sql]
    assert lookups == ["replica", "default"]  # missed on the replica, found on the primary


def test_over_the_lag_bound_reads_go_to_the_primary(catalog, settings, caplog):
    settings.READ_REPLICA_MAX_LAG_SECONDS = 0.5
    client = APIClient()
    with replication.apply_delay(2):
        ProductFactory()  # a commit the replica holds back
        replication.wait_for(replication.primary_lsn(), received_only=True)
        # The probe measures from the last commit replayed, older than this pause.
        time.sleep(0.6)
        read_replica.health.reset()
        with caplog.at_level(logging.WARNING, logger=read_replica.__name__):
            lagging = get(client, LIST, "on")
    assert lagging.status_code == 200
    assert queries(lagging)["replica"] == 0  # the probe has a connection of its own
    assert queries(lagging)["default"] > 0
    assert "behind" in caplog.text
    assert lagging.json() == get(client, LIST, "off").json()  # the primary's rows


def closed_port() -> int:
    """A loopback port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def replica_refusing():
    """The replica alias points at a closed port, for real: every connect is refused."""
    replica = connections["replica"]
    port = replica.settings_dict["PORT"]
    replica.close()
    replica.settings_dict["PORT"] = str(closed_port())
    try:
        yield
    finally:
        replica.close()
        replica.settings_dict["PORT"] = port


def test_a_replica_that_is_down_is_skipped_with_one_warning_per_period(catalog, caplog):
    client = APIClient()
    expected = get(client, LIST, "off").json()
    with replica_refusing(), caplog.at_level(logging.WARNING, logger=read_replica.__name__):
        first, second = get(client, LIST, "on"), get(client, LIST, "on")
    for response in (first, second):
        assert response.status_code == 200 and response.json() == expected
        assert queries(response)["replica"] == 0
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # the second request did not try again within the period


def test_a_replica_that_dies_between_probes_costs_a_retry_not_a_500(catalog, settings, caplog):
    settings.READ_REPLICA_PROBE_SECONDS = 60  # the probe that found it well stays trusted
    client = APIClient(raise_request_exception=False)
    expected = get(client, LIST, "off").json()
    assert queries(get(client, LIST, "on"))["default"] == 0  # probed: well
    with replica_refusing(), caplog.at_level(logging.WARNING, logger=read_replica.__name__):
        response = get(client, LIST, "on")
        assert read_replica.health.down_since is not None
        after = get(client, LIST, "on")
    assert response.status_code == 200 and response.json() == expected
    assert after.status_code == 200 and queries(after)["replica"] == 0
    assert "unreachable" in caplog.text


def test_the_bench_over_http_skips_the_read_back_that_commits():
    """Over HTTP no metrics() runs, so nothing would cancel the orders it places."""
    (read_back,) = [s for s in scenarios.EXTRA_SCENARIOS if s.commits]
    lines = []
    pairs = http.run_suite(
        f"http://127.0.0.1:{closed_port()}",  # never reached: the scenario is skipped first
        Suite(name="read_replica", scenarios=[read_back]),
        clients=1,
        requests_per_side=2,
        out=lines.append,
    )
    assert pairs == [] and "skipped read_replica" in lines[0]


def test_the_marker_is_read_only_by_a_request_that_reads(buyer):
    """The write marker is read at the first read that would go to the replica: a request
    whose token's user is already known (local_cache) and that reads nothing else asks Redis
    nothing; one that reads asks once."""
    from shop.bench.metrics import CACHE_MISSES, CacheCounter

    client, _variant = buyer
    flags = "read_replica=on,local_cache=on"
    client.get("/api/perf/ping/", HTTP_X_PERF_TOGGLES=flags)  # the token's user now in L1
    with CacheCounter() as ping_ops:
        ping = client.get("/api/perf/ping/", HTTP_X_PERF_TOGGLES=flags)
    with CacheCounter() as list_ops:
        listed = client.get("/api/orders/", HTTP_X_PERF_TOGGLES=flags)
    assert (ping.json(), sum(queries(ping).values())) == ({"authenticated": True}, 0)
    assert dict(ping_ops.counts) == {}
    assert listed.status_code == 200 and queries(listed)["replica"] > 0
    assert dict(list_ops.counts) == {CACHE_MISSES: 1}
