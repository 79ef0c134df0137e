"""circuit_breaker: fail fast while the payment gateway is down, with one half-open probe.

The gateway is a real stub on loopback (shop/payment_gateway_stub.py) that counts the charge
requests it receives: "down" is one that answers after the client's timeout, one that answers
503, or a port nobody listens on. The breaker's state is in this run's Redis database
(config/settings/test.py); tests/conftest.py closes it before each test.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.models import Variant
from orders.models import Order, OrderEvent, Payment
from shop import payment_gateway, payment_gateway_stub, toggles
from shop.payment_gateway_stub import GatewayStub
from shop.techniques import circuit_breaker
from tests.factories import AddressFactory, UserFactory, VariantFactory

ROOT = Path(__file__).resolve().parents[2]
BREAKER = payment_gateway.BREAKER
STATES = [pytest.param(False, id="off"), pytest.param(True, id="on")]


@pytest.fixture(autouse=True)
def breaker_settings(settings):
    settings.CIRCUIT_BREAKER_FAILURES = 3
    settings.CIRCUIT_BREAKER_WINDOW_S = 30.0
    settings.CIRCUIT_BREAKER_OPEN_S = 30.0
    settings.PAYMENT_GATEWAY_TIMEOUT_S = 0.2
    return settings


@contextlib.contextmanager
def gateway(settings, **stub_options):
    stub = GatewayStub(**stub_options)
    with payment_gateway_stub.running(stub) as url:
        settings.PAYMENT_GATEWAY_URL = url
        yield stub


def free_port() -> int:
    """A port nobody listens on: the OS picks it, and it is closed again at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def charge(on: bool = True):
    with toggles.override(circuit_breaker=on):
        return payment_gateway.charge(
            idempotency_key=f"k-{uuid.uuid4().hex}", amount=Decimal("10.00")
        )


def outcome(on: bool = True) -> str:
    """The name of what a charge ended with: Charge, GatewayTimeout, GatewayCircuitOpen..."""
    try:
        return type(charge(on)).__name__
    except payment_gateway.PaymentError as exc:
        return type(exc).__name__


def trip(settings) -> None:
    """Open the breaker: as many failed charges as its threshold, at a closed port."""
    previous = settings.PAYMENT_GATEWAY_URL
    settings.PAYMENT_GATEWAY_URL = f"http://127.0.0.1:{free_port()}"
    for _ in range(settings.CIRCUIT_BREAKER_FAILURES):
        assert outcome() == "GatewayUnavailable"
    settings.PAYMENT_GATEWAY_URL = previous
    assert circuit_breaker.state(BREAKER) == circuit_breaker.OPEN


