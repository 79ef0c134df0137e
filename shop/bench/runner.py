"""Running the scenarios: each one off against on, with the baseline request alongside, each
module's hooks around its scenarios, then the order-history page against its SQL floor."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence

from django.db import DatabaseError

from shop import toggles
from shop.bench import order_history as history_page
from shop.bench.alternation import Arm, Plan, Progress, alternate
from shop.bench.answers import AnswerKeeper, compare
from shop.bench.discovery import Suite
from shop.bench.hooks import Hooks, restore
from shop.bench.measure import Prepared, Requester, baseline_of, send
from shop.bench.results import Entry, Run, Sample, Side, error_text
from shop.bench.scenario import Scenario


def run_scenario(
    suite: Suite,
    index: int,
    scenario: Scenario,
    *,
    requester: Requester,
    plan: Plan,
    progress: Progress,
) -> Entry:
    """One scenario, off against on. An exception is recorded on the entry, not raised
    (Ctrl-C is raised)."""
    registered = {toggle.name for toggle in toggles.registered()}
    holds = {name: on for name, on in scenario.hold.items() if name in registered}
    entry = Entry(
        name=suite.name,
        title=scenario.title,
        scenario=index,
        writes=scenario.writes,
        hold=holds,
        notes=scenario.notes,
    )
    for name in scenario.hold.keys() - registered:
        entry.warnings.append(f"holds {name!r}, which no technique registers yet: not sent")
        progress.note(f"{suite.name}[{index}]: {entry.warnings[-1]}")
    flags = {state: {**holds, suite.name: state} for state in (False, True)}
    hooks = Hooks([suite], flags)
    try:
        if scenario.prepare is not None:
            scenario.prepare()
        call = scenario.call()
        prepared = Prepared.of(call, requester)
        entry.path = str(prepared)
        baseline = Prepared.of(baseline_of(call), requester)

        def side(state: bool, memory: bool = False) -> Callable[[], Sample]:
            return lambda: send(
                requester,
                prepared,
                flags=flags[state],
                writes=scenario.writes,
                answer=scenario.answer,
                memory=memory,
                db_bytes=scenario.db_bytes,
                metrics=scenario.metrics,
            )

        keepers = {False: AnswerKeeper(side(False)), True: AnswerKeeper(side(True))}
        if not hooks.blocking:
            for state in (False, True):
                hooks.enter(state)  # only takes the plans: there is no before()
        runs = plan.runs(scenario)
        samples = alternate(
            [
                Arm("off", False, keepers[False]),
                Arm("on", True, keepers[True]),
                # Not compared with anything: only its time is kept, the ceiling's denominator.
                Arm("baseline", True, lambda: send(requester, baseline, flags=flags[True])),
            ],
            runs=runs,
            warmup=plan.warmups(scenario),
            budget_s=plan.budget_s,
            enter=hooks.enter if hooks.blocking else None,
            progress=progress,
            label=f"{suite.name}[{index}] {scenario.title}",
        )
        entry.off, entry.on = Side(samples["off"]), Side(samples["on"])
        entry.baseline = Side(samples["baseline"])
        if len(samples["off"]) < runs:
            entry.warnings.append(
                f"{len(samples['off'])} of {runs} runs per side: the scenario's "
                f"{plan.budget_s:g} s budget ran out"
            )
        entry.same_answer, entry.difference = compare(keepers[False].first, keepers[True].first)
        entry.answer_stable = keepers[False].stable and keepers[True].stable
        if scenario.memory:
            for state, measured in ((False, entry.off), (True, entry.on)):
                if hooks.blocking:
                    hooks.enter(state)
                measured.peak_memory_bytes = side(state, memory=True)().peak_memory_bytes
    except Exception as exc:
        entry.error = error_text(exc)
        progress.note(f"{suite.name}[{index}] failed: {entry.error}")
        progress.note(traceback.format_exc())
    entry.plans = hooks.plans
    return entry


def run_suite(
    suite: Suite,
    *,
    requester: Requester,
    plan: Plan,
    progress: Progress,
    into: list[Entry],
) -> list[str]:
    """Every scenario of one module, then its after() hook, whatever happened. Entries are
    appended to `into` as they finish, so an interrupted run keeps the finished ones."""
    try:
        for index, scenario in enumerate(suite.scenarios):
            into.append(
                run_scenario(
                    suite,
                    index,
                    scenario,
                    requester=requester,
                    plan=plan,
                    progress=progress,
                )
            )
    finally:
        failures = restore([suite], progress)
    return failures


def run(
    *,
    suites: Sequence[Suite],
    hook_suites: Sequence[Suite],
    order_history: bool,
    plan: Plan,
    progress: Progress,
    into: Run,
) -> Run:
    """Every suite, then the order-history pair if asked. `hook_suites` are the modules whose
    hooks the all-off/all-on pair uses (all of them). Results accumulate in `into`."""
    requester = Requester()
    try:
        for suite in suites:
            into.problems.extend(
                run_suite(
                    suite,
                    requester=requester,
                    plan=plan,
                    progress=progress,
                    into=into.entries,
                )
            )
        if order_history:
            into.order_history = history_page.run(
                suites=hook_suites,
                requester=requester,
                plan=plan,
                progress=progress,
            )
    finally:
        try:
            requester.close()
        except DatabaseError as exc:  # an aborted outer transaction: say so, keep the real error
            into.problems.append(f"could not delete the tokens the bench created: {exc}")
    return into
