"""What the bench measured, in plain data: one `Entry` per scenario (with its extra arms, cold
runs and targets when it declares them), and the run's context. `to_dict()` is the JSON the
reports are written from. A side's runs and their statistics are in `shop.bench.samples`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shop.bench.samples import Side, ratio
from shop.bench.targets import Target, evaluate


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


@dataclass
class ArmResult:
    """An extra arm's runs (the SQL floor), and how its answer compares with the on side's."""

    title: str
    side: Side
    same_answer: bool | None = None  # its answer against the on side's, parsed
    identical_bytes: bool | None = None  # ... and byte for byte, when the arm builds a body
    source: str = ""  # what it runs: the floor's SQL

    def to_dict(self, on: Side | None, baseline: Side | None) -> dict[str, Any]:
        """With the on side's p50 as a multiple of the arm's (1.0: as fast as the arm), and
        the baseline's: how close any version of the request could come to it."""
        return {
            "title": self.title,
            "side": self.side.to_dict(),
            "on_multiple_p50": _rounded(on and ratio(on.p50_ms, self.side.p50_ms)),
            "baseline_multiple_p50": _rounded(
                baseline and ratio(baseline.p50_ms, self.side.p50_ms)
            ),
            "same_answer": self.same_answer,
            "identical_bytes": self.identical_bytes,
            "source": self.source,
        }


@dataclass
class Entry:
    """One scenario of one technique, off against on."""

    name: str
    title: str
    scenario: int  # 0 for the module's SCENARIO, 1.. for its EXTRA_SCENARIOS
    path: str = ""  # "GET /api/products/?page_size=50"
    user: str | None = None  # who the request logs in as; None: anonymous
    writes: bool = False
    hold: dict[str, bool] = field(default_factory=dict)
    every_toggle: bool = False  # composite: every toggle off against every one on
    notes: str = ""
    off: Side | None = None
    on: Side | None = None
    baseline: Side | None = None  # the cheapest request, as the same user (measure.BASELINE_PATH)
    arms: dict[str, ArmResult] = field(default_factory=dict)  # the scenario's extra arms
    cold_off: Side | None = None  # with `Scenario.cold`: each run after a reset, a first request
    cold_on: Side | None = None
    targets: tuple[Target, ...] = ()  # as declared; checked in to_dict()
    same_answer: bool | None = None
    answer_stable: bool | None = None  # every run of a side gave that side's first answer
    difference: str = ""  # where the answers differ, when they do
    plans: dict[str, dict[str, str]] = field(default_factory=dict)  # side → query → plan
    warnings: list[str] = field(default_factory=list)
    error: str = ""  # the exception that stopped this scenario, if one did

    @property
    def speedup_p50(self) -> float | None:
        if self.off is None or self.on is None:
            return None
        return ratio(self.off.p50_ms, self.on.p50_ms)

    @property
    def cold_speedup_p50(self) -> float | None:
        if self.cold_off is None or self.cold_on is None:
            return None
        return ratio(self.cold_off.p50_ms, self.cold_on.p50_ms)

    @property
    def db_speedup_p50(self) -> float | None:
        """Off database time divided by on: the technique's effect on the database alone."""
        if self.off is None or self.on is None:
            return None
        return ratio(self.off.db_p50_ms, self.on.db_p50_ms)

    @property
    def shared_statements(self) -> frozenset[str]:
        """The statements the baseline request sends too (authentication): no technique of
        this request's own can change them."""
        if self.baseline is None:
            return frozenset()
        return frozenset(sql for sample in self.baseline.samples for sql in sample.db_statements)

    @property
    def own_db_speedup_p50(self) -> float | None:
        """Off database time divided by on, without the baseline's statements (the token
        query): the technique's effect on the request's own queries. None when the baseline
        sends no statement, since it is then db_speedup_p50."""
        shared = self.shared_statements
        if self.off is None or self.on is None or not shared:
            return None
        return ratio(self.off.own_db_p50_ms(shared), self.on.own_db_p50_ms(shared))

    @property
    def ceiling_p50(self) -> float | None:
        """Off p50 divided by the baseline's p50: the largest end-to-end speedup this request
        could show, even if the technique made its own work free. The on side still pays the
        baseline (routing, middleware, authentication, DRF), so no technique gets past it."""
        if self.off is None or self.baseline is None:
            return None
        return ratio(self.off.p50_ms, self.baseline.p50_ms)

    @property
    def on_breakdown_ms(self) -> dict[str, float] | None:
        """Where the on side's p50 goes, approximately (medians do not add up exactly): the
        baseline request, the database time beyond the baseline's (its token query), and the
        rest, the Python of this request's own work (view, ORM, serializer, rendering)."""
        if self.on is None or self.baseline is None:
            return None
        database = max(self.on.db_p50_ms - self.baseline.db_p50_ms, 0.0)
        python = max(self.on.p50_ms - self.baseline.p50_ms - database, 0.0)
        return {"baseline": self.baseline.p50_ms, "database": database, "python": python}

    def to_dict(self) -> dict[str, Any]:
        speedup, db_speedup, ceiling = self.speedup_p50, self.db_speedup_p50, self.ceiling_p50
        own = self.own_db_speedup_p50
        breakdown = self.on_breakdown_ms
        cold = None
        if self.cold_off is not None and self.cold_on is not None:
            cold = {
                "off": self.cold_off.to_dict(),
                "on": self.cold_on.to_dict(),
                "speedup_p50": _rounded(self.cold_speedup_p50),
            }
        data = {
            "name": self.name,
            "title": self.title,
            "scenario": self.scenario,
            "path": self.path,
            "user": self.user,
            "writes": self.writes,
            "hold": self.hold,
            "every_toggle": self.every_toggle,
            "off": self.off.to_dict() if self.off else None,
            "on": self.on.to_dict() if self.on else None,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "arms": {
                label: arm.to_dict(self.on, self.baseline) for label, arm in self.arms.items()
            },
            "cold": cold,
            "speedup_p50": _rounded(speedup),
            "db_speedup_p50": _rounded(db_speedup),
            "own_db_speedup_p50": _rounded(own),
            "ceiling_p50": _rounded(ceiling),
            "on_breakdown_ms": (
                {part: round(ms, 3) for part, ms in breakdown.items()} if breakdown else None
            ),
            "same_answer": self.same_answer,
            "answer_stable": self.answer_stable,
            "difference": self.difference,
            "plans": self.plans,
            "notes": self.notes,
            "warnings": self.warnings,
            "error": self.error,
        }
        # Read from the figures above, so a target checks what the reports show.
        data["targets"] = evaluate(self.targets, data)
        return data

    @property
    def compared(self) -> list[bool | None]:
        """Every answer comparison: off against on, and each compared arm against on."""
        return [self.same_answer, *(arm.same_answer for arm in self.arms.values())]


