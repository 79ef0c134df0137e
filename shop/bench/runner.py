"""Running the scenarios: each one off against on, with its extra arms and the baseline request
alongside, each module's hooks around its scenarios, then each side cold when it asks."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from contextlib import nullcontext

from django.db import DatabaseError

from shop import replication, toggles
from shop.bench import cold
from shop.bench.alternation import Arm, Plan, Progress, alternate
from shop.bench.answers import AnswerKeeper, compare
from shop.bench.discovery import Suite
from shop.bench.hooks import Hooks, restore
from shop.bench.measure import Prepared, Requester, baseline_of, per_request, rolled_back, send
from shop.bench.results import ArmResult, Entry, Run
from shop.bench.samples import Sample, Side, error_text
from shop.bench.scenario import Scenario
from shop.perf_headers import TOGGLE_HEADER
from shop.techniques import read_replica


def run_scenario(
    suite: Suite,
    index: int,
    scenario: Scenario,
    *,
    requester: Requester,
    plan: Plan,
    progress: Progress,
    hook_suites: Sequence[Suite] = (),
) -> Entry:
    """One scenario, off against on, with its extra arms and the baseline alternated alongside,
    then its cold runs if it asks for them. An exception is recorded on the entry, not raised
    (Ctrl-C is raised). A composite scenario uses the hooks of `hook_suites` (every module)."""
    registered = {toggle.name for toggle in toggles.registered()}
    flags = {state: scenario.flags(state) for state in (False, True)}
    entry = Entry(
        name=suite.name,
        title=scenario.title,
        scenario=index,
        writes=scenario.writes,
        hold={name: on for name, on in scenario.hold.items() if name in registered},
        every_toggle=scenario.every_toggle,
        notes=scenario.notes,
        targets=scenario.targets,
    )
    for name in scenario.hold.keys() - registered:
        entry.warnings.append(f"holds {name!r}, which no technique registers yet: not sent")
        progress.note(f"{suite.name}[{index}]: {entry.warnings[-1]}")
    # A composite pair's all off drops db_indexes' indexes too: every module's before().
    composite = scenario.every_toggle
    hooks = Hooks(hook_suites if composite else [suite], flags, plans=not composite)
    label = f"{suite.name}[{index}] {scenario.title}"
    try:
        # With read_replica on, the pair reads the replica: let it replay what earlier
        # scenarios committed (a contention round's orders, then their deletion) first, or a
        # side's runs would read a replica still catching up and answer differently.
        replication.caught_up(read_replica.replica_alias())
        if scenario.prepare is not None:
            scenario.prepare()
        job = scenario.run
        if job is not None:  # no request: each side times itself, no baseline beside it
            prepared, baseline = None, None
            entry.path = scenario.path
        else:
            call = scenario.call()
            prepared = Prepared.of(call, requester)
            entry.path, entry.user = str(prepared), call.user
            baseline = Prepared.of(baseline_of(call), requester)

        def side(state: bool, memory: bool = False) -> Callable[[], Sample]:
            if job is not None:
                return lambda: job(state)
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

        keepers = {"off": AnswerKeeper(side(False)), "on": AnswerKeeper(side(True))}
        keepers |= {arm.label: AnswerKeeper(arm.run) for arm in scenario.arms}
        if not hooks.blocking:
            for state in (False, True):
                hooks.enter(state)  # only takes the plans: there is no before()
        runs = plan.runs(scenario)
        samples = alternate(
            [
                Arm("off", False, keepers["off"]),
                Arm("on", True, keepers["on"]),
                # In the on side's state (after before(True)): the floor reads what on reads.
                *(Arm(arm.label, True, keepers[arm.label]) for arm in scenario.arms),
                # Not compared with anything: only its time is kept, the ceiling's denominator.
                *(
                    [Arm("baseline", True, lambda: send(requester, baseline, flags=flags[True]))]
                    if baseline is not None
                    else []
                ),
            ],
            runs=runs,
            warmup=plan.warmups(scenario),
            budget_s=plan.budget_s,
            enter=hooks.enter if hooks.blocking else None,
            progress=progress,
            label=label,
        )
        entry.off, entry.on = Side(samples["off"]), Side(samples["on"])
        entry.baseline = Side(samples["baseline"]) if baseline is not None else None
        if len(samples["off"]) < runs:
            entry.warnings.append(
                f"{len(samples['off'])} of {runs} runs per side: the scenario's "
                f"{plan.budget_s:g} s budget ran out"
            )
        entry.same_answer, entry.difference = compare(keepers["off"].first, keepers["on"].first)
        for arm in scenario.arms:
            result = ArmResult(arm.title, Side(samples[arm.label]), source=arm.source)
            if arm.compare:
                result.same_answer, difference = compare(
                    keepers["on"].first, keepers[arm.label].first, ("on", arm.label)
                )
                if difference:
                    entry.difference = entry.difference or f"{arm.title} against on: {difference}"
            if arm.body is not None:
                if hooks.blocking:
                    hooks.enter(True)
                with rolled_back() if scenario.writes else nullcontext():
                    on_body = _body(requester, prepared, flags[True])
                result.identical_bytes = arm.body() == on_body
            entry.arms[arm.label] = result
        entry.answer_stable = all(keeper.stable for keeper in keepers.values())
        if scenario.cold:
            warm = {False: keepers["off"].first, True: keepers["on"].first}
            _cold(entry, scenario, side, warm, hooks, plan=plan, progress=progress, label=label)
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


def _cold(
    entry: Entry,
    scenario: Scenario,
    side: Callable[[bool], Callable[[], Sample]],
    warm: dict[bool, Sample],
    hooks: Hooks,
    *,
    plan: Plan,
    progress: Progress,
    label: str,
) -> None:
    """Each side again, every run after the reset (untimed) that makes it a first request.

    After the warm runs, not among them: a reset before a cold run would leave the warm run
    after it a first request too. Off and on alternate ABBA as the warm runs do, with no
    warm-up, which is the point. Each cold answer must be its warm side's answer."""
    reset = scenario.reset or cold.reset

    def after_reset(run: Callable[[], Sample]) -> Callable[[], Sample]:
        def first_request() -> Sample:
            reset()
            return run()

        return first_request

    keepers = {state: AnswerKeeper(after_reset(side(state))) for state in (False, True)}
    samples = alternate(
        [Arm("off", False, keepers[False]), Arm("on", True, keepers[True])],
        runs=plan.runs(scenario),
        warmup=0,
        budget_s=plan.budget_s,
        enter=hooks.enter if hooks.blocking else None,
        progress=progress,
        label=f"{label}, cold",
    )
    entry.cold_off, entry.cold_on = Side(samples["off"]), Side(samples["on"])
    for state, keeper in keepers.items():
        name = "on" if state else "off"
        same, difference = compare(warm[state], keeper.first, (name, f"cold {name}"))
        entry.answer_stable = entry.answer_stable and keeper.stable
        if not same:
            entry.same_answer = False
            entry.difference = entry.difference or f"cold {name} against {name}: {difference}"


