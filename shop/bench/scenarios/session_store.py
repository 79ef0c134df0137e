"""What a session costs each request that carries one: the do-nothing request (the ping) and
the customer's first page of orders, logged in with a session cookie as the browsable API and
the admin are. Off, the session is a row of django_session read by every request; on, a key in
Redis.

The bench logs in no one (a login writes `last_login`): `prepare` makes one session, under the
same key in both stores, for the customer with the most orders, and `after` deletes it (also
one a killed run left: the keys start with KEY_PREFIX)."""

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends import db as db_backend
from django.contrib.sessions.models import Session
from django.utils.crypto import get_random_string

from shop.bench import holds
from shop.bench.dataset import busiest_username
from shop.bench.scenario import Call, Scenario
from shop.techniques import session_store

KEY_PREFIX = "benchsessionstore"  # + 15 random characters: Django's 32
LIFETIME_S = 3600  # a key a killed run leaves in Redis expires by itself
_state: dict[str, str] = {}


def prepare() -> None:
    if "key" in _state:
        return
    user = get_user_model().objects.get(username=busiest_username())
    key = KEY_PREFIX + get_random_string(15, "abcdefghijklmnopqrstuvwxyz0123456789")
    data = {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }
    for store_class in (db_backend.SessionStore, session_store.RedisSessionStore):
        store = store_class()  # no key yet: update() would look the key up, find nothing, drop it
        store.update(data)
        store._session_key = key  # the same key in both stores (Django's own setter checks it)
        store.set_expiry(LIFETIME_S)
        store.save(must_create=True)
        if store_class(key).load().get(SESSION_KEY) != str(user.pk):
            raise RuntimeError(f"the bench's session is not found in {store_class.__module__}")
    _state["key"] = key


def _call(path: str) -> Call:
    return Call("GET", path, headers={"Cookie": f"sessionid={_state['key']}"})


def after() -> list[str]:
    """Delete the bench's sessions from both stores."""
    deleted, _ = Session.objects.filter(session_key__startswith=KEY_PREFIX).delete()
    key = _state.pop("key", None)
    if key is not None:
        session_store.RedisSessionStore(key).delete()
    return [f"{deleted} bench session(s)"] if deleted and key is None else []


NOTES = (
    "Session-authenticated: the session (a row, or a Redis key) names the user, then the user "
    "is read. read_replica is held off: the session row and the user are read on the primary "
    "on both sides."
)

SCENARIO = Scenario(
    name="session_store",
    title="ping with a session cookie",
    prepare=prepare,
    call=lambda: _call("/api/perf/ping/"),
    hold=holds.SESSION_STORE,
    notes=NOTES + " The ping is the baseline too: the whole request is the session's cost.",
)

EXTRA_SCENARIOS = [
    Scenario(
        name="session_store",
        title="order history, 20 orders, with a session cookie",
        prepare=prepare,
        call=lambda: _call("/api/orders/?page_size=20"),
        hold=holds.SESSION_STORE,
        notes=NOTES,
    ),
]
