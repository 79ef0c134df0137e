"""session_store: sessions in PostgreSQL (off) or Redis (on) behave the same (login, a
session-authenticated request, logout, expiry), cost no session query on, are read by any
process, and a sessions Redis that is down is a 503 for a login and anonymous for a read,
never a 500."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from shop import toggles
from shop.private_broker import PrivateBroker
from shop.techniques import session_store
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-Horse-7731"
SIDES = [pytest.param(False, id="db"), pytest.param(True, id="redis")]

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(password=PASSWORD)


def _log_in(client: Client, user) -> str:
    """The browsable API's login form, as a browser posts it; the new session's key."""
    response = client.post("/api/auth/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client.cookies["sessionid"].value


def _in_database(key: str) -> bool:
    return Session.objects.filter(session_key=key).exists()


def _in_redis(key: str) -> bool:
    return (
        caches["sessions"].get(session_store.RedisSessionStore.cache_key_prefix + key) is not None
    )


@pytest.mark.parametrize("on", SIDES)
def test_login_an_authenticated_request_and_logout_behave_the_same(user, on):
    client = Client()
    with toggles.override(session_store=on):
        key = _log_in(client, user)
        assert (_in_redis(key), _in_database(key)) == (on, not on)
        assert client.get("/api/perf/ping/").json() == {"authenticated": True}
        assert client.get("/api/orders/").status_code == 200
        response = client.post("/api/auth/logout/")
        assert response.status_code in (200, 302)
        assert not _in_redis(key) and not _in_database(key)
        assert client.get("/api/perf/ping/").json() == {"authenticated": False}
        assert client.get("/api/orders/").status_code in (401, 403)


@pytest.mark.parametrize("on", SIDES)
def test_a_session_of_one_store_is_unknown_to_the_other(user, on):
    """Flipping the toggle logs out the users of the other store: sessions do not move."""
    client = Client()
    with toggles.override(session_store=on):
        _log_in(client, user)
    with toggles.override(session_store=not on):
        assert client.get("/api/perf/ping/").json() == {"authenticated": False}


@pytest.mark.parametrize("on", SIDES)
def test_a_session_authenticated_request_costs_a_session_query_only_off(user, on):
    client = Client()
    with toggles.override(session_store=on):
        _log_in(client, user)
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/perf/ping/")
    assert response.json() == {"authenticated": True}
    statements = [q["sql"] for q in queries]
    session_reads = [sql for sql in statements if '"django_session"' in sql]
    assert len(session_reads) == (0 if on else 1)
    assert len(statements) == (1 if on else 2)  # + the user
    assert response["X-DB-Queries"].startswith(f"default={1 if on else 2}")


@pytest.mark.parametrize("on", SIDES)
def test_an_expired_session_is_anonymous(user, on):
    with toggles.override(session_store=on):
        store = session_store.store_class()()
        store[SESSION_KEY] = str(user.pk)
        store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        store["_auth_user_hash"] = user.get_session_auth_hash()
        store.set_expiry(1)
        store.save(must_create=True)
        client = Client()
        client.cookies["sessionid"] = store.session_key
        assert client.get("/api/perf/ping/").json() == {"authenticated": True}
        time.sleep(2.1)  # the database compares expire_date to now(); Redis drops the key
        assert client.get("/api/perf/ping/").json() == {"authenticated": False}


@pytest.mark.parametrize("on", SIDES)
def test_the_test_clients_login_uses_the_toggles_store(user, on):
    """SESSION_ENGINE names the technique's module: a session made outside a request goes to
    the store the toggle chooses too."""
    client = Client()
    with toggles.override(session_store=on):
        client.force_login(user)
        key = client.cookies["sessionid"].value
        assert (_in_redis(key), _in_database(key)) == (on, not on)
        assert client.get("/api/perf/ping/").json() == {"authenticated": True}


# --- any process serves any user ----------------------------------------------------------


ASK = """
import json, sys
import django
django.setup()
from django.test import Client
client = Client()
client.cookies["sessionid"] = sys.argv[1]
print(json.dumps(client.get("/api/perf/ping/", headers={"X-Perf-Toggles": sys.argv[2]}).json()))
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("on", SIDES)
def test_a_session_made_by_one_process_is_read_by_another(user, on):
    """Another Python process, with its own connections to Redis and PostgreSQL, finds the
    user of a session this one created: no process keeps anything of it."""
    client = Client()
    with toggles.override(session_store=on):
        key = _log_in(client, user)
    db = connection.settings_dict
    from django.conf import settings

    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **{key_: value for key_, value in os.environ.items() if key_ != "PYTEST_VERSION"},
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url,
        "DATABASE_REPLICA_URL": url,
        "PERF_TOGGLES": "",
        "TEST_QUEUE_SUFFIX": settings.TEST_QUEUE_SUFFIX,
        "TEST_SESSION_REDIS_URL": settings.CACHES["sessions"]["LOCATION"],
    }
    result = subprocess.run(
        [sys.executable, "-c", ASK, key, f"session_store={'on' if on else 'off'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"authenticated": True}


# --- the sessions Redis down ----------------------------------------------------------------


@pytest.fixture
def sessions_broker(tmp_path, settings):
    """A Redis of this test's own behind the `sessions` alias, to stop."""
    with PrivateBroker(tmp_path) as broker:
        caches_ = {**settings.CACHES}
        caches_["sessions"] = {**caches_["sessions"], "LOCATION": broker.url}
        with override_settings(CACHES=caches_):
            yield broker


def test_redis_down_a_login_is_a_503_and_writes_nothing(user, sessions_broker):
    before = get_user_model().objects.get(pk=user.pk).last_login
    sessions_broker.stop()
    client = Client(raise_request_exception=False)
    with toggles.override(session_store=True):
        response = client.post(
            "/api/auth/login/", {"username": user.username, "password": PASSWORD}
        )
        assert response.status_code == 503
        assert response.json()["code"] == "session_store_unavailable"
        assert response["Retry-After"] == str(session_store.RETRY_AFTER_S)
        assert "sessionid" not in response.cookies
        # The admin's login too.
        staff = UserFactory(password=PASSWORD, is_staff=True)
        response = client.post(
            "/admin/login/?next=/admin/", {"username": staff.username, "password": PASSWORD}
        )
        assert response.status_code == 503
    assert get_user_model().objects.get(pk=user.pk).last_login == before
    assert not Session.objects.exists()


def test_redis_down_a_session_reads_as_anonymous_and_its_cookie_is_kept(user, sessions_broker):
    client = Client(raise_request_exception=False)
    with toggles.override(session_store=True):
        key = _log_in(client, user)
        assert client.get("/api/perf/ping/").json() == {"authenticated": True}
        sessions_broker.stop()
        response = client.get("/api/perf/ping/")
        assert response.status_code == 200
        assert response.json() == {"authenticated": False}
        assert "sessionid" not in response.cookies  # not deleted: Redis may come back
        assert client.get("/api/orders/").status_code in (401, 403)
        assert "credentials were not provided" in client.get("/api/orders/").json()["detail"]
        # Logging out, with nothing to delete that can be read, is harmless.
        assert client.post("/api/auth/logout/").status_code in (200, 302)
        assert client.get("/admin/").status_code == 302  # to the login page
        sessions_broker.start()
        client.cookies["sessionid"] = key
        assert client.get("/api/perf/ping/").json() == {"authenticated": True}


def test_redis_down_never_touches_the_database_side(user, sessions_broker):
    sessions_broker.stop()
    client = Client(raise_request_exception=False)
    with toggles.override(session_store=False):
        _log_in(client, user)
        assert client.get("/api/perf/ping/").json() == {"authenticated": True}


def test_the_outage_is_logged_without_the_session_key(user, sessions_broker, caplog):
    client = Client(raise_request_exception=False)
    with toggles.override(session_store=True):
        key = _log_in(client, user)
        sessions_broker.stop()
        session_store._last_warning = 0.0
        client.get("/api/perf/ping/")
    assert "session read failed" in caplog.text
    assert key not in caplog.text


def test_redis_refusing_writes_is_the_outage_path(user, sessions_broker, caplog):
    """A sessions Redis that answers with an error (full under `noeviction`: `OOM command not
    allowed`) is a 503 for a login, with nothing written, and a session it holds still reads."""
    client = Client(raise_request_exception=False)
    with toggles.override(session_store=True):
        key = _log_in(client, user)
        server = redis.Redis.from_url(sessions_broker.url)
        server.config_set("maxmemory-policy", "noeviction")
        server.config_set("maxmemory", 1)
        assert client.get("/api/perf/ping/").json() == {"authenticated": True}
        before = get_user_model().objects.get(pk=user.pk).last_login
        session_store._last_warning = 0.0
        response = Client(raise_request_exception=False).post(
            "/api/auth/login/", {"username": user.username, "password": PASSWORD}
        )
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "session_store_unavailable"
        assert "sessionid" not in response.cookies
    assert get_user_model().objects.get(pk=user.pk).last_login == before
    assert server.dbsize() == 1  # the first session only
    server.close()
    assert "session save failed: Redis refused it (OutOfMemoryError" in caplog.text
    assert key not in caplog.text


def test_a_cold_bench_run_empties_the_caches_but_logs_no_one_out(user):
    """shop.bench.cold empties every cache alias for a first request; the sessions are state."""
    from shop.bench import cold

    client = Client()
    with toggles.override(session_store=True):
        key = _log_in(client, user)
        caches["default"].set("perfshop-probe", 1)
        cold.clear_cache()
        assert caches["default"].get("perfshop-probe") is None
        assert _in_redis(key)
        assert client.get("/api/perf/ping/").json() == {"authenticated": True}


# --- a session key no session could have ------------------------------------------------------


@pytest.mark.parametrize("on", SIDES)
@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param('"\\000abcdefgh"', id="escaped-nul"),
        pytest.param("ABCDEFGHIJKLMNOPQRSTUVWXYZ123456", id="upper-case"),
        pytest.param("a" * 41, id="too-long"),
    ],
)
def test_a_session_key_of_the_wrong_shape_is_no_session(user, on, cookie):
    """Django makes a session key of 32 lowercase letters and digits. A cookie holding
    anything else (here a NUL, which Python's cookie parser unescapes from `"\\000..."` and
    PostgreSQL text cannot hold) is no session, on both stores, without a query: never a 500."""
    client = Client(raise_request_exception=False)
    with toggles.override(session_store=on):
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/perf/ping/", headers={"Cookie": f"sessionid={cookie}"})
        assert response.status_code == 200, response.content
        assert response.json() == {"authenticated": False}
        assert response.cookies["sessionid"].value == ""  # deleted, as an unknown session's
        assert not [q["sql"] for q in queries if '"django_session"' in q["sql"]]
        response = client.get("/api/orders/", headers={"Cookie": f"sessionid={cookie}"})
        assert response.status_code in (401, 403), response.content