def wait_for_half_open(timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while circuit_breaker.state(BREAKER) != circuit_breaker.HALF_OPEN:
        assert time.monotonic() < deadline, "the breaker never became half-open"
        time.sleep(0.02)


def test_it_opens_after_n_timeouts_and_then_no_call_reaches_the_gateway(settings):
    with gateway(settings, latency_s=2.0) as stub:
        outcomes = [outcome() for _ in range(8)]
    assert outcomes == ["GatewayTimeout"] * 3 + ["GatewayCircuitOpen"] * 5
    assert stub.received == 3
    assert circuit_breaker.state(BREAKER) == circuit_breaker.OPEN


def test_off_every_call_goes_out_and_waits_for_its_timeout(settings):
    with gateway(settings, latency_s=2.0) as stub:
        outcomes = [outcome(on=False) for _ in range(8)]
    assert outcomes == ["GatewayTimeout"] * 8
    assert stub.received == 8
    assert circuit_breaker.state(BREAKER) == circuit_breaker.CLOSED  # nothing recorded
    assert circuit_breaker.client().keys(f"{settings.CIRCUIT_BREAKER_KEY_PREFIX}:*") == []


def test_off_ignores_an_open_breaker(settings):
    trip(settings)
    with gateway(settings) as stub:
        assert outcome(on=False) == "Charge"
    assert stub.received == 1


@pytest.mark.parametrize("down", ["503", "refused"])
def test_5xx_answers_and_refused_connections_count_as_failures(down, settings):
    if down == "503":
        with gateway(settings, outage_status=503) as stub:
            outcomes = [outcome() for _ in range(5)]
        assert stub.received == 3
    else:
        settings.PAYMENT_GATEWAY_URL = f"http://127.0.0.1:{free_port()}"
        outcomes = [outcome() for _ in range(5)]
    assert outcomes == ["GatewayUnavailable"] * 3 + ["GatewayCircuitOpen"] * 2


def test_declined_cards_and_refused_requests_are_answers_not_failures(settings):
    with gateway(settings, failure_rate=1.0) as stub:
        assert [outcome() for _ in range(6)] == ["PaymentDeclined"] * 6
    assert stub.received == 6
    with gateway(settings) as stub:
        payment_gateway.charge(idempotency_key="k-same", amount=Decimal("1.00"))
        # The same key with another amount: the gateway refuses it (409), it is not down.
        for amount in range(2, 8):
            with pytest.raises(payment_gateway.GatewayUnavailable, match="409"):
                payment_gateway.charge(idempotency_key="k-same", amount=Decimal(amount))
    assert circuit_breaker.state(BREAKER) == circuit_breaker.CLOSED


def test_failures_spread_beyond_the_window_do_not_open_it(settings):
    settings.CIRCUIT_BREAKER_WINDOW_S = 0.3
    settings.PAYMENT_GATEWAY_URL = f"http://127.0.0.1:{free_port()}"
    for _ in range(3):
        assert [outcome(), outcome()] == ["GatewayUnavailable"] * 2
        time.sleep(0.4)  # the window that started at the first of the two has ended
    assert circuit_breaker.state(BREAKER) == circuit_breaker.CLOSED


def test_half_open_lets_exactly_one_probe_through_and_its_success_closes_it(settings):
    settings.CIRCUIT_BREAKER_OPEN_S = 0.3
    settings.PAYMENT_GATEWAY_TIMEOUT_S = 2.0
    trip(settings)
    wait_for_half_open()
    callers = 12
    barrier = threading.Barrier(callers)
    outcomes: list[str] = []

    def buyer():
        barrier.wait()
        outcomes.append(outcome())

    # A slow but healthy gateway: the probe is still out when every other caller arrives.
    with gateway(settings, latency_s=0.5) as stub:
        threads = [threading.Thread(target=buyer) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert stub.received == 1
        assert sorted(outcomes) == ["Charge"] + ["GatewayCircuitOpen"] * (callers - 1)
        assert circuit_breaker.state(BREAKER) == circuit_breaker.CLOSED
        assert [outcome() for _ in range(3)] == ["Charge"] * 3
        assert stub.received == 4


def test_a_failed_probe_opens_it_again(settings):
    settings.CIRCUIT_BREAKER_OPEN_S = 0.3
    trip(settings)
    wait_for_half_open()
    with gateway(settings, outage_status=503) as stub:
        assert outcome() == "GatewayUnavailable"  # the probe
        assert circuit_breaker.state(BREAKER) == circuit_breaker.OPEN
        assert outcome() == "GatewayCircuitOpen"
        assert stub.received == 1
        wait_for_half_open()
        stub.outage_status = None  # the gateway is back
        assert outcome() == "Charge"
        assert circuit_breaker.state(BREAKER) == circuit_breaker.CLOSED


def test_a_probe_that_never_reports_back_frees_its_turn_after_its_ttl(settings):
    settings.CIRCUIT_BREAKER_OPEN_S = 0.1
    settings.CIRCUIT_BREAKER_PROBE_TTL_S = 0.3
    trip(settings)
    wait_for_half_open()
    # A process took the probe and died: its claim is in Redis, nobody will release it.
    keys = circuit_breaker._Keys.of(BREAKER)
    circuit_breaker.client().set(keys.probe, "dead-process", px=300)
    with gateway(settings) as stub:
        assert outcome() == "GatewayCircuitOpen"
        time.sleep(0.35)
        assert outcome() == "Charge"
    assert stub.received == 1
    assert circuit_breaker.state(BREAKER) == circuit_breaker.CLOSED


def test_concurrent_failures_across_threads_open_it_once(settings, caplog):
    settings.CIRCUIT_BREAKER_FAILURES = 5
    settings.PAYMENT_GATEWAY_URL = f"http://127.0.0.1:{free_port()}"
    barrier = threading.Barrier(20)

    def caller():
        barrier.wait()
        outcome()

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert circuit_breaker.state(BREAKER) == circuit_breaker.OPEN
    opened = [r for r in caplog.records if "circuit breaker payment_gateway opened" in r.message]
    assert len(opened) == 1


def test_another_process_sees_it_open_and_does_not_call(settings):
    """A subprocess with its own Redis connection, as a second gunicorn or Celery worker."""
    trip(settings)
    with gateway(settings) as stub:
        env = child_env(settings)
        script = (
            "import django, json; django.setup()\n"
            "from decimal import Decimal\n"
            "from shop import payment_gateway\n"
            "from shop.techniques import circuit_breaker\n"
            "try:\n"
            "    payment_gateway.charge(idempotency_key='k-child', amount=Decimal('1'))\n"
            "    outcome = 'Charge'\n"
            "except payment_gateway.PaymentError as exc:\n"
            "    outcome = type(exc).__name__\n"
            "print(json.dumps([outcome, circuit_breaker.state(payment_gateway.BREAKER)]))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == ["GatewayCircuitOpen", "open"]
    assert stub.received == 0


CHILD = """
import json, sys, time
import django
django.setup()
from decimal import Decimal
from shop import payment_gateway
start = float(sys.argv[1])
time.sleep(max(start - time.time(), 0))
try:
    payment_gateway.charge(idempotency_key=sys.argv[2], amount=Decimal("1.00"))
    outcome = "Charge"
except payment_gateway.PaymentError as exc:
    outcome = type(exc).__name__
print(json.dumps(outcome))
"""


def child_env(settings) -> dict[str, str]:
    """What a worker process of this test run has: the same Redis database and key prefix."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "TEST_QUEUE_SUFFIX": settings.TEST_QUEUE_SUFFIX,
        "TEST_CACHE_URL": settings.CACHES["default"]["LOCATION"],
        "PAYMENT_GATEWAY_URL": settings.PAYMENT_GATEWAY_URL,
    }


def test_half_open_lets_one_probe_through_across_processes(settings):
    """Four processes, each with its own Redis connection, call at the same instant once the
    open period is over: one charge reaches the gateway, three fail fast."""
    trip(settings)
    circuit_breaker.force_open(BREAKER, seconds=0.01)
    wait_for_half_open()  # the open period is over: the next call probes
    # Slow but healthy: the probe is still out when the other processes call.
    with gateway(settings, latency_s=1.5) as stub:
        start = time.time() + 6  # after every child has set Django up
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(start), f"k-child-{index}"],
                cwd=ROOT,
                env=child_env(settings),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for index in range(4)
        ]
        outcomes = []
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
    assert time.time() > start, "a child called before the agreed instant"
    assert sorted(outcomes) == ["Charge"] + ["GatewayCircuitOpen"] * 3
    assert stub.received == 1
    assert circuit_breaker.state(BREAKER) == circuit_breaker.CLOSED


def test_force_open_opens_it_for_the_given_time_and_retry_after_says_so(settings):
    circuit_breaker.force_open(BREAKER, seconds=7.5)
    assert circuit_breaker.state(BREAKER) == circuit_breaker.OPEN
    with gateway(settings) as stub, pytest.raises(payment_gateway.GatewayCircuitOpen) as raised:
        charge()
    assert stub.received == 0
    assert raised.value.retry_after_s == 8  # the rest of 7.5 s, rounded up
    circuit_breaker.reset(BREAKER)
    assert circuit_breaker.state(BREAKER) == circuit_breaker.CLOSED


def test_redis_down_fails_open_the_call_goes_out_as_if_closed(settings, caplog):
    """Decided: without its state the breaker lets every call through. A payment costs what
    it cost without a breaker, rather than every payment failing for a Redis outage."""
    settings.CIRCUIT_BREAKER_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    with gateway(settings) as stub:
        assert [outcome() for _ in range(2)] == ["Charge"] * 2
    assert stub.received == 2
    with gateway(settings, latency_s=2.0) as stub:
        assert [outcome() for _ in range(5)] == ["GatewayTimeout"] * 5
    assert stub.received == 5  # no breaker to open: each waited for its timeout
    assert any("Redis unavailable" in r.message for r in caplog.records)


@pytest.fixture
def buyer():
    user = UserFactory()
    AddressFactory(user=user)
    return user


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("short", STATES)
def test_the_api_answers_503_with_retry_after_and_writes_nothing_half(
    short, settings, buyer, api_client
):
    api_client.force_authenticate(buyer)
    variant = VariantFactory(stock=10)
    trip(settings)
    with gateway(settings) as stub:
        response = api_client.post(
            "/api/orders/",
            {"items": [{"sku": variant.sku, "quantity": 2}]},
            format="json",
            HTTP_X_PERF_TOGGLES=f"short_transactions={'on' if short else 'off'}",
        )
    assert stub.received == 0
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "payment_gateway_circuit_open"
    assert "Nothing was charged" in body["detail"]
    assert 1 <= int(response["Retry-After"]) <= 30
    assert Variant.objects.get(pk=variant.pk).stock == 10
    if not short:
        assert Order.objects.count() == 0 and Payment.objects.count() == 0
        return
    order = Order.objects.get()
    assert (body["order_id"], body["order_status"]) == (order.pk, "payment_failed")
    assert list(order.payments.values_list("status", flat=True)) == [Payment.Status.FAILED]
    last = order.events.order_by("id").last()
    assert (last.kind, last.data) == (
        OrderEvent.Kind.PAYMENT_FAILED,
        {"reason": "payment_gateway_circuit_open", "restocked_units": 2},
    )


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_an_order_is_still_placed(settings, buyer, api_client):
    settings.CIRCUIT_BREAKER_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    api_client.force_authenticate(buyer)
    variant = VariantFactory(stock=10)
    with gateway(settings) as stub:
        response = api_client.post(
            "/api/orders/", {"items": [{"sku": variant.sku, "quantity": 1}]}, format="json"
        )
    assert response.status_code == 201, response.json()
    assert (
        response.json()["status"] == "confirmed"
    )  # async_tasks held off in tests: all of it inline
    assert stub.captured_count == 1
