"""async_io: the shipping estimate asks three carriers one after another (off) or all at once
with a timeout each (on).

Every carrier is a real stub on loopback (shop/carrier_stub.py), in this process's threads. The
stubs record, in order, when each request arrived and left (a Journal): that the calls overlap
on and never overlap off is read from there, not from a clock. The same holds under the real
ASGI server (uvicorn in a subprocess).
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shop import carrier_stub
from shop.carrier_stub import CarrierStub, Journal

ROOT = Path(__file__).resolve().parents[2]
URL = "/api/shipping/quotes/"
QUERY = {"country": "de", "postcode": "10115", "weight_grams": 1200}
STATES = [pytest.param(False, id="off"), pytest.param(True, id="on")]
NAMES = ("rapid", "national", "economy")


def flag(on: bool) -> str:
    return f"async_io={'on' if on else 'off'}"


@contextlib.contextmanager
def carriers(settings, *, latencies=(0.0, 0.0, 0.0), journal=None, **options):
    """The three carriers, on free ports, in settings.SHIPPING_CARRIERS. `options`: a stub's
    keyword arguments by carrier name, `economy={"fail": True}`."""
    stubs = [
        CarrierStub(name, latency_s=latency, journal=journal, **options.get(name, {}))
        for name, latency in zip(NAMES, latencies, strict=True)
    ]
    with carrier_stub.running(*stubs) as urls:
        settings.SHIPPING_CARRIERS = urls
        yield {stub.name: stub for stub in stubs}


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def estimate(api_client, on: bool, **query):
    response = api_client.get(URL, {**QUERY, **query}, HTTP_X_PERF_TOGGLES=flag(on))
    assert response["X-Perf-Toggles"] == flag(on)  # the header reached the async view's context
    return response.status_code, response.json()


FULL_ANSWER = {
    "quotes": [
        {"carrier": "rapid", "service": "express", "price": "9.90", "currency": "EUR", "days": 1},
        {"carrier": "national", "service": "standard", "price": "6.30", "currency": "EUR", "days": 3},
        {"carrier": "economy", "service": "economy", "price": "4.40", "currency": "EUR", "days": 6},
    ],
    "unavailable": [],
    "complete": True,
}  # fmt: skip


def test_the_stub_quotes_by_weight_and_destination():
    stub = CarrierStub("national")
    assert stub.quote({"country": "DE", "postcode": "1", "weight_grams": 1000}) == (
        200,
        {"carrier": "national", "service": "standard", "price": "5.40", "currency": "EUR",
         "days": 3},
    )  # fmt: skip
    status, body = stub.quote({"country": "FR", "postcode": "1", "weight_grams": 1001})
    assert (status, body["price"], body["days"]) == (200, "11.34", 5)  # 2 kg, abroad
    assert stub.quote({"weight_grams": 0})[0] == 400
    assert CarrierStub("rapid", fail=True).quote({})[0] == 503
    with pytest.raises(ValueError):
        CarrierStub("nobody")


@pytest.mark.parametrize("on", STATES)
def test_every_carrier_answers_the_same_off_and_on(on, settings, api_client):
    with carriers(settings) as stubs:
        assert estimate(api_client, on) == (200, FULL_ANSWER)
    assert [stub.served for stub in stubs.values()] == [1, 1, 1]


def test_the_answer_is_identical_off_and_on(settings, api_client):
    with carriers(settings, latencies=(0.03, 0.02, 0.01)):
        answers = [estimate(api_client, on, country="fr", weight_grams=70_000) for on in (0, 1)]
    assert answers[0] == answers[1]
    assert [quote["days"] for quote in answers[0][1]["quotes"]] == [3, 5, 8]


@pytest.mark.parametrize("on", STATES)
def test_on_all_three_calls_are_in_flight_at_once_and_off_never_two(on, settings, api_client):
    """On, the stubs hold every request until all three are in: they are answered only
    because the calls overlap (else each would wait out the journal's 5 s and time out). Off,
    each call has left before the next arrives."""
    settings.CARRIER_TIMEOUT_S = 10.0
    journal = Journal(gather=3 if on else 0)
    with carriers(settings, latencies=(0.01, 0.01, 0.01), journal=journal):
        status, body = estimate(api_client, on)
    assert (status, body["complete"]) == (200, True)
    if on:
        assert journal.most_in_flight == 3
        assert [kind for kind, _carrier in journal.events[:3]] == ["start"] * 3
    else:
        assert journal.most_in_flight == 1
        assert journal.events == [(kind, name) for name in NAMES for kind in ("start", "end")]


@pytest.mark.parametrize("on", STATES)
def test_a_carrier_that_is_down_is_listed_and_the_others_answer(on, settings, api_client):
    with carriers(settings):
        settings.SHIPPING_CARRIERS = {
            **settings.SHIPPING_CARRIERS,
            "national": f"http://127.0.0.1:{closed_port()}",
        }
        status, body = estimate(api_client, on)
    assert status == 200
    assert [quote["carrier"] for quote in body["quotes"]] == ["rapid", "economy"]
    assert body["unavailable"] == [
        {"carrier": "national", "reason": "unreachable", "detail": "could not connect"}
    ]
    assert body["complete"] is False


@pytest.mark.parametrize("on", STATES)
def test_a_carrier_slower_than_the_timeout_is_listed_as_timed_out(on, settings, api_client):
    settings.CARRIER_TIMEOUT_S = 0.3
    with carriers(settings, latencies=(0.0, 0.0, 3.0)) as stubs:
        status, body = estimate(api_client, on)
        assert stubs["economy"].served == 0  # given up on before it answered
    assert status == 200
    assert [quote["carrier"] for quote in body["quotes"]] == ["rapid", "national"]
    assert body["unavailable"] == [
        {"carrier": "economy", "reason": "timeout", "detail": "no answer within 0.3 s"}
    ]


@pytest.mark.parametrize("on", STATES)
def test_a_carrier_answering_an_error_is_listed(on, settings, api_client):
    with carriers(settings, rapid={"fail": True}):
        status, body = estimate(api_client, on)
    assert status == 200
    assert body["unavailable"] == [
        {"carrier": "rapid", "reason": "error", "detail": "answered HTTP 503"}
    ]
    assert body["quotes"] == FULL_ANSWER["quotes"][1:]


@pytest.mark.parametrize("on", STATES)
def test_no_carrier_answering_is_a_503_that_says_which_and_why(on, settings, api_client):
    settings.CARRIER_TIMEOUT_S = 0.3
    with carriers(settings, latencies=(0.0, 3.0, 0.0), economy={"fail": True}):
        settings.SHIPPING_CARRIERS = {
            **settings.SHIPPING_CARRIERS,
            "rapid": f"http://127.0.0.1:{closed_port()}",
        }
        status, body = estimate(api_client, on)
    assert status == 503
    assert body["code"] == "carriers_unavailable"
    assert [(entry["carrier"], entry["reason"]) for entry in body["unavailable"]] == [
        ("rapid", "unreachable"),
        ("national", "timeout"),
        ("economy", "error"),
    ]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"country": "deu"}, {"country"}),
        ({"country": "", "postcode": ""}, {"country", "postcode"}),
        ({"postcode": "1" * 11}, {"postcode"}),
        ({"weight_grams": 0}, {"weight_grams"}),
        ({"weight_grams": 70_001}, {"weight_grams"}),
        ({"weight_grams": "heavy"}, {"weight_grams"}),
        ({"weight_grams": "1" * 40}, {"weight_grams"}),
    ],
)
@pytest.mark.parametrize("on", STATES)
def test_bad_input_is_a_400_with_field_messages_and_asks_no_carrier(
    on, query, fields, settings, api_client
):
    with carriers(settings) as stubs:
        response = api_client.get(URL, {**QUERY, **query}, HTTP_X_PERF_TOGGLES=flag(on))
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert all(isinstance(messages, list) for messages in response.json().values())
    assert sum(stub.served for stub in stubs.values()) == 0


def test_a_missing_parameter_is_named(api_client):
    response = api_client.get(URL, {"country": "de"})
    assert response.status_code == 400
    assert set(response.json()) == {"postcode", "weight_grams"}


def test_the_schema_documents_the_estimate(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"][URL]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == set(QUERY)


# --- under the ASGI server (uvicorn in a subprocess) ------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def uvicorn(urls: dict[str, str]):
    """The Procfile's `asgi` command on a free port, pointed at this test's carriers."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "CARRIER_TIMEOUT_S": "10",
        **{f"CARRIER_{name.upper()}_URL": url for name, url in urls.items()},
    }
    env.pop("PYTEST_VERSION", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("uvicorn")), "config.asgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/perf/ping/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise AssertionError(process.communicate()[0].decode()[-3000:]) from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def ask(base: str, on: bool) -> tuple[int, dict]:
    import json

    query = "&".join(f"{key}={value}" for key, value in QUERY.items())
    request = urllib.request.Request(f"{base}{URL}?{query}", headers={"X-Perf-Toggles": flag(on)})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