def test_an_error_of_ours_raises_instead_of_reading_as_anonymous(user):
    """WRONGTYPE (the session's key holding a hash) is not an outage: it raises."""
    client = Client()
    with toggles.override(session_store=True):
        key = _log_in(client, user)
        store = session_store.RedisSessionStore(key)
        redis_key = store._cache.make_and_validate_key(store.cache_key)
        server = store._cache._cache.get_client(redis_key, write=True)
        server.delete(redis_key)
        server.hset(redis_key, "f", "v")
        with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
            client.get("/api/perf/ping/")


def test_the_database_side_reads_the_sessions_djangos_own_store_wrote(user):
    """Off is Django's database store: a session written by django.contrib.sessions' own
    SessionStore (before a deploy of this project, or by other code) still logs its user in,
    and one written through the toggle's store reads in Django's. Django signs a session's
    data with a salt named after the store's class, so a subclass must keep Django's."""
    from django.contrib.sessions.backends import db as db_backend

    djangos = db_backend.SessionStore()
    djangos.update({SESSION_KEY: str(user.pk), "from": "django"})
    djangos.save(must_create=True)
    ours = session_store.DatabaseSessionStore(djangos.session_key)
    assert ours.load() == {SESSION_KEY: str(user.pk), "from": "django"}

    ours = session_store.DatabaseSessionStore()
    ours.update({"from": "ours"})
    ours.save(must_create=True)
    assert db_backend.SessionStore(ours.session_key).load() == {"from": "ours"}
