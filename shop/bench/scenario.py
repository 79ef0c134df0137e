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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse


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
class Scenario:
    name: str  # the technique (and toggle) it measures
    title: str  # what is measured, in a few words, for the report
    call: Callable[[], Call]  # builds the request; runs once, after prepare
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
    hold: dict[str, bool] = field(default_factory=dict)
    # Counts of its own, per run, next to the common ones (shop.bench.metrics): called after
    # each request, untimed, with the response (body read), inside a writing scenario's
    # rollback so it can read what the request left: `{"units_oversold": 0}`.
    metrics: Callable[[HttpResponse], dict[str, float]] | None = None
    notes: str = ""  # a sentence for the report: the catalog's contract change, a caveat
