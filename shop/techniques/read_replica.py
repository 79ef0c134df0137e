"""Send reads to the streaming replica, and keep every user seeing their own writes.

Off: every query goes to the primary, as when there is no replica at all.
On: inside a request (this module's `Middleware`), the database router (shop.db_router) asks
`alias_for_read()` and reads go to the replica, except when one of these sends them to the
primary:

- **the request may write** (POST, PUT, PATCH, DELETE): what it checks before writing must be
  current. A request that wrote anyway (`note_write()`, called by the router for every write),
  or that reads inside a transaction on the primary, reads its own writes there too;
- **the user wrote recently**: a request that wrote leaves a marker for its user in Redis for
  READ_REPLICA_PIN_SECONDS, and that user's requests read the primary while it lasts. Not a
  cookie: API clients authenticate with a token and do not keep cookies, and a marker on the
  server holds for every client of the user (the phone sees the order placed on the laptop);
- **the replica lags** more than READ_REPLICA_MAX_LAG_SECONDS, or is **down**: see `Health`;
- the read is of a session: a login writes it and the very next request reads it, before the
  user (and so their marker) is known.

Outside a request (Celery tasks, management commands, the shell) every read goes to the
primary: a task enqueued on commit reads the row it was told about before a replica may have it.

A safe request (GET, HEAD, OPTIONS) whose view fails with an OperationalError after reading the
replica (it died between two probes) runs once more, on the primary (`Middleware`): no 500.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from time import monotonic
from typing import TypeVar

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connections, transaction

from shop import toggles

TOGGLE = toggles.register(
    "read_replica",
    group="replicas",
    description="reads to the streaming replica; a user's reads after their write to the primary",
)

PRIMARY = DEFAULT_DB_ALIAS
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Read on the primary always: a login writes the session, and the next request reads it before
# anyone knows whose marker to look for.
PRIMARY_ONLY_APPS = frozenset({"sessions"})

logger = logging.getLogger(__name__)
T = TypeVar("T")


# --- the request's state ---------------------------------------------------------------------


@dataclass
class RequestState:
    """What this request has done that decides where its reads go."""

    pinned: str | None = None  # why reads go to the primary now: "wrote", "recent write"...
    wrote: bool = False
    read_replica: bool = False  # a read went to the replica
    retried: bool = False
    # Who is asking, until their write marker is read: at the first read that would go to the
    # replica, so a request that reads nothing (the ping) pays no Redis round trip for it.
    unchecked_user_id: int | None = None


_state: ContextVar[RequestState | None] = ContextVar("read_replica_state", default=None)
# Inside `on_primary()`: reads go to the primary whatever the request's state.
_forced: ContextVar[bool] = ContextVar("read_replica_forced", default=False)


def replica_alias() -> str | None:
    """The alias reads may go to; None where no replica is configured (or a test has none)."""
    return settings.READ_REPLICA_DATABASE


def alias_for_read(model) -> str:
    """Where the router sends a read of `model`."""
    state = _state.get()
    if state is None or not toggles.is_enabled(TOGGLE.name):
        return PRIMARY  # naive: one database for everything (and everything outside requests)
    replica = replica_alias()
    if (
        replica is None
        or state.pinned
        or _forced.get()
        or model._meta.app_label in PRIMARY_ONLY_APPS
        # Inside a transaction on the primary (a service's atomic(), a test's): its reads must
        # see its own uncommitted writes, and a replica never has them.
        or connections[PRIMARY].in_atomic_block
        or not health.usable(replica)
        or _wrote_recently(state)
    ):
        return PRIMARY
    state.read_replica = True
    return replica


def note_write() -> None:
    """The router saw a write: the rest of this request reads the primary, and so do the
    user's next requests for READ_REPLICA_PIN_SECONDS (`Middleware`)."""
    state = _state.get()
    if state is not None:
        state.wrote = True
        state.pinned = state.pinned or "wrote"


