"""The bench's results as a console table, JSON and Markdown (the HTML is in `html.py`)."""

from __future__ import annotations

import json
from pathlib import Path

from shop.bench import metrics
from shop.bench.floor import SQL
from shop.bench.formatting import HEADER, check, context_lines, ms, row, size, times
from shop.bench.html import to_html
from shop.bench.measure import BASELINE_PATH
from shop.bench.results import (
    TARGET_FLOOR_MULTIPLE,
    TARGET_ON_QUERIES,
    TARGET_SPEEDUP,
    OrderHistory,
    Run,
)


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
        counts = metrics.summary({"off": entry.off.metrics, "on": entry.on.metrics})
        if counts:
            lines.append(f"{entry.name}[{entry.scenario}]: {counts}")
    return lines


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def order_history_lines(history: OrderHistory | None) -> list[str]:
    if history is None:
        return []
    head = f"order history: {history.path} as {history.user} ({history.orders:,} orders)"
    if history.error or not (history.off and history.on and history.floor and history.baseline):
        return [head, f"  ERROR: {history.error}"]
    off, on, floor, base = history.off, history.on, history.floor, history.baseline
    targets = history.targets()

    def verdict(key: str) -> str:
        return "✓" if targets[key]["met"] else "✗"

    lines = [
        head,
        f"  all off    p50 {ms(off.p50_ms):>7} ms  p95 {ms(off.p95_ms):>7} ms  "
        f"db {ms(off.db_p50_ms):>6} ms  {_queries(off.queries)}  {size(off.bytes)}",
        f"  all on     p50 {ms(on.p50_ms):>7} ms  p95 {ms(on.p95_ms):>7} ms  "
        f"db {ms(on.db_p50_ms):>6} ms  {_queries(on.queries)}  {size(on.bytes)}  "
        f"{times(history.speedup_p50)} faster than all off",
        f"  SQL floor  p50 {ms(floor.p50_ms):>7} ms  p95 {ms(floor.p95_ms):>7} ms  "
        f"db {ms(floor.db_p50_ms):>6} ms  {_queries(floor.queries)}  {size(floor.bytes)}  "
        f"(all on is {times(history.floor_multiple_p50)} the floor)",
        f"  baseline   p50 {ms(base.p50_ms):>7} ms  p95 {ms(base.p95_ms):>7} ms  "
        f"db {ms(base.db_p50_ms):>6} ms  {_queries(base.queries)}  {size(base.bytes)}  "
        f"(GET {BASELINE_PATH} as {history.user}: {times(history.baseline_floor_multiple_p50)} "
        "the floor on its own)",
        f"  same answer: all off vs all on {check(history.same_answer)}; floor vs all on "
        f"{check(history.floor_same_answer)}"
        + (", byte for byte" if history.floor_identical_bytes else ", not byte for byte"),
        f"  targets: all on ≤ {TARGET_ON_QUERIES} queries {verdict('on_queries')} · "
        f"≥ {TARGET_SPEEDUP:g}× faster than all off {verdict('speedup_p50')} · "
        f"within {TARGET_FLOOR_MULTIPLE:g}× of the floor {verdict('floor_multiple_p50')}",
    ]
    if history.difference:
        lines.append(f"  {history.difference}")
    return lines


def _queries(n: int) -> str:
    return f"{n} query" if n == 1 else f"{n} queries"


def to_json(run: Run) -> str:
    data = run.to_dict()
    history = run.order_history
    data["floor"] = None
    if history is not None and history.floor is not None:
        data["floor"] = {
            "endpoint": history.path,
            **history.floor.to_dict(),
            "all_on_multiple_p50": data["order_history"]["floor_multiple_p50"],
            "same_answer": history.floor_same_answer,
            "identical_bytes": history.floor_identical_bytes,
            "sql": SQL.strip(),
        }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


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
    counts = metrics_lines(run)
    if counts:
        lines += ["", "## Counts beyond queries, per request", "", *[f"- {c}" for c in counts]]
    history = order_history_lines(run.order_history)
    if history:
        lines += ["", "## Order history and the SQL floor", "", "```", *history, "```"]
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