@dataclass
class Run:
    """Everything one `manage.py bench` produced."""

    started_at: str  # ISO 8601, UTC
    settings_module: str
    size: str | None  # the --size asked for, or None
    detected_size: str | None  # the seeded size the row counts match, if any
    rows: dict[str, int]
    machine: dict[str, Any]
    repeat: int
    warmup: int
    budget_s: float
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # scenario modules that could not run
    # PERF_TOGGLES as the environment set it: the state of every toggle a pair does not set
    perf_toggles: str | None = None
    restored: list[str] = field(default_factory=list)  # what after() hooks fixed at start-up
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> bool:
        """An error stopped a scenario (a different answer is reported, not failed)."""
        return bool(self.problems) or any(e.error for e in self.entries)

    @property
    def different_answers(self) -> list[str]:
        return [f"{e.name}[{e.scenario}]" for e in self.entries if False in e.compared]

    @property
    def unstable_answers(self) -> list[str]:
        """Scenarios where a side's runs did not all give that side's first answer: the
        comparison of first answers then says little."""
        return [f"{e.name}[{e.scenario}]" for e in self.entries if e.answer_stable is False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "settings": self.settings_module,
            "perf_toggles": self.perf_toggles,
            "restored_at_start": self.restored,
            "size": self.size,
            "dataset": {"size": self.detected_size, "rows": self.rows},
            "machine": self.machine,
            "repeat": self.repeat,
            "warmup": self.warmup,
            "budget_s": self.budget_s,
            "elapsed_s": round(self.elapsed_s, 1),
            "interrupted": self.interrupted,
            "techniques": [entry.to_dict() for entry in self.entries],
            "problems": self.problems,
        }