@pytest.mark.slow
def test_under_uvicorn_on_overlaps_the_calls_and_off_does_not(settings):
    journal = Journal()
    with carriers(settings, latencies=(0.01, 0.01, 0.01), journal=journal) as stubs:
        urls = dict(settings.SHIPPING_CARRIERS)
        with uvicorn(urls) as base:
            off = ask(base, on=False)
            assert journal.most_in_flight == 1
            journal.gather = 3  # from here, a request waits for the other two
            on = ask(base, on=True)
            assert journal.most_in_flight == 3
    assert off == on == (200, FULL_ANSWER)
    assert [stub.served for stub in stubs.values()] == [2, 2, 2]


# --- manage.py carrier_stubs (the Procfile's `carriers`) --------------------------------------


def test_the_carrier_stubs_command_serves_each_carrier_on_its_urls_port_and_stands_by_after():
    from shop.devstack.carriers import carriers_ping

    ports = [free_port() for _ in NAMES]
    env = {
        **os.environ,
        "CARRIER_STUB_LATENCIES_MS": "0,0,0",
        **{
            f"CARRIER_{n.upper()}_URL": f"http://127.0.0.1:{p}"
            for n, p in zip(NAMES, ports, strict=True)
        },
    }
    env.pop("PYTEST_VERSION", None)
    command = [sys.executable, "manage.py", "carrier_stubs"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    second = None
    try:
        assert "carrier stub rapid on" in first.stdout.readline()
        deadline = time.monotonic() + 20
        while not carriers_ping(ports):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        # A second one (`make serve` after `devstack up`) finds them answering and waits.
        second = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert "standing by" in second.stdout.readline()
        assert second.poll() is None
    finally:
        for process in (first, second):
            if process is not None:
                process.terminate()
                process.wait(10)
                process.stdout.close()