def _body(requester: Requester, prepared: Prepared, flags: dict[str, bool]) -> bytes | None:
    """The response body to `prepared`, sent once untimed with `flags`; None when streamed."""
    response = requester.client.generic(
        prepared.method,
        prepared.path,
        prepared.body,
        content_type=prepared.content_type,
        headers={**prepared.headers, TOGGLE_HEADER: toggles.format_flags(per_request(flags))},
    )
    return None if response.streaming else response.content


def run_suite(
    suite: Suite,
    *,
    requester: Requester,
    plan: Plan,
    progress: Progress,
    into: list[Entry],
    hook_suites: Sequence[Suite] = (),
) -> list[str]:
    """Every scenario of one module, then the after() hooks of the modules whose hooks ran
    (its own; every module's for a composite suite), whatever happened. Entries are appended
    to `into` as they finish, so an interrupted run keeps the finished ones."""
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
                    hook_suites=hook_suites,
                )
            )
    finally:
        failures = restore(hook_suites if suite.composite else [suite], progress)
    return failures


def run(
    *,
    suites: Sequence[Suite],
    hook_suites: Sequence[Suite],
    plan: Plan,
    progress: Progress,
    into: Run,
) -> Run:
    """Every suite in turn. `hook_suites` are the modules whose hooks a composite scenario's
    all off and all on use: every module. Results accumulate in `into`."""
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
                    hook_suites=hook_suites,
                )
            )
    finally:
        try:
            requester.close()
        except DatabaseError as exc:  # an aborted outer transaction: say so, keep the real error
            into.problems.append(f"could not delete the tokens the bench created: {exc}")
    return into
