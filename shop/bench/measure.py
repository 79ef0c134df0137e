"""One request through the real request path, measured: wall time, the part of it spent in the
database, queries per database alias, response bytes, the answer and, when asked, peak Python
memory.

The request goes through `django.test.Client`: in the same process, but through everything a
request meets in production (URL routing, every middleware, authentication, the view, the
serializer, PostgreSQL and Redis). There is no network and no WSGI server in the way, so what
is timed is the application; `make loadtest` measures the whole HTTP path.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.http import HttpResponse
from django.test import Client
from rest_framework.authtoken.models import Token

from shop import toggles
from shop.bench.metrics import SessionCounter, counted
from shop.bench.samples import Sample
from shop.bench.scenario import Call
from shop.perf_headers import NOT_PER_REQUEST, TOGGLE_HEADER

# Statements Django sends for a nested `atomic()`. Under the bench's rollback (and in tests)
# the request's own outermost transaction becomes a savepoint; those are not counted.
_SAVEPOINT_SQL = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


class BenchError(Exception):
    """The bench cannot run, or a response it got makes the comparison meaningless."""


class QueryCounter:
    """Counts every statement on every database alias while a request runs and its body is read.

    Not the middleware's `X-DB-Queries`: a streamed body runs its queries after the middleware
    has returned, so only a wrapper around the whole call sees them all.

    When the call starts inside a transaction (a write scenario's rollback, or a test), the
    request's own `atomic()` turns into `SAVEPOINT`/`RELEASE SAVEPOINT` at the level the call
    started at. In production those are `BEGIN`/`COMMIT`, which Django does not count either,
    so they are skipped. Savepoints nested deeper are the request's own and are counted.
    """

    def __init__(self, *, result_bytes: bool = False) -> None:
        self.counts = {alias: 0 for alias in connections}
        # Time spent inside `execute()`, every alias together: sending the statement, PostgreSQL
        # running it, and receiving the rows (a client-side cursor receives them all there).
        self.db_seconds = 0.0
        # The same time by statement (the SQL text, parameters apart, so the N queries of an
        # N+1 are one entry): {sql: [executions, seconds]}. Says which query dominates.
        self.statements: dict[str, list] = {}
        # With `result_bytes`: the bytes of the values PostgreSQL sent back (see _result_bytes).
        self.result_bytes: int | None = 0 if result_bytes else None
        self._stack = ExitStack()

    def __enter__(self) -> QueryCounter:
        for alias in self.counts:
            connection = connections[alias]
            depth = len(connection.savepoint_ids) if connection.in_atomic_block else None
            self._stack.enter_context(
                connection.execute_wrapper(self._counting(alias, connection, depth))
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def statement_ms(self) -> dict[str, tuple[int, float]]:
        """`{sql: (executions, milliseconds)}`, in the order the statements first ran."""
        return {sql: (n, seconds * 1000) for sql, (n, seconds) in self.statements.items()}

    def _counting(self, alias: str, connection, depth: int | None):
        def wrapper(execute, sql, params, many, context):
            stands_for_the_transaction = (
                depth is not None
                and isinstance(sql, str)
                and sql.startswith(_SAVEPOINT_SQL)
                and len(connection.savepoint_ids) == depth
            )
            if not stands_for_the_transaction:
                self.counts[alias] += 1
            started = perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                seconds = perf_counter() - started
                self.db_seconds += seconds
                tally = self.statements.setdefault(str(sql), [0, 0.0])
                tally[0] += 1
                tally[1] += seconds
                if self.result_bytes is not None:  # after the clock: counting is not the DB's time
                    self.result_bytes += _result_bytes(context["cursor"])

        return wrapper


def _result_bytes(cursor) -> int:
    """The bytes of every value in the result the statement just received, as PostgreSQL sent
    them (read from psycopg's `pgresult`, libpq's copy of the result, before any conversion to
    Python): what the columns a query selects cost on the wire, the client side of the
    connection. The protocol's framing (a few bytes a row and a column) is left out. A call per
    value, so only scenarios that ask for it (`Scenario.db_bytes`) pay it, outside the database
    time but inside the request's time."""
    result = getattr(getattr(cursor, "cursor", cursor), "pgresult", None)
    if result is None:
        return 0
    columns = range(result.nfields)
    return sum(
        len(result.get_value(row, column) or b"")
        for row in range(result.ntuples)
        for column in columns
    )


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a transaction that is always rolled back: a write leaves no trace, and
    its `transaction.on_commit` callbacks (the confirmation e-mail) never fire."""
    with transaction.atomic():
        try:
            yield
        finally:
            transaction.set_rollback(True)


@contextmanager
def peak_memory(result: list[int]) -> Iterator[None]:
    """Trace Python allocations during the block and append their peak to `result`.
    tracemalloc slows allocation down several times, so it never runs during timed runs."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        yield
    finally:
        result.append(max(tracemalloc.get_traced_memory()[1] - baseline, 0))
        if not was_tracing:
            tracemalloc.stop()


def default_answer(response: HttpResponse) -> Any:
    """The body, JSON decoded when it is JSON."""
    if response.get("Content-Type", "").startswith("application/json"):
        return json.loads(response.content)
    return response.content


@dataclass
class Requester:
    """Sends scenario calls through one test client, logged in the way an API client is.

    `Authorization: Token` costs one query (the token joined with its user), or none once
    local_cache or cache_aside keeps the token's user (shop/techniques/local_cache.py); a
    session would cost two. A user without a token gets one for the run, deleted by `close()`: nothing is
    left behind. (`Client.force_login` is not used: it writes the user's `last_login`.)
    """

    client: Client = field(default_factory=lambda: Client(raise_request_exception=True))
    _tokens: dict[str, str] = field(default_factory=dict)
    _created: list[str] = field(default_factory=list)
    # How long a reading of the connections opened waits for the ones opened since the last
    # reading to close (SessionCounter): over HTTP, where the server closes its connection
    # after the client has its answer. In process the request's connection is this process's.
    settle_s: float = 0.0
    _sessions: SessionCounter | None = None

    @property
    def sessions(self) -> SessionCounter:
        """Reads the connections PostgreSQL saw opened, on connections of its own, opened
        once (so they are not counted)."""
        if self._sessions is None:
            self._sessions = SessionCounter(settle_s=self.settle_s)
        return self._sessions

    def auth_headers(self, username: str | None) -> dict[str, str]:
        if username is None:
            return {}
        if username not in self._tokens:
            token = Token.objects.filter(user__username=username).first()
            if token is None:
                user = get_user_model().objects.filter(username=username).first()
                if user is None:
                    raise BenchError(f"the scenario logs in as {username!r}, who does not exist")
                token = Token.objects.create(user=user)
                self._created.append(token.key)
            self._tokens[username] = token.key
        return {"Authorization": f"Token {self._tokens[username]}"}

    def close(self) -> None:
        if self._sessions is not None:
            self._sessions.close()
            self._sessions = None
        if self._created:
            Token.objects.filter(key__in=self._created).delete()
            self._created.clear()
        self._tokens.clear()


# The baseline: the cheapest request the API serves (shop.apis.PingApi), sent the way a
# scenario's request is sent, as the same user with the same headers. What is left of a
# request when its view does nothing: routing, middleware, authentication, DRF, the test client.
BASELINE_PATH = "/api/perf/ping/"


def baseline_of(call: Call) -> Call:
    """The baseline request for `call`: GET the ping endpoint as the same user, same headers."""
    return Call("GET", BASELINE_PATH, user=call.user, headers=call.headers)


@dataclass(frozen=True)
class Prepared:
    """A call ready to send many times: its body encoded and its headers built once, so the
    encoding of a 10k-product payload is not timed."""

    method: str
    path: str
    body: bytes
    content_type: str
    headers: dict[str, str]

    @classmethod
    def of(cls, call: Call, requester: Requester) -> Prepared:
        body, content_type = b"", "application/octet-stream"
        if call.data is not None:
            if isinstance(call.data, bytes | str):
                body = call.data.encode() if isinstance(call.data, str) else call.data
            else:
                body = json.dumps(call.data).encode()
            content_type = "application/json"
        headers = {**call.headers, **requester.auth_headers(call.user)}
        return cls(call.method.upper(), call.path, body, content_type, headers)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def per_request(flags: dict[str, bool]) -> dict[str, bool]:
    """The flags a request can carry. A toggle whose state is the database's (db_indexes) is
    left out: the server refuses it, and the scenario's before() hook has already put the
    database in that side's state."""
    return {name: on for name, on in flags.items() if name not in NOT_PER_REQUEST}


def send(
    requester: Requester,
    prepared: Prepared,
    *,
    flags: dict[str, bool],
    writes: bool = False,
    answer: Callable[[HttpResponse], Any] | None = None,
    memory: bool = False,
    db_bytes: bool = False,
    metrics: Callable[[HttpResponse], dict[str, float]] | None = None,
) -> Sample:
    """Send the call once with `X-Perf-Toggles` set to `flags`, read the whole body, and
    measure. With `memory`, the peak of Python allocations is recorded instead of a
    meaningful time, and the answer is not kept (a streamed body is counted, not stored).
    With `db_bytes`, the bytes of the results PostgreSQL sent are counted too. Cache
    operations and connections opened are always counted (outside the timed part), and
    `metrics`, a scenario's own counts, is called once the body is read."""
    flags = per_request(flags)
    headers = {**prepared.headers, TOGGLE_HEADER: toggles.format_flags(flags)}
    peaks: list[int] = []
    with rolled_back() if writes else nullcontext():
        with (
            counted(requester.sessions) as counts,
            QueryCounter(result_bytes=db_bytes) as counter,
            peak_memory(peaks) if memory else nullcontext(),
        ):
            started = perf_counter()
            response = requester.client.generic(
                prepared.method,
                prepared.path,
                prepared.body,
                content_type=prepared.content_type,
                headers=headers,
            )
            chunks: list[bytes] = []
            size, first_byte = _read(response, keep=None if memory else chunks)
            finished = perf_counter()
            elapsed_ms = (finished - started) * 1000
            ttfb_ms = ((first_byte or finished) - started) * 1000
        _check_toggles(response, flags)
        value = None
        if not memory:
            readable = response
            if response.streaming:
                readable = HttpResponse(
                    b"".join(chunks), status=response.status_code, headers=dict(response.items())
                )
            value = (answer or default_answer)(readable)
            if metrics is not None:
                counts.update(metrics(readable))
    return Sample(
        ms=elapsed_ms,
        db_ms=counter.db_seconds * 1000,
        queries=dict(counter.counts),
        db_statements=counter.statement_ms(),
        db_bytes=counter.result_bytes,
        bytes=size,
        status=response.status_code,
        answer=value,
        peak_memory_bytes=peaks[0] if peaks else None,
        ttfb_ms=ttfb_ms,
        streamed=response.streaming,
        metrics=dict(counts),  # a count the scenario reported stays, 0 included
    )


def _read(response: HttpResponse, *, keep: list[bytes] | None) -> tuple[int, float | None]:
    """Read the whole body as a client would; return its length in bytes and, for a streamed
    body, the `perf_counter()` at which its first non-empty chunk arrived (None for a plain
    body, which arrives whole, and for an empty stream)."""
    if not response.streaming:
        if keep is not None:
            keep.append(response.content)
        return len(response.content), None
    size, first_byte = 0, None
    for chunk in response.streaming_content:
        chunk = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        if first_byte is None and chunk:
            first_byte = perf_counter()
        size += len(chunk)
        if keep is not None:
            keep.append(chunk)
    return size, first_byte


def _check_toggles(response: HttpResponse, flags: dict[str, bool]) -> None:
    """The middleware echoes every toggle that is not at its default: each one we set must be
    there, at the state we asked for, or the request did not run the side we think."""
    refused = (
        response.status_code == 400
        and not response.streaming
        and TOGGLE_HEADER in response.content.decode(errors="replace")
    )
    if refused:
        raise BenchError(f"the server refused the toggles: {response.content.decode()}")
    echoed = toggles.parse(response.get(TOGGLE_HEADER, ""))
    wrong = {name: on for name, on in flags.items() if echoed.get(name, _default(name)) != on}
    if wrong:
        raise BenchError(
            f"the request ran with {response.get(TOGGLE_HEADER, '')!r}, not with "
            f"{toggles.format_flags(wrong)}: is PERF_ALLOW_OVERRIDE off?"
        )


def _default(name: str) -> bool:
    return toggles.get(name).default
