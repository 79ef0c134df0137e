"""The bench's results as a console table, JSON and Markdown (the HTML is in `html.py`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from shop.bench import metrics
from shop.bench.formatting import (
    HEADER,
    alias_line,
    check,
    context_lines,
    counts,
    ms,
    row,
    size,
    times,
    uses_replica,
)
from shop.bench.html import to_html
from shop.bench.measure import BASELINE_PATH, BenchError
from shop.bench.results import Entry, Run
from shop.bench.samples import Side, ratio


def table(run: Run, *, markdown: bool = False, title_width: int = 42) -> str:
    rows = [row(entry) for entry in run.entries]
    if not markdown:
        rows = [[r[0], _clip(r[1], title_width), *r[2:]] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    numeric = {2, 3, 4, 5, 6}
    lines = []
    for r in [HEADER, *rows]:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(r)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def metrics_lines(run: Run) -> list[str]:
    """Each scenario whose cache operations, connections opened or counts of its own are not
    all 0, with those counts per request, off and on."""
    lines = []
    for entry in run.entries:
        if entry.off is None or entry.on is None:
            continue
        found = counts(entry)
        if found:
            lines.append(f"{entry.name}[{entry.scenario}]: {found}")
    return lines


def alias_lines(run: Run) -> list[str]:
    """Where the queries ran, per request (the table's `queries` adds up every alias): one
    line per scenario that sent a query off the primary, with each side's queries per alias
    and the primary's share; else one line that says every query ran on the primary."""
    measured = [e for e in run.entries if e.off is not None and e.on is not None]
    routed = [e for e in measured if uses_replica(e.off) or uses_replica(e.on)]
    if not routed:
        return ["every query ran on the primary (default)"] if measured else []
    return [f"{e.name}[{e.scenario}]: {alias_line(e)}" for e in routed]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def entry_lines(entry: Entry) -> list[str]:
    """What a scenario declares beyond its pair, one line each: its cold runs, its extra arms
    and how they compare with on, its targets. Nothing for a plain pair."""
    if not (entry.cold_off or entry.arms or entry.targets) or entry.error:
        return []
    who = f" as {entry.user}" if entry.user else ""
    lines = [f"{entry.name}[{entry.scenario}] {entry.title}: {entry.path}{who}"]
    for label, side in (("cold off", entry.cold_off), ("cold on", entry.cold_on)):
        if side is not None:
            lines.append(f"  {label:<10} {_side(side)}")
    if entry.cold_off and entry.cold_on and entry.off and entry.on:
        lines.append(
            f"  cold: off {times(ratio(entry.cold_off.p50_ms, entry.off.p50_ms))} and on "
            f"{times(ratio(entry.cold_on.p50_ms, entry.on.p50_ms))} their warm p50; on "
            f"{times(entry.cold_speedup_p50)} faster than off cold"
        )
    for arm in entry.arms.values():
        multiple = entry.on and ratio(entry.on.p50_ms, arm.side.p50_ms)
        compared = (
            f"  (on is {times(multiple)} its p50)  same answer as on {check(arm.same_answer)}"
            + {True: ", byte for byte", False: ", not byte for byte", None: ""}[arm.identical_bytes]
        )
        # An arm that answers with counts of its own (a contention round) is not on's kind.
        lines.append(
            f"  {arm.title:<10} {_side(arm.side)}"
            + (compared if arm.same_answer is not None else "")
        )
        counts = metrics.summary({"p50": arm.side.metrics})  # a contention round's own counts
        if counts:
            lines.append(f"  {'':<10} {counts}")
    checked = entry.to_dict()["targets"]
    if checked:
        lines.append(
            "  targets: "
            + " · ".join(
                f"{t['label']} {t['target']}: {_value(t['value'])} {'✓' if t['met'] else '✗'}"
                for t in checked.values()
            )
        )
    return lines


def _side(side: Side) -> str:
    return (
        f"p50 {ms(side.p50_ms):>7} ms  p95 {ms(side.p95_ms):>7} ms  "
        f"db {ms(side.db_p50_ms):>6} ms  {_queries(side.queries)}  {size(side.bytes)}"
    )


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _queries(n: int) -> str:
    return f"{n} query" if n == 1 else f"{n} queries"


def to_json(run: Run) -> str:
    return json.dumps(run.to_dict(), indent=2, ensure_ascii=False) + "\n"


def run_lines(run: Run) -> list[str]:
    """`entry_lines` of every entry that has any, a blank line between two."""
    lines: list[str] = []
    for entry in run.entries:
        more = entry_lines(entry)
        if more:
            lines += [""] * bool(lines) + more
    return lines


def to_markdown(run: Run) -> str:
    lines = [f"# Benchmark, {run.started_at}", ""]
    lines += [f"- {line}" for line in context_lines(run)]
    lines += ["", table(run, markdown=True), ""]
    lines.append(
        "Times are wall-clock milliseconds per request, body included; speedup is off p50 "
        "divided by on p50. Queries are per request, all databases. The baseline is "
        f"`GET {BASELINE_PATH}` sent as the same user, alongside each pair: what a request "
        "costs when its view does nothing. The ceiling is off p50 divided by the baseline's: "
        "the largest speedup the request could show end to end, whatever the technique does."
    )
    routed = alias_lines(run)
    if routed:
        lines += ["", "## Queries per database, per request", "", *[f"- {r}" for r in routed]]
    found = metrics_lines(run)
    if found:
        lines += ["", "## Counts beyond queries, per request", "", *[f"- {c}" for c in found]]
    more = run_lines(run)
    if more:
        lines += ["", "## Cold runs, extra arms and targets", "", "```", *more, "```"]
    notes = [
        f"- **{e.name}** ({e.title}): {text}"
        for e in run.entries
        for text in [e.notes, *e.warnings, e.difference, e.error]
        if text
    ]
    notes += [f"- {problem}" for problem in run.problems]
    if notes:
        lines += ["", "## Notes, warnings and errors", "", *notes]
    return "\n".join(lines) + "\n"


def write(run: Run, *, directory: Path, json_path: Path | None = None) -> dict[str, Path]:
    """bench.json, bench.md and bench.html in `directory` (and the JSON at `json_path`)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = to_json(run)
    paths = {
        "json": directory / "bench.json",
        "markdown": directory / "bench.md",
        "html": directory / "bench.html",
    }
    paths["json"].write_text(data, encoding="utf-8")
    paths["markdown"].write_text(to_markdown(run), encoding="utf-8")
    paths["html"].write_text(to_html(run), encoding="utf-8")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(data, encoding="utf-8")
        paths["json (--json)"] = json_path
    return paths


def writable_directory(report: str | None, default_dir: Path, json_path: str | None) -> Path:
    """The report directory, created now and tried with a file (and the --json file's
    directory): a path that cannot be written fails in a second, not after the run."""
    directory = Path(report) if report else default_dir
    for flag, folder in (("--report", directory), ("--json", json_path and Path(json_path).parent)):
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise BenchError(
                f"{flag}: cannot write in {folder} ({exc.strerror or type(exc).__name__})"
            ) from None
    return directory
