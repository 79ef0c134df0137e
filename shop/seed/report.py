"""What a seed run reports: counts, timings, memory, and the targets it is held to."""

from __future__ import annotations

import resource
import sys
from dataclasses import asdict, dataclass, field
from datetime import date
from time import perf_counter

from shop.seed.spec import MEMORY_TARGET_BYTES, TIME_TARGETS

MIB = 1024 * 1024


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def format_bytes(n: int) -> str:
    return f"{n / MIB:,.0f} MB"


@dataclass(frozen=True)
class TargetResult:
    name: str  # e.g. "medium < 60 s"
    met: bool
    actual: str  # e.g. "41.3 s"

    def line(self) -> str:
        return f"target: {self.name}  →  {'met' if self.met else 'MISSED'} ({self.actual})"


@dataclass
class SeedReport:
    size: str
    seed: int
    anchor: date
    database: str
    counts: dict[str, int] = field(default_factory=dict)  # rows loaded per table
    previous_counts: dict[str, int] = field(default_factory=dict)  # rows before, per table
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase, in order
    total_seconds: float = 0.0
    peak_rss_bytes: int = 0
    copy_statements: int = 0
    copy_seconds: dict[str, float] = field(default_factory=dict)  # time in COPY, per table
    freeze: bool = True
    rebuilt_objects: int = 0  # indexes and constraints dropped for the load and re-created

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.total_seconds if self.total_seconds else 0.0

    def targets(self) -> list[TargetResult]:
        results = []
        if self.size in TIME_TARGETS:
            limit = TIME_TARGETS[self.size]
            results.append(
                TargetResult(
                    name=f"{self.size} < {limit:g} s",
                    met=self.total_seconds < limit,
                    actual=f"{self.total_seconds:.1f} s",
                )
            )
        results.append(
            TargetResult(
                name=f"peak memory < {format_bytes(MEMORY_TARGET_BYTES)}",
                met=self.peak_rss_bytes < MEMORY_TARGET_BYTES,
                actual=format_bytes(self.peak_rss_bytes),
            )
        )
        return results

    @property
    def all_targets_met(self) -> bool:
        return all(t.met for t in self.targets())

    def summary_line(self) -> str:
        return (
            f"Seeded size={self.size} seed={self.seed} anchor={self.anchor.isoformat()}: "
            f"{self.total_rows:,} rows in {self.total_seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s), peak memory {format_bytes(self.peak_rss_bytes)}"
        )

    def lines(self) -> list[str]:
        width = max(len(t) for t in self.counts) if self.counts else 10
        out = ["", "Rows loaded:"]
        out += [f"  {table:<{width}}  {rows:>12,}" for table, rows in self.counts.items()]
        out.append(f"  {'total':<{width}}  {self.total_rows:>12,}")
        out += ["", "Time per phase:"]
        out += [f"  {phase:<{width}}  {seconds:>10.1f} s" for phase, seconds in self.phases.items()]
        out.append(f"  {'total':<{width}}  {self.total_seconds:>10.1f} s")
        out += [
            "",
            self.summary_line(),
            f"  {self.copy_statements} COPY statements{' WITH (FREEZE)' if self.freeze else ''}, "
            f"{self.rebuilt_objects} indexes/constraints rebuilt after loading",
        ]
        out += [t.line() for t in self.targets()]
        out += [
            "",
            "Log in with (password 'password' for all):",
            "  admin  (superuser), staff  (staff, not superuser), "
            f"user1 .. user{self.counts.get('auth_user', 2) - 2}  (customers)",
        ]
        return out

    def to_dict(self) -> dict:
        data = asdict(self)
        data["anchor"] = self.anchor.isoformat()
        data["total_rows"] = self.total_rows
        data["rows_per_second"] = round(self.rows_per_second, 1)
        data["targets"] = [asdict(t) for t in self.targets()]
        data["all_targets_met"] = self.all_targets_met
        return data


class Progress:
    """Plain progress lines, one per ~10% of a phase (no carriage returns: CI logs read well)."""

    def __init__(self, out, phase: str, total: int) -> None:
        self.out = out
        self.phase = phase
        self.total = total
        self.started = perf_counter()
        self.next_tenth = 1

    def update(self, done: int) -> None:
        if not self.total:
            return
        tenth = done * 10 // self.total
        if tenth >= self.next_tenth:
            self.next_tenth = tenth + 1
            self.out(
                f"  {self.phase:<8} {done:>11,} / {self.total:,}  ({done * 100 // self.total}%)  "
                f"{perf_counter() - self.started:.1f} s"
            )
