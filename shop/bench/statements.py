"""Verify before measuring: the SQL a scenario's request sends, so that a pair whose off side
does not run the naive code its chapter describes fails before it is timed, instead of
printing a ratio between two optimized paths.

Shared by the scenarios that check their SQL: their `prepare()` calls it, and the tests
record with it too. Nothing here writes: the view is called directly with its user set on
the request (no token, no session), as `cursor_pagination.plans()` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import Model
from django.urls import resolve
from rest_framework.test import APIRequestFactory, force_authenticate

from shop import toggles
from shop.bench.measure import BenchError
from shop.bench.scenario import Call


@dataclass(frozen=True)
class Sent:
    """What the view sent to the databases for one request, and the rows it answered with."""

    statements: list[str]  # SQL text with its placeholders, in the order sent
    rows: int  # len(body["results"]): the page's rows

    def times(self, sql: str) -> int:
        return Counter(self.statements)[sql]


@contextmanager
def recording() -> Iterator[list[str]]:
    """Every statement sent on every database alias while the block runs."""
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(record))
        yield statements


def sent(call: Call, flags: dict[str, bool]) -> Sent:
    """Call the view `call` routes to, with `flags` set, and record what it sends."""
    match = resolve(urlsplit(call.path).path)
    request = APIRequestFactory().generic(call.method, call.path)
    if call.user is not None:
        force_authenticate(request, user=get_user_model().objects.get(username=call.user))
    with toggles.override(**flags), recording() as statements:
        response = match.func(request, *match.args, **match.kwargs)
        response.render()
    if response.status_code != 200:
        raise BenchError(f"{call.method} {call.path} answered {response.status_code}")
    return Sent(statements=statements, rows=len(response.data["results"]))


def lazy_sql(instance: Model, attribute: str) -> str:
    """The statement Django sends when `instance.<attribute>` is read without a JOIN or a
    prefetch: a forward foreign key's `get()` (`WHERE id = %s LIMIT 21`), or a reverse
    relation manager's `.all()` (`WHERE order_id = %s`)."""
    with recording() as statements:
        value = getattr(instance, attribute)
        if hasattr(value, "all"):
            list(value.all())
    if len(statements) != 1:
        raise BenchError(f"reading {attribute} lazily sent {len(statements)} statements, not 1")
    return statements[0]


def expect(condition: bool, technique: str, message: str) -> None:
    """Stop the scenario, before it is timed, when a side did not run the code it names."""
    if not condition:
        raise BenchError(f"{technique}: {message}; the pair would not compare what it says")
