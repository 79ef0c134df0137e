"""Sessions in Redis through Django's own cache backend, instead of a table of PostgreSQL.

Off: Django's default, `django.contrib.sessions.backends.db`. Every request that carries a
session cookie reads its row (`SELECT ... FROM django_session WHERE session_key = %s AND
expire_date > now()`), then the user it names; a login inserts a row, a logout deletes it, and
the expired rows stay until `manage.py clearsessions` runs.

On: `django.contrib.sessions.backends.cache` on the `sessions` cache alias, a Redis of its own
(SESSION_REDIS_URL). The session is one GET of a key; Redis expires it with its TTL. The web
processes keep nothing of a user between requests, so any process serves any user, and the
session costs the database nothing: a session-authenticated request is one query (the user)
instead of two.

The cache backend, not `cached_db`: `cached_db` writes every session to both and reads the
table on a miss, so it still needs the table and a write per login; here the session lives
in Redis alone, as a cache-backed session store does. The price is durability: a Redis that
loses its data (no persistence, `maxmemory` eviction, a flush) logs everyone out. The sessions
Redis must therefore not evict (`maxmemory-policy noeviction`) and is not the cache's.

**Redis down** (the choice, tested in tests/techniques/test_session_store.py), or failing a
command with an error that refuses any command (`OUTAGE`, shop/cache.py's: `OOM command not
allowed` from a full Redis under `noeviction`, or `READONLY` from a replica after a failover;
other errors, such as `WRONGTYPE`, are bugs and raise):
- reading a session finds none: the request is anonymous, and a protected endpoint answers
  401 or 403 as it does to anyone not logged in. The cookie is left as it is, so the user is
  logged in again once Redis is back (Django would delete a cookie whose session it cannot
  find);
- writing one (a login, a session changed by the request) fails with a 503 JSON answer,
  `session_store_unavailable`, and nothing else is written: Django's `login()` makes the new
  session before it records the user's `last_login`. Never a 500.

**A cookie no session could have.** Django makes a session key of 32 lowercase letters and
digits; both stores take a key of any other shape (`KEY_SHAPE`) for no session at all, before
it reaches PostgreSQL or Redis. Django itself only asks for 8 characters, so a cookie holding
a NUL (`sessionid="\\000abcdefgh"`, which Python's cookie parser unescapes) would reach
psycopg, which refuses it: a 500. The check is in the store classes, so it covers both
toggle states, the middleware's sessions and the ones made outside a request.

Which store a request uses is decided per request, when its session is first made
(`store_class()`), so the toggle flips it like any other. Sessions do not move between the
stores: flipping it logs out the users of the other one, as changing SESSION_ENGINE does.
"""

from __future__ import annotations

import logging
import re
import time

from django.conf import settings
from django.contrib.sessions.backends import cache as cache_backend
from django.contrib.sessions.backends import db as db_backend
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import JsonResponse

from shop import cache, toggles

logger = logging.getLogger(__name__)

TOGGLE = toggles.register(
    "session_store",
    group="caching",
    description="Sessions in Redis (Django's cache backend) instead of PostgreSQL",
)

OUTAGE = cache.OUTAGE  # no answer, or a refusal of any command (OOM, READONLY)
# Django's keys are 32 of VALID_KEY_CHARS (lowercase letters and digits); 8 is its own minimum.
KEY_SHAPE = re.compile(r"[a-z0-9]{8,40}")
RETRY_AFTER_S = 5
_WARN_EVERY_S = 10.0
_last_warning = 0.0


class SessionStoreUnavailable(Exception):
    """The sessions Redis failed a write."""


def _outage(exc: BaseException, *, operation: str) -> None:
    """One warning per _WARN_EVERY_S per process. Never the key: it is the user's credential."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_S:
        _last_warning = now
        then = "the request is anonymous" if operation == "read" else "answered with a 503"
        logger.warning("session %s failed: %s; %s", operation, cache.failure(exc), then)


class _KeyShapeChecked(SessionBase):
    def _validate_session_key(self, key):
        # Django's check (a key of 8 characters or more), run whenever a key is set: a key
        # that fails it is None, an empty session that is neither read nor written.
        return isinstance(key, str) and KEY_SHAPE.fullmatch(key) is not None


class DatabaseSessionStore(_KeyShapeChecked, db_backend.SessionStore):
    """Django's database session store, refusing a key of the wrong shape as the module says."""

    @property
    def key_salt(self):
        # Django signs a session's data with a salt named after the store's class: Django's
        # own, so the rows its SessionStore wrote (before this class, or by any other code)
        # still read, and the rows this one writes read there too.
        return "django.contrib.sessions." + db_backend.SessionStore.__qualname__


class RedisSessionStore(_KeyShapeChecked, cache_backend.SessionStore):
    """Django's cache session store, with Redis down handled as the module says."""

    unavailable = False  # the session could not be read: keep the cookie, do not save

    def load(self):
        # Django's load() swallows every error of get() and answers "no session"; this one
        # also says so, and remembers it so the middleware keeps the cookie.
        try:
            data = self._cache.get(self.cache_key)
        except OUTAGE as exc:
            _outage(exc, operation="read")
            self.unavailable = True
            data = None
        if data is not None:
            return data
        self._session_key = None
        return {}

    def exists(self, session_key):
        try:
            return super().exists(session_key)
        except OUTAGE as exc:
            _outage(exc, operation="lookup")
            raise SessionStoreUnavailable from exc

    def create(self):
        try:
            super().create()
        except OUTAGE as exc:
            _outage(exc, operation="create")
            raise SessionStoreUnavailable from exc
        self.unavailable = False  # back: this new session is saved as usual

    def save(self, must_create=False):
        try:
            super().save(must_create=must_create)
        except OUTAGE as exc:
            _outage(exc, operation="save")
            raise SessionStoreUnavailable from exc

    def delete(self, session_key=None):
        try:
            super().delete(session_key)
        except OUTAGE as exc:
            _outage(exc, operation="delete")
            raise SessionStoreUnavailable from exc


def store_class() -> type[SessionBase]:
    """The store this request's session lives in: the toggle, read now."""
    if not toggles.is_enabled(TOGGLE.name):
        return DatabaseSessionStore  # naive: a row of django_session per session
    return RedisSessionStore


class SessionStore(SessionBase):
    """SESSION_ENGINE's class (settings name this module): whatever makes a session outside a
    request (the test client's login, `manage.py clearsessions`) gets the store the toggle
    chooses, as the middleware's requests do."""

    def __new__(cls, session_key=None):
        return store_class()(session_key)

    @classmethod
    def clear_expired(cls):
        DatabaseSessionStore.clear_expired()  # Redis expires its keys itself


class Middleware(SessionMiddleware):
    """Django's SessionMiddleware with the store chosen per request, and Redis down answered
    as the module says instead of with a 500."""

    def process_request(self, request):
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        request.session = store_class()(session_key)

    def process_exception(self, request, exception):
        # A login (or anything else in the view) that had to write the session.
        if isinstance(exception, SessionStoreUnavailable):
            return unavailable()
        return None

    def process_response(self, request, response):
        if getattr(getattr(request, "session", None), "unavailable", False):
            # Not read, so neither "emptied" (Django would delete the cookie) nor to be saved.
            return response
        try:
            return super().process_response(request, response)
        except SessionStoreUnavailable:
            return unavailable()


def unavailable() -> JsonResponse:
    response = JsonResponse(
        {
            "detail": "Sessions are unavailable right now, so you cannot log in with one; "
            "try again shortly, or use a token (POST /api/auth/token/).",
            "code": "session_store_unavailable",
        },
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response
