"""What a benchmark scenario is: one request through the real request path, timed with its
technique off and on.

A scenario module `shop/bench/scenarios/<technique>.py` defines `SCENARIO = Scenario(...)`.
The harness (`manage.py bench`, `shop/bench/runner.py`) prepares the data once, warms up, then
alternates off and on (off, on, on, off, ...), sending the scenario's request through Django's
full stack (URL routing, middleware, authentication, views, serializers, the database) with the
technique's toggle set by the `X-Perf-Toggles` header. It counts every query on every database
alias while the request runs and its body is read, and compares the answers.

A module may also define, all optional:

- `EXTRA_SCENARIOS: list[Scenario]`: more requests measured for the same technique (an order
  with 50 lines and an import of 10k products, say). They are reported after `SCENARIO`.
- `before(enabled: bool) -> None`: puts the database in the state of one side before that
  side's runs (db_indexes creates or drops its indexes). Not timed. With it, the runs go in
  blocks instead of one by one: at most 5 runs a side per block, the blocks in ABBA order
  (off, on, on, off, ...; alternation.BLOCK_RUNS), each block after its own `before()` and
  warm-up.
- `after() -> None | list[str]`: restores the normal state. Always called once the module's
  scenarios have started, whatever happened: an error, Ctrl-C, SIGTERM. Also called for every
  module when the bench starts, to repair what a killed run left, so it must be idempotent; it
  may return what it had to restore, which the bench prints and records.
- `plans() -> dict[str, str]`: EXPLAIN output of the queries that matter, in the current state
  (`{"order lookup": "Index Scan using ..."}`). Called once per side, after `before()` and inside
  `toggles.override(<technique>=enabled)`; the report shows both sides.

A scenario may also be **composite** (`every_toggle=True`): its sides are every registered
toggle off against every one on, with every scenario module's hooks (all off drops db_indexes'
indexes), so it measures what the techniques do together to one request. Its module is named
for the request (`order_history`), not for a toggle, and runs after the techniques.

Besides off, on and the baseline, a scenario may declare **extra arms** (`arms`: the SQL floor,
one hand-written statement that builds the same body) timed in the same alternation, a **cold
arm** (`cold`: each side again, every run a first request) and **targets** (bounds on its
figures, checked in every report).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse

from shop import toggles
from shop.bench.samples import Sample
from shop.bench.targets import Target


@dataclass(frozen=True)
class Call:
    """One HTTP request, as the test client sends it."""

    method: str  # "GET", "POST", ...
    path: str  # with its query string: "/api/products/?page_size=50"
    data: Any = None  # a JSON body for POST/PUT/PATCH
    # The username to log in as, with `Authorization: Token` as an API client does; None for
    # anonymous.
    user: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtraArm:
    """One more arm, timed in the same alternation as off and on and in the on side's state
    (after before(True)): for the order-history page, its SQL floor."""

    label: str  # its key in the JSON: "floor"
    title: str  # for the reports: "SQL floor"
    # One timed run. The arm measures itself (its wall time, and its queries with a
    # QueryCounter, as `floor.sample` does), since it need not be an HTTP request.
    run: Callable[[], Sample]
    compare: bool = True  # its answer must be the on side's (as off's must): reported if not
    # The body it builds, as bytes: compared once, untimed, with the on side's response body
    # byte for byte. None: only the parsed answers are compared.
    body: Callable[[], bytes] | None = None
    source: str = ""  # what it runs (the floor's SQL), kept in the JSON


@dataclass(frozen=True)
class Scenario:
    name: str  # the technique (and toggle) it measures
    title: str  # what is measured, in a few words, for the report
    # Builds the request; runs once, after prepare. None for a scenario that is no request
    # (`run`): the HTTP modes skip it.
    call: Callable[[], Call] | None = None
    # Runs once before the warm-up: finds ids in the seeded data, builds a payload. It must not
    # write: it runs outside any rollback, and the bench leaves the data as it found it. Its
    # return value is ignored; stash what `call` needs in module state or a closure.
    prepare: Callable[[], None] | None = None
    # True when the request writes: each run happens in a transaction rolled back afterwards,
    # so off and on always start from the same data, and `answer` should read the database
    # state the request left (it runs before the rollback).
    writes: bool = False
    # True when the request commits on purpose (with `writes` False, so nothing rolls it back:
    # read_replica's read-back needs a real commit) and the scenario cleans up after each run
    # in `metrics`. The HTTP modes, which call no `metrics`, skip it as they skip a write.
    commits: bool = False
    # What must be identical off and on, besides the status. Default: the response body (JSON
    # decoded when JSON). It receives the response with its body already read: a streamed body
    # arrives as a plain HttpResponse holding all of it, with the same status and headers.
    answer: Callable[[HttpResponse], Any] | None = None
    memory: bool = False  # also record peak Python memory during the request (tracemalloc)
    # Also count the bytes of the values PostgreSQL sends back, in every timed run (psycopg's
    # result lengths; see measure._result_bytes): for a technique about what is fetched.
    db_bytes: bool = False
    # Runs per side for a slow scenario: it caps `--repeat`, and the scenario gets no warm-up
    # runs (a cold cache is noise next to seconds a run). None: the --repeat given.
    repeat: int | None = None
    # Toggles held fixed (usually on) while this one is flipped, so the pair isolates it.
    # shop/bench/holds.py holds them, for the Locust scenarios to send the same.
    hold: Mapping[str, bool] = field(default_factory=dict)
    # Counts of its own, per run, next to the common ones (shop.bench.metrics): called after
    # each request, untimed, with the response (body read), inside a writing scenario's
    # rollback so it can read what the request left: `{"units_oversold": 0}`.
    metrics: Callable[[HttpResponse], dict[str, float]] | None = None
    notes: str = ""  # a sentence for the report: the catalog's contract change, a caveat
    # Composite: every registered toggle off against every one on, with every module's hooks,
    # instead of the toggle `name`. `name` is then the request's, not a toggle's.
    every_toggle: bool = False
    # More arms, each run in the same alternation as off and on, answers compared with on's.
    arms: tuple[ExtraArm, ...] = ()
    # Also time each side cold, after the warm runs: each cold run follows a reset (untimed)
    # that makes it a first request. For a request a warm cache or connection flatters.
    cold: bool = False
    # The reset before each cold run; None: `shop.bench.cold.reset` (new database connections,
    # the project's cache emptied).
    reset: Callable[[], None] | None = None
    # Bounds on the scenario's figures, checked and reported with every run.
    targets: tuple[Target, ...] = ()
    # A job that is no request (archiving a month of the event log): each side times itself,
    # as an ExtraArm does, called with the side's state after its before(). It replaces
    # `call`, and no baseline request is sent alongside. `path` says what it runs, for the
    # reports.
    run: Callable[[bool], Sample] | None = None
    path: str = ""

    def flags(self, enabled: bool) -> dict[str, bool]:
        """The toggles a side sets: the held ones and the technique at `enabled`, or every
        registered toggle at `enabled` for a composite scenario. A held toggle no technique
        registers is left out (the runner warns about it)."""
        registered = [toggle.name for toggle in toggles.registered()]
        if self.every_toggle:
            return dict.fromkeys(registered, enabled)
        holds = {name: on for name, on in self.hold.items() if name in registered}
        return {**holds, self.name: enabled}
