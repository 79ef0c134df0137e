"""Bad input from outside never gets a 500 or a page that is not JSON, and changes nothing.

Each probe in tests/probes.py is one class of bug: a JSON body nested past the decoder's
recursion limit, crafted cursors, more form fields or files than Django parses, bodies and
uploads over the cap, headers no client should send, unknown URLs. Here they go through the
test settings in this process, and through the local (DEBUG and the debug toolbar), load-test
and production settings in a subprocess each, on this test's database.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import ProductFactory, UserFactory, VariantFactory
from tests.probes import EXPECTED_STATUS, Context, probes, request, row_counts

ROOT = Path(__file__).resolve().parents[1]
PROBE_NAMES = sorted(probes(Context("t", "t", 1)))


@pytest.fixture
def ctx(db) -> Context:
    customer, staff = UserFactory(), UserFactory(is_staff=True)
    product = ProductFactory()
    VariantFactory(product=product)
    return Context(
        customer_token=Token.objects.create(user=customer).key,
        staff_token=Token.objects.create(user=staff).key,
        product_id=product.pk,
    )


def assert_json_4xx(name: str, status: int, content_type: str, body: str) -> None:
    assert 400 <= status < 500, f"{name}: {status} {body[:200]}"
    assert content_type.startswith("application/json"), f"{name}: {content_type} {body[:200]}"
    if name in EXPECTED_STATUS:
        assert status == EXPECTED_STATUS[name], f"{name}: {status} {body[:200]}"


@pytest.mark.parametrize("name", PROBE_NAMES)
def test_bad_input_gets_a_json_4xx_and_changes_nothing(ctx, name):
    method, path, kwargs = probes(ctx)[name]
    before = row_counts()
    # As a server answers: an exception becomes a 500 instead of being raised in the test.
    response = request(Client(raise_request_exception=False), method, path, kwargs)
    body = response.content.decode(errors="replace")
    assert_json_4xx(name, response.status_code, response.get("Content-Type", ""), body)
    assert "detail" in json.loads(body) or response.status_code == 400
    assert row_counts() == before


def test_a_url_without_its_slash_is_named_in_the_404(ctx):
    method, path, kwargs = probes(ctx)["POST without the trailing slash"]
    response = request(Client(raise_request_exception=False), method, path, kwargs)
    assert response.json() == {
        "detail": "Not found. The API's URLs end with a slash: /api/orders/",
        "code": "not_found",
    }


def test_a_large_upload_is_refused_before_it_is_read(ctx, monkeypatch):
    # The 413 comes from the declared length: the multipart parser never runs, so nothing is
    # spooled to disk (Django writes uploads past FILE_UPLOAD_MAX_MEMORY_SIZE to a temp file).
    from django.http import multipartparser

    def never(*args, **kwargs):
        raise AssertionError("the upload was parsed")

    monkeypatch.setattr(multipartparser.MultiPartParser, "parse", never)
    method, path, kwargs = probes(ctx)["large file upload"]
    response = getattr(Client(raise_request_exception=False), method)(path, **kwargs)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def _subprocess_env(settings_module: str) -> dict[str, str]:
    """This test's database (committed rows, so transaction=True) under another settings module."""
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_VERSION"}
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DATABASE_URL=url,
        DATABASE_REPLICA_URL=url,
        DJANGO_SECRET_KEY="a-key-for-this-test-only",
        PERF_TOGGLES="",
    )
    return env


