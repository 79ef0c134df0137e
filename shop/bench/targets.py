"""What a scenario promises: a figure of its result, and the bound it must stay within.

A scenario declares its targets (`Scenario.targets`), each naming a figure by its path in the
scenario's JSON entry (`"on.queries"`, `"speedup_p50"`, `"arms.floor.on_multiple_p50"`), so a
target reads the same figure the reports show and the JSON keeps, and needs no code of its own.
Every report shows each target's value and whether it was met.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    metric: str  # a path into the entry's JSON: "on.queries", "arms.floor.on_multiple_p50"
    at_most: float | None = None
    at_least: float | None = None
    label: str = ""  # what it means, for the reports; the metric's path by default

    def __post_init__(self) -> None:
        if (self.at_most is None) == (self.at_least is None):
            raise ValueError(f"target {self.metric!r}: give one of at_most and at_least")

    @property
    def bound(self) -> str:
        """`<= 4`, `>= 5`."""
        if self.at_most is not None:
            return f"<= {self.at_most:g}"
        return f">= {self.at_least:g}"

    def check(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The figure in `entry` (None when the run did not produce it) and whether it is
        within the bound; a missing figure is not met."""
        value = lookup(entry, self.metric)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number:
            met = False
        elif self.at_most is not None:
            met = value <= self.at_most
        else:
            met = value >= self.at_least
        return {
            "label": self.label or self.metric,
            "target": self.bound,
            "value": value if number else None,
            "met": met,
        }


def lookup(data: dict[str, Any], path: str) -> Any:
    """`lookup(entry, "arms.floor.on_multiple_p50")`: None where a step is missing."""
    value: Any = data
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def evaluate(targets: tuple[Target, ...], entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target's check, keyed by its metric's path."""
    return {target.metric: target.check(entry) for target in targets}