@contextmanager
def on_primary() -> Iterator[None]:
    """Reads in the block go to the primary."""
    token = _forced.set(True)
    try:
        yield
    finally:
        _forced.reset(token)


def again_on_primary_if(miss: type[Exception], read: Callable[[], T]) -> T:
    """`read()`; if it raised `miss` where reads go to the replica, once more on the primary.

    For a row a client may use a moment after it was written, before the replica has it, and
    before anyone knows whose it is: the API token a login has just created.
    """
    try:
        return read()
    except miss:
        state = _state.get()
        if state is None or not state.read_replica or state.pinned or _forced.get():
            raise  # it was the primary that said no
        with on_primary():
            return read()


# --- read-your-writes across requests: a marker per user in Redis ----------------------------


def _marker(user_id) -> str:
    # The database's name too: test runs share one Redis and each has its own users.
    return f"read_replica:wrote:{settings.DATABASES[PRIMARY]['NAME']}:{user_id}"


def user_identified(user) -> None:
    """Authentication knows who is asking: if they wrote in the last READ_REPLICA_PIN_SECONDS,
    this request reads the primary. Their marker is read when the request first reads
    (`_wrote_recently`), not here."""
    state = _state.get()
    if state is None or state.pinned or replica_alias() is None:
        return
    if settings.READ_REPLICA_PIN_SECONDS <= 0 or not toggles.is_enabled(TOGGLE.name):
        return
    if not user.is_authenticated:
        return
    state.unchecked_user_id = user.pk


def _wrote_recently(state: RequestState) -> bool:
    """Read the marker of the user authentication named, once, and pin the request to the
    primary if they wrote a moment ago."""
    user_id = state.unchecked_user_id
    if user_id is None:
        return False
    state.unchecked_user_id = None
    try:
        recent = cache.get(_marker(user_id)) is not None
    except Exception:  # Redis down: nobody can say the user did not just write
        logger.warning("read_replica: cannot read the write marker; reading the primary")
        recent = True
    if recent:
        state.pinned = "recent write"
    return recent


def forget_writes(user_id: int) -> None:
    """Drop the user's marker: their next requests are routed as if they had not just written.
    For the bench, whose committed rounds would otherwise pin the next pair's user."""
    cache.delete(_marker(user_id))


def _remember_write(user) -> None:
    seconds = settings.READ_REPLICA_PIN_SECONDS
    if seconds <= 0 or not getattr(user, "is_authenticated", False):
        return
    try:
        cache.set(_marker(user.pk), 1, timeout=seconds)
    except Exception:
        logger.warning("read_replica: cannot store the write marker of user %s", user.pk)


# --- lag and health, measured on the replica, cached per process -----------------------------

# On an idle primary pg_last_xact_replay_timestamp() stays at the last commit replayed, so
# now() minus it grows forever although the replica has everything: when all the WAL received
# has been replayed, the lag is 0. Only while WAL waits for replay does the timestamp say how
# far behind the replica is.
LAG_SQL = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