def _run(settings_module: str, *args: str, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.probes", *args],
        cwd=ROOT,
        env={**_subprocess_env(settings_module), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "settings_module",
    ["config.settings.local", "config.settings.loadtest", "config.settings.production"],
)
def test_every_settings_module_keeps_the_error_contract(settings_module):
    customer, staff = UserFactory(), UserFactory(is_staff=True)
    product = ProductFactory()
    VariantFactory(product=product)
    ctx = {
        "customer_token": Token.objects.create(user=customer).key,
        "staff_token": Token.objects.create(user=staff).key,
        "product_id": product.pk,
    }
    answer = _run(settings_module, "send", json.dumps(ctx))
    for name, result in answer["results"].items():
        assert_json_4xx(name, result["status"], result["content_type"], result["body"])
        # What a request cost the database is shown only where settings allow it.
        production = settings_module == "config.settings.production"
        expected = [] if production else ["Server-Timing", "X-DB-Queries"]
        assert result["cost headers"] == expected, name
    assert answer["after"] == answer["before"]
    assert set(answer["results"]) == set(PROBE_NAMES)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sessions_in_redis", [False, True], ids=["db sessions", "redis sessions"])
def test_the_debug_toolbar_records_no_credentials(settings, sessions_in_redis):
    password = "Correct-Horse-7731"
    # Hashed as the local settings check it (the test settings hash with MD5, for speed).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = UserFactory(password=password)
    broker = "Broker-Pass-99"  # no task is sent: the URL is only shown, never used
    answer = _run(
        "config.settings.local",
        "toolbar",
        user.username,
        password,
        BROKER_PASSWORD=broker,
        CELERY_BROKER_URL=f"redis://:{broker}@127.0.0.1:1/15",
        # rate_limiting off, as in the test process (tests/conftest.py): its logins would count
        # against the login limit of 127.0.0.1 that the live-server test below meets.
        PERF_TOGGLES=f"session_store={'on' if sessions_in_redis else 'off'},rate_limiting=off",
    )
    assert answer["leaked"] == []
    assert answer["unrendered panels"] == []
    # It still records: the API requests, with their token and session lookups (masked).
    assert "/api/orders/" in answer["requests"]
    assert not any(url.startswith("/api/auth/") for url in answer["requests"])
    assert answer["token queries"] >= 1
    # The session read: a query of django_session, or a get on the sessions' cache alias.
    if sessions_in_redis:
        assert answer["session cache calls"] >= 1
        assert answer["session queries"] == 0
    else:
        assert answer["session queries"] >= 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_live_server_answers_json_too(tmp_path):
    """gunicorn under the production settings, as a client meets it: what gunicorn refuses
    before Django sees the request is JSON too (gunicorn.conf.py)."""
    import http.client
    import re
    import time

    log = tmp_path / "gunicorn.log"
    env = {**_subprocess_env("config.settings.production"), "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application"]
            + ["--bind", "127.0.0.1:0", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not (port := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

        def ask(method: str, path: str, body: bytes | None = None, headers=None):
            connection = http.client.HTTPConnection("127.0.0.1", int(port[1]), timeout=30)
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            answer = (response.status, response.getheader("Content-Type"), response.read())
            headers = dict(response.getheaders())
            connection.close()
            return (*answer, headers)

        before = row_counts()
        answers = {
            "request line too long": ask("GET", "/api/products/?search=" + "x" * 5000),
            "unknown URL": ask("GET", "/api/no-such-thing/"),
            "deep JSON": ask(
                "POST",
                "/api/auth/token/",
                b"[" * 5000 + b"]" * 5000,
                {"Content-Type": "application/json"},
            ),
            "large body": ask(
                "POST",
                "/api/auth/token/",
                b"x" * 3_000_000,
                {"Content-Type": "application/x-www-form-urlencoded"},
            ),
        }
        for name, (status, content_type, body, _) in answers.items():
            assert 400 <= status < 500, (name, status, body[:200])
            assert content_type == "application/json", (name, content_type, body[:200])
            json.loads(body)
        assert answers["large body"][0] == 413
        # Production: no cost headers for anyone.
        status, _, _, headers = ask("GET", "/api/perf/ping/")
        assert status == 200
        assert "X-DB-Queries" not in headers
        assert "Server-Timing" not in headers
        assert row_counts() == before
    finally:
        server.terminate()
        server.wait(timeout=30)
