"""Finding the scenarios: `shop/bench/scenarios/<technique>.py`, one module per technique, and
`shop/bench/scenarios/<request>.py` for a composite scenario (every toggle off against every one
on: `order_history`), which runs after the techniques."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from shop import toggles
from shop.bench import scenarios as scenarios_package
from shop.bench.measure import BenchError
from shop.bench.scenario import Scenario

RESERVED_ARMS = {"off", "on", "baseline"}  # the arms every scenario has


@dataclass
class Suite:
    """One technique's scenario module: its scenarios and its optional hooks."""

    name: str
    scenarios: list[Scenario]
    before: Callable[[bool], None] | None = None
    after: Callable[[], None] | None = None
    plans: Callable[[], dict[str, str]] | None = None

    @property
    def composite(self) -> bool:
        """Every toggle off against every one on, with every module's hooks."""
        return self.scenarios[0].every_toggle


def module_names() -> list[str]:
    return sorted(
        module.name
        for module in pkgutil.iter_modules(scenarios_package.__path__)
        if not module.name.startswith("_")
    )


def import_module(name: str) -> ModuleType:
    return importlib.import_module(f"{scenarios_package.__name__}.{name}")


def suite(name: str) -> Suite:
    """Import one scenario module and check it against the toggle registry."""
    module = import_module(name)
    main = getattr(module, "SCENARIO", None)
    if not isinstance(main, Scenario):
        raise BenchError(f"shop/bench/scenarios/{name}.py defines no SCENARIO = Scenario(...)")
    extras = list(getattr(module, "EXTRA_SCENARIOS", []))
    for scenario in [main, *extras]:
        if not isinstance(scenario, Scenario):
            raise BenchError(f"{name}: EXTRA_SCENARIOS holds {scenario!r}, not a Scenario")
        if scenario.name != name:
            raise BenchError(
                f"shop/bench/scenarios/{name}.py measures {scenario.name!r}: a scenario is named "
                "as its technique and its module"
            )
    _check_toggles(name, [main, *extras])
    for scenario in [main, *extras]:
        labels = [arm.label for arm in scenario.arms]
        taken = [label for label in labels if label in RESERVED_ARMS or labels.count(label) > 1]
        if taken:
            raise BenchError(
                f"shop/bench/scenarios/{name}.py: an extra arm is labelled {taken[0]!r}, which "
                f"another arm has (off, on and baseline are the bench's own)"
            )
    found = Suite(
        name=name,
        scenarios=[main, *extras],
        before=getattr(module, "before", None),
        after=getattr(module, "after", None),
        plans=getattr(module, "plans", None),
    )
    return found


def _check_toggles(name: str, scenarios: list[Scenario]) -> None:
    """A technique's module is named for a registered toggle. A composite one flips them all, so
    its name must not be a toggle's (which would it measure?) and it holds none."""
    composite = {scenario.every_toggle for scenario in scenarios}
    if len(composite) > 1:
        raise BenchError(
            f"shop/bench/scenarios/{name}.py mixes composite scenarios (every_toggle) with "
            "scenarios of one technique: a module is one or the other"
        )
    registered = {toggle.name for toggle in toggles.registered()}
    if composite == {True}:
        if name in registered:
            raise BenchError(
                f"shop/bench/scenarios/{name}.py is composite (every_toggle), but {name!r} is a "
                "technique's toggle: name a composite scenario for its request"
            )
        held = sorted({toggle for scenario in scenarios for toggle in scenario.hold})
        if held:
            raise BenchError(
                f"shop/bench/scenarios/{name}.py is composite (every_toggle) and holds "
                f"{', '.join(held)}: every toggle is flipped, none can be held"
            )
        return
    if name not in registered:
        raise BenchError(
            f"shop/bench/scenarios/{name}.py measures {name!r}, which no technique registers "
            f"(no TOGGLE in shop/techniques/{name}.py)"
        )


def load(names: list[str]) -> tuple[list[Suite], list[str]]:
    """The suites to run, and the problems of the ones that cannot run.

    Named ones must exist and load, or this raises with the list of what does exist. With no
    names, every module is tried and a broken one is reported, not fatal: one technique
    still being written must not stop the others' numbers. Composite suites come last either
    way: they exercise every technique, so they run once the techniques' own pairs are done.
    """
    available = module_names()
    if not names:
        suites, problems = [], []
        for name in available:
            try:
                suites.append(suite(name))
            except Exception as exc:  # reported; the other techniques still run
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        return _composites_last(suites), problems
    unknown = [name for name in names if name not in available]
    if unknown:
        without = sorted({t.name for t in toggles.registered()} - set(available))
        raise BenchError(
            f"no scenario for {', '.join(unknown)}. Scenarios: {', '.join(available)}."
            + (f" Registered toggles without one: {', '.join(without)}." if without else "")
        )
    return _composites_last([suite(name) for name in dict.fromkeys(names)]), []


def _composites_last(suites: list[Suite]) -> list[Suite]:
    return sorted(suites, key=lambda found: found.composite)  # stable: techniques keep order
