"""Finding the scenarios: `shop/bench/scenarios/<technique>.py`, one module per technique."""

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

# Not a technique: every toggle off against every toggle on for the order-history page, with
# the hand-written SQL floor. It runs with no names given, or when named.
ORDER_HISTORY = "order_history"


@dataclass
class Suite:
    """One technique's scenario module: its scenarios and its optional hooks."""

    name: str
    scenarios: list[Scenario]
    before: Callable[[bool], None] | None = None
    after: Callable[[], None] | None = None
    plans: Callable[[], dict[str, str]] | None = None


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
    try:
        toggles.get(name)
    except toggles.UnknownToggle:
        raise BenchError(
            f"shop/bench/scenarios/{name}.py measures {name!r}, which no technique registers "
            f"(no TOGGLE in shop/techniques/{name}.py)"
        ) from None
    found = Suite(
        name=name,
        scenarios=[main, *extras],
        before=getattr(module, "before", None),
        after=getattr(module, "after", None),
        plans=getattr(module, "plans", None),
    )
    return found


def load(names: list[str]) -> tuple[list[Suite], list[str]]:
    """The suites to run, and the problems of the ones that cannot run.

    Named ones must exist and load, or this raises with the list of what does exist. With no
    names, every module is tried and a broken one is reported, not fatal: one technique
    still being written must not stop the others' numbers.
    """
    available = module_names()
    if not names:
        suites, problems = [], []
        for name in available:
            try:
                suites.append(suite(name))
            except Exception as exc:  # reported; the other techniques still run
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        return suites, problems
    unknown = [name for name in names if name not in available and name != ORDER_HISTORY]
    if unknown:
        without = sorted({t.name for t in toggles.registered()} - set(available))
        raise BenchError(
            f"no scenario for {', '.join(unknown)}. Scenarios: "
            f"{', '.join([*available, ORDER_HISTORY])}."
            + (f" Registered toggles without one: {', '.join(without)}." if without else "")
        )
    return [suite(name) for name in dict.fromkeys(names) if name != ORDER_HISTORY], []