class Health:
    """The replica's lag, probed at most once per READ_REPLICA_PROBE_SECONDS per process, on
    a connection of the probe's own to the replica alias's server; a probe that fails marks it down for
    READ_REPLICA_RETRY_SECONDS, with one warning, so a dead replica costs one failed connect
    per period, not one per query."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: psycopg.Connection | None = None
        self._params: dict = {}  # what `_connection` was opened with
        self.reset()

    def reset(self) -> None:
        if getattr(self, "_connection", None) is not None:
            self._connection.close()  # the settings it was opened with may have changed
            self._connection = None
        self.lag: float | None = None  # seconds; None: down, or never probed
        self.checked_at = float("-inf")
        self.down_since: float | None = None

    def usable(self, alias: str) -> bool:
        interval = (
            settings.READ_REPLICA_RETRY_SECONDS
            if self.down_since is not None
            else settings.READ_REPLICA_PROBE_SECONDS
        )
        # One thread probes; the others use what the last probe found meanwhile.
        if monotonic() - self.checked_at >= interval and self._lock.acquire(blocking=False):
            try:
                self.probe(alias)
            finally:
                self._lock.release()
        return self.lag is not None and self.lag <= settings.READ_REPLICA_MAX_LAG_SECONDS

    def probe(self, alias: str) -> None:
        self.checked_at = monotonic()
        try:
            lag = self._lag(alias)
        except (DatabaseError, psycopg.Error) as exc:
            self.mark_down(alias, exc)
            return
        if self.down_since is not None:
            logger.warning("read_replica: %s answers again; reads go back to it", alias)
        self.lag, self.down_since = lag, None
        if lag > settings.READ_REPLICA_MAX_LAG_SECONDS:
            logger.warning(
                "read_replica: %s is %.1f s behind (bound %s s); reading the primary",
                alias,
                lag,
                settings.READ_REPLICA_MAX_LAG_SECONDS,
            )

    def _lag(self, alias: str) -> float:
        """Asked on a connection of the probe's own, not one of the alias's: with
        connection_pooling on, a pool lends connections, and a pool whose server is down
        makes its borrower wait its whole timeout (5 s) where a direct connect to a refused
        port fails at once (and to a silent host within connect_timeout)."""
        params = connections[alias].get_connection_params()
        params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context")}
        if self._connection is None or self._connection.closed or self._params != params:
            if self._connection is not None:
                self._connection.close()
            self._connection, self._params = None, params
            self._connection = psycopg.connect(**params, autocommit=True)
        try:
            return float(self._connection.execute(LAG_SQL).fetchone()[0])
        except psycopg.Error:
            self._connection.close()
            raise

    def mark_down(self, alias: str, exc: Exception) -> None:
        self.checked_at = monotonic()
        if self.down_since is None:
            self.down_since = self.checked_at
        self.lag = None
        logger.warning("read_replica: %s is unreachable (%s); reading the primary", alias, exc)
        _close(alias)


def _close(alias: str) -> None:
    with suppress(DatabaseError):  # it was broken already; Django opens a new one next time
        connections[alias].close()


health = Health()


def _settings_changed(*, setting: str, **_kwargs) -> None:
    if setting.startswith("READ_REPLICA_") or setting == "DATABASES":
        health.reset()


setting_changed.connect(_settings_changed)


# --- the middleware --------------------------------------------------------------------------


class Middleware:
    """Opens the request's scope: its reads may go to the replica while it lasts. After the
    response, a request that wrote leaves its user's marker; a safe request whose view failed
    on the replica runs again on the primary."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        state = RequestState()
        if request.method not in SAFE_METHODS:
            # A request that is about to write reads what it writes from: a stock check on a
            # replica a second behind would approve an order the primary cannot fill.
            state.pinned = "unsafe method"
        token = _state.set(state)
        try:
            response = self.get_response(request)
            if state.wrote and toggles.is_enabled(TOGGLE.name):
                # DRF sets the user it authenticated on Django's request too. Once the write is
                # committed: at once in autocommit, the usual case; never for a write rolled
                # back by an outer transaction (the bench's write pairs), which left nothing
                # to read back.
                user = getattr(request, "user", None)
                transaction.on_commit(lambda: _remember_write(user), using=PRIMARY)
            return response
        finally:
            _state.reset(token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # A session's user (the admin, the browsable API); a token's is known later, in
        # shop.authentication.TokenAuthentication. Without a session cookie this is no query.
        user = getattr(request, "user", None)
        if user is not None:
            user_identified(user)

    def process_exception(self, request, exception):
        state = _state.get()
        if (
            state is None
            or state.retried
            or not state.read_replica  # only a safe request reads the replica
            or not isinstance(exception, OperationalError)
        ):
            return None
        alias = replica_alias()
        if alias is not None:
            # Was it the replica? A fresh probe says, and keeps the next requests off it if so.
            _close(alias)
            health.probe(alias)
        state.retried, state.pinned = True, "replica failed"
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)
