"""Middleware every response goes through: what it cost, and which toggles it ran with."""

from contextlib import ExitStack
from time import perf_counter

from django.conf import settings
from django.db import connections
from django.http import JsonResponse

from shop import cache, toggles
from shop.techniques import connection_pooling, db_indexes, table_partitioning

TOGGLE_HEADER = "X-Perf-Toggles"

# Toggles whose state is not the request's, with what changes it: the header refuses them (a
# 400 saying so) and the echo never names them. db_indexes' and table_partitioning's state is
# the database's; connection_pooling's is the process's, which PERF_TOGGLES sets when it starts
# (SET_AT_START).
NOT_PER_REQUEST = {
    db_indexes.TOGGLE.name: db_indexes.SWITCH,
    table_partitioning.TOGGLE.name: table_partitioning.SWITCH,
    connection_pooling.TOGGLE.name: connection_pooling.SWITCH,
}
SET_AT_START = {connection_pooling.TOGGLE.name}


def refusal(name: str, *, where: str) -> str:
    """Why a toggle in NOT_PER_REQUEST cannot be set `where`, and the command that sets it.
    The header and PERF_TOGGLES at start-up (shop.apps) say the same."""
    if name in SET_AT_START:
        return (
            f"{name} cannot be set {where}: its state is the process's, chosen when it starts. "
            f"Set `{NOT_PER_REQUEST[name]}` and restart the process."
        )
    return (
        f"{name} cannot be set {where}: its state is the database's. Run `{NOT_PER_REQUEST[name]}`."
    )


class QueryCostMiddleware:
    """`X-DB-Queries: default=3, replica=0`, `X-Cache-Ops: hits=1 misses=0 sets=0 deletes=0
    errors=0` and `Server-Timing: db;dur=…, app;dur=…`.

    Every query on every database alias is counted and timed with an execute wrapper, so the
    numbers include authentication and session queries: what the request really cost. A
    streaming response's queries run after this returns and are not counted.

    Only where settings.PERF_COST_HEADERS allows it, as the toggle header is (never in
    production): they tell any client how long the database took, and so which requests are
    expensive to send.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not settings.PERF_COST_HEADERS:
            return self.get_response(request)
        counts = {alias: 0 for alias in connections}
        db_seconds = 0.0

        def counting(alias):
            def wrapper(execute, sql, params, many, context):
                nonlocal db_seconds
                started = perf_counter()
                try:
                    return execute(sql, params, many, context)
                finally:
                    db_seconds += perf_counter() - started
                    counts[alias] += 1

            return wrapper

        started = perf_counter()
        with ExitStack() as stack:
            for alias in counts:
                stack.enter_context(connections[alias].execute_wrapper(counting(alias)))
            # The calls made through shop.cache (shop/cache.py): a hit is 0 queries, not free.
            cache_ops = stack.enter_context(cache.counting())
            response = self.get_response(request)
        total_ms = (perf_counter() - started) * 1000
        db_ms = db_seconds * 1000
        queries = sum(counts.values())
        response["X-DB-Queries"] = ", ".join(f"{alias}={n}" for alias, n in counts.items())
        response["X-Cache-Ops"] = cache_ops.header()
        timing = f'db;dur={db_ms:.2f};desc="{queries} queries", app;dur={total_ms - db_ms:.2f}'
        # Other middleware (the debug toolbar) may have set its own metrics: keep them too.
        earlier = response.get("Server-Timing")
        response["Server-Timing"] = f"{timing}, {earlier}" if earlier else timing
        return response


def parse_cache_ops(header: str) -> dict[str, int]:
    """`"hits=1 misses=0 sets=0 deletes=0 errors=0"` → `{"hits": 1, "misses": 0, ...}`."""
    return {name: int(n) for name, _, n in (part.partition("=") for part in header.split())}


def parse_query_counts(header: str) -> dict[str, int]:
    """`"default=3, replica=0"` → `{"default": 3, "replica": 0}`."""
    counts = {}
    for part in header.split(","):
        alias, _, count = part.strip().partition("=")
        counts[alias] = int(count)
    return counts


class PerfToggleMiddleware:
    """Honour `X-Perf-Toggles: select_related=off` where settings.PERF_ALLOW_OVERRIDE is on
    (never in production), and there echo back every toggle that is not at its default. A toggle in
    NOT_PER_REQUEST is refused with a 400: accepting it would claim a change that never ran."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        spec = request.headers.get(TOGGLE_HEADER)
        flags = {}
        if spec is not None and settings.PERF_ALLOW_OVERRIDE:
            try:
                flags = toggles.parse(spec)
            except (toggles.UnknownToggle, ValueError) as exc:
                return JsonResponse({TOGGLE_HEADER: [str(exc)]}, status=400)
            refused = [
                refusal(name, where="per request") for name in NOT_PER_REQUEST if name in flags
            ]
            if refused:
                return JsonResponse({TOGGLE_HEADER: refused}, status=400)
        with toggles.override(**flags):
            response = self.get_response(request)
            changed = {
                toggle.name: toggles.is_enabled(toggle.name)
                for toggle in toggles.registered()
                if toggles.source(toggle.name) != "default" and toggle.name not in NOT_PER_REQUEST
            }
        # Where the header is ignored (production), the echo would only tell any client how the
        # server was configured (PERF_TOGGLES): not sent.
        if settings.PERF_ALLOW_OVERRIDE:
            response[TOGGLE_HEADER] = toggles.format_flags(changed)
        return response
