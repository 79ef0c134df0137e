"""`bench --http` for a technique whose sides are processes, not requests: one gunicorn per arm.

connection_pooling cannot be flipped by a header: a pool is built when the process starts. So
its scenario module says how to start each arm (`servers()`: label → environment, off and on
first, then its further arms) and why an arm cannot run here (`unavailable(label)`, printed,
and the arm skipped). Every arm's gunicorn is started before the first block and stays up to
the end, so each block pays no start-up; the arms are loaded in turn, each block after an
unrecorded warm-up, forward then backward (off, on, persistent, pgbouncer, pgbouncer, ...,
off), so a drift of the machine falls on all of them. Each arm's answer is fetched once and
compared with on's, and the connections PostgreSQL saw opened are read around each recorded
block (pg_stat_database.sessions): an idle arm opens none.
"""

from __future__ import annotations

import contextlib
import os
from types import ModuleType

from shop import toggles
from shop.bench import discovery, http, server
from shop.bench.measure import BenchError, Prepared, Requester, per_request
from shop.bench.metrics import SETTLE_S
from shop.bench.samples import Sample
from shop.perf_headers import TOGGLE_HEADER


def module_of(name: str) -> ModuleType | None:
    """The scenario module of `name` when its arms are servers, else None."""
    module = discovery.import_module(name)
    return module if callable(getattr(module, "servers", None)) else None


def run(
    suite: discovery.Suite,
    module: ModuleType,
    *,
    clients: int,
    requests_per_side: int,
    timeout_s: float = http.TIMEOUT_S,
    out=print,
) -> http.HttpPair:
    if not 1 <= clients <= http.MAX_CLIENTS:
        raise BenchError(f"--clients is between 1 and {http.MAX_CLIENTS}")
    if not 2 <= requests_per_side <= http.MAX_REQUESTS:
        raise BenchError(f"--requests is between 2 and {http.MAX_REQUESTS}")
    scenario = suite.scenarios[0]
    environments: dict[str, dict[str, str]] = module.servers()
    labels, skipped = [], {}
    for label in environments:
        why = module.unavailable(label)
        if why is None:
            labels.append(label)
        else:
            skipped[label] = why
            out(f"skipped the {label} arm of {suite.name}: {why}")
    requester = Requester(settle_s=SETTLE_S)
    # Its readers, and the clock its first reading waits from, start before any request.
    sessions = requester.sessions
    try:
        with contextlib.ExitStack() as running:
            urls = {}
            for label in labels:
                env = {**os.environ, **environments[label]}
                urls[label] = running.enter_context(
                    server.gunicorn(workers=module.WORKERS, env=env)
                )
                out(f"{suite.name} {label}: gunicorn at {urls[label]}")
            if scenario.prepare is not None:
                scenario.prepare()
            prepared = Prepared.of(scenario.call(), requester)
            # The holds and nothing else: the technique's side is the server's.
            headers = {
                **prepared.headers,
                TOGGLE_HEADER: toggles.format_flags(per_request(scenario.flags(True))),
            }
            answers = {
                label: http._answer(
                    urls[label] + prepared.path, prepared, headers, scenario, timeout_s
                )
                for label in labels
            }
            sides = {label: http.HttpSide() for label in labels}
            half = requests_per_side // 2
            for index, label in enumerate(labels + labels[::-1]):
                url = urls[label] + prepared.path
                block = {"clients": clients, "timeout_s": timeout_s}
                http._block(
                    url, prepared, headers, count=2 * clients, into=http.HttpSide(), **block
                )
                count = half if index < len(labels) else requests_per_side - half
                opened = sessions.read()
                http._block(url, prepared, headers, count=count, into=sides[label], **block)
                sides[label].connections_opened += sessions.read() - opened
    finally:
        requester.close()
    same, difference = _compared(answers)
    return http.HttpPair(
        suite.name,
        scenario.title,
        str(prepared),
        clients,
        sides.pop("off"),
        sides.pop("on"),
        same_answer=same,
        difference=difference,
        arms=sides,
        skipped=skipped,
    )


def _compared(answers: dict[str, Sample | str]) -> tuple[bool | None, str]:
    """Every arm's answer against on's: the same, or what differs first."""
    differences = []
    for label, answer in answers.items():
        if label == "on":
            continue
        same, difference = http._compared({False: answer, True: answers["on"]})
        if same is not True:
            differences.append(f"{label}: {difference}")
            if same is False:
                return False, "; ".join(differences)
    if differences:
        return None, "; ".join(differences)
    return True, ""
