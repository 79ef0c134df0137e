"""A sweep's results as a console table, JSON, Markdown and HTML with line charts: each side's
p50 and database time against the size of the work, on a log x axis. A sweep of several
requests (`Sweep.series`) gets a table and charts per request."""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from shop.bench.formatting import check, ms, size, times
from shop.bench.html import COLORS, CSS, _svg
from shop.bench.sweep import Point, SweepRun

# One series per side and measure: solid for the p50, dashed for the database time, dotted
# for a part of the database time, dash-dotted for the time to the first byte.
DASH = {"p50": "", "db": "6 4", "part": "2 3", "ttfb": "8 3 2 3"}


def _columns(run: SweepRun, series: str = "") -> list[str]:
    parts = [f"{side} db {part}" for side in ("off", "on") for part in run.parts]
    memory = ["off peak mem", "on peak mem"] if run.memory else []
    ttfb = ["off ttfb", "on ttfb"] if run.streamed else []
    return [
        run.axis_of(series),
        "off p50",
        "on p50",
        "off db",
        "on db",
        *parts,
        *ttfb,
        *memory,
        "speedup",
        "same answer",
    ]


def _cells(run: SweepRun, point: Point) -> list[str]:
    entry = point.entry
    if entry.off is None or entry.on is None:
        return [f"{point.point:,}", "ERROR: " + entry.error]
    data = run.to_dict()["points"][run.points.index(point)]
    parts = [ms(data[side]["db_parts_ms"][part]) for side in ("off", "on") for part in run.parts]
    memory = [size(data[side]["peak_memory_bytes"]) for side in ("off", "on")] if run.memory else []
    ttfb = [ms(data[side]["ttfb_p50_ms"]) for side in ("off", "on")] if run.streamed else []
    return [
        f"{point.point:,}",
        ms(entry.off.p50_ms),
        ms(entry.on.p50_ms),
        ms(entry.off.db_p50_ms),
        ms(entry.on.db_p50_ms),
        *parts,
        *ttfb,
        *memory,
        times(entry.speedup_p50),
        check(entry.same_answer),
    ]


def table(run: SweepRun, *, markdown: bool = False) -> str:
    """One table, or with several series a table under each series' name."""
    if not run.series:
        return _table(run, "", run.points, markdown=markdown)
    return "\n\n".join(
        (f"### {name}\n\n" if markdown else f"{name}\n")
        + _table(run, name, points, markdown=markdown)
        for name, points in run.by_series().items()
    )


def _table(run: SweepRun, series: str, points: list[Point], *, markdown: bool) -> str:
    head, rows = _columns(run, series), [_cells(run, point) for point in points]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in [head, *rows] if i < len(r)) for i in range(len(head))]
    lines = ["  ".join(c.rjust(widths[i]) for i, c in enumerate(r)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def intro(run: SweepRun) -> list[str]:
    lines = [
        f"sweep {run.name} over {run.axis}: {run.size or 'the data of each point'}, "
        f"{run.repeat} runs per side per point; times in ms (p50), db = database time (p50)",
    ]
    if run.streamed:
        lines.append(
            "ttfb = time to the first byte of the body (p50): the whole p50 for a side that "
            "builds its body before sending it, far less for one that streams it"
        )
    if run.shape:
        lines.append(f"expected shape: {run.shape}")
    if run.skipped:
        lines.append(
            "skipped (the data cannot hold them): " + ", ".join(f"{p:,}" for p in run.skipped)
        )
    for empty in run.empty:
        where = f"{empty['series']} at " if empty["series"] else ""
        lines.append(f"not measured, {where}{empty['point']:,}: {empty['why']}")
    return lines


def to_markdown(run: SweepRun) -> str:
    lines = [f"# Sweep: {run.name}, {run.started_at}", ""]
    lines += [f"- {line}" for line in intro(run)]
    lines += ["", table(run, markdown=True), ""]
    notes = [
        f"- {p.label}: {t}" for p in run.points for t in [*p.entry.warnings, p.entry.error] if t
    ]
    notes += [f"- {problem}" for problem in run.problems]
    if notes:
        lines += ["## Warnings and errors", "", *notes, ""]
    return "\n".join(lines)


def line_chart(
    series: list[tuple[str, str, str, list[tuple[float, float]]]],
    *,
    x_label: str,
    label: str,
    unit: str = "ms",
) -> str:
    """Lines of (x, y) points, x on a log scale, y linear from 0. A series is (name, color,
    dash, points); each is drawn as one `<polyline data-series="name">` with a legend."""
    left, top, width, height, legend = 60, 12, 520, 260, 200
    xs = [x for *_, points in series for x, _ in points if x > 0]
    ys = [y for *_, points in series for _, y in points]
    if not xs:
        return ""
    low, high = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    high = max(high, low + 1)
    y_max = _nice(max(ys) if ys else 1.0)

    def px(x: float) -> float:
        return left + (math.log10(x) - low) / (high - low) * width

    def py(y: float) -> float:
        return top + height - y / y_max * height

    parts = [
        f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" '
        'stroke="#6b7280"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" stroke="#6b7280"/>',
    ]
    for decade in range(low, high + 1):
        x = px(10**decade)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" stroke="#e5e7eb"/>'
            f'<text x="{x:.1f}" y="{top + height + 16}" text-anchor="middle">{10**decade:,}</text>'
        )
    for tick in range(5):
        value = y_max * tick / 4
        y = py(value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#f3f4f6"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{ms(value)}</text>'
        )
    parts.append(
        f'<text x="{left + width / 2}" y="{top + height + 34}" text-anchor="middle">'
        f"{escape(x_label)} (log scale)</text>"
        f'<text x="14" y="{top + height / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + height / 2})">{escape(unit)}</text>'
    )
    for index, (name, color, dash, points) in enumerate(series):
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points if x > 0)
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline data-series="{escape(name)}" points="{coords}" fill="none" '
            f'stroke="{color}" stroke-width="2"{dashing}/>'
        )
        parts += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>'
            for x, y in points
            if x > 0
        ]
        ly = top + 8 + index * 18
        lx = left + width + 16
        parts.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" '
            f'stroke-width="2"{dashing}/><text x="{lx + 30}" y="{ly + 4}">{escape(name)}</text>'
        )
    return _svg(left + width + legend, top + height + 44, label, parts)


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def charts(run: SweepRun) -> dict[str, list[tuple[str, str]]]:
    """`{series: [(caption, svg), ...]}`: each series' charts, each with a caption that names
    the series, what the chart draws and its x axis ({"": [...]} for a sweep of one request)."""
    data = run.to_dict()["points"]
    out = {}
    for series in run.by_series():
        measured = [p for p in data if p["off"] and p["on"] and (p["series"] or "") == series]
        out[series] = [
            (f"{label} against {run.axis_of(series)}", svg)
            for label, svg in _series_charts(run, series, measured)
            if svg
        ]
    return out


def _series_charts(run: SweepRun, series: str, measured: list[dict]) -> list[tuple[str, str]]:
    """Both sides' p50 and database time against the point; with parts, a second chart of
    each side's database time by part."""
    name = f"{run.name}: {series}" if series else run.name
    axis = run.axis_of(series)
    lines = [
        (
            f"{side} {measure}",
            COLORS[side],
            DASH[measure],
            [(p["point"], p[side][key]) for p in measured],
        )
        for measure, key in (("p50", "p50_ms"), ("db", "db_p50_ms"))
        for side in ("off", "on")
    ]
    titled = [("p50 and database time", lines)]
    if run.parts:
        by_part = [
            (
                f"{side} db: {part}",
                COLORS[side],
                DASH["part"] if i else DASH["db"],
                [(p["point"], p[side]["db_parts_ms"][part]) for p in measured],
            )
            for side in ("off", "on")
            for i, part in enumerate(run.parts)
        ]
        titled.append(("database time by part", by_part))
    if run.streamed:
        # A streamed side's client has its first byte long before the last: both lines per side.
        first_byte = [
            (
                f"{side} {measure}",
                COLORS[side],
                DASH[measure],
                [(p["point"], p[side][key]) for p in measured],
            )
            for measure, key in (("p50", "p50_ms"), ("ttfb", "ttfb_p50_ms"))
            for side in ("off", "on")
        ]
        titled.append(("p50 and time to first byte", first_byte))
    if run.memory:
        memory = [
            (
                f"{side} peak memory",
                COLORS[side],
                "",
                [(p["point"], p[side]["peak_memory_bytes"] / 1024**2) for p in measured],
            )
            for side in ("off", "on")
        ]
        titled.append(("peak memory", memory))
    return [
        (
            f"{series}: {title}" if series else title,
            line_chart(
                lines,
                x_label=axis,
                label=f"{name}: {title}",
                unit="MB" if title == "peak memory" else "ms",
            ),
        )
        for title, lines in titled
    ]


def to_html(run: SweepRun) -> str:
    context = "".join(f"<li>{escape(line)}</li>" for line in intro(run))
    problems = "".join(f'<li class="error">{escape(p)}</li>' for p in run.problems)
    errors = "".join(
        f'<li class="error">{escape(p.label)}: {escape(p.entry.error)}</li>'
        for p in run.points
        if p.entry.error
    )
    drawn = charts(run)
    # Per series: its heading, its charts each under a caption, then its table, so a chart
    # is never read under another series' name.
    sections = "".join(
        (f"<section><h2>{escape(series)}</h2>" if series else "<section>")
        + "".join(
            f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>"
            for caption, svg in drawn.get(series, [])
        )
        + _html_table(run, series, points)
        + "</section>"
        for series, points in run.by_series().items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>PerfShop sweep: {escape(run.name)}, {escape(run.started_at)}</title>
<style>{CSS}</style></head>
<body>
<h1>Sweep: {escape(run.name)}</h1>
<p class="muted">{escape(run.started_at)} · {run.elapsed_s:.0f} s</p>
<ul>{context}{problems}{errors}</ul>
<p>At each point the scenario ran off and on, alternating, through the whole Django stack.
Solid lines are each side's p50, dashed ones its time in the database, dash-dotted ones (when
a side streams) its time to the first byte; the x axis is logarithmic,
so a flat line is a constant cost, a straight rising line a logarithmic one, and a line that
bends upward a cost linear in the work.</p>
{sections}
</body></html>
"""


def _html_table(run: SweepRun, series: str, points: list[Point]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in _columns(run, series))
    rows = "".join(
        "<tr>" + "".join(f'<td class="num">{escape(c)}</td>' for c in _cells(run, p)) + "</tr>"
        for p in points
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def write(run: SweepRun, *, directory: Path, json_path: Path | None = None) -> dict[str, Path]:
    """sweep.json, sweep.md and sweep.html in `directory`, and the JSON at `json_path` too."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "sweep.json",
        "markdown": directory / "sweep.md",
        "html": directory / "sweep.html",
    }
    text = json.dumps(run.to_dict(), indent=2, ensure_ascii=False) + "\n"
    paths["json"].write_text(text, encoding="utf-8")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text, encoding="utf-8")
        paths["json copy"] = json_path
    paths["markdown"].write_text(to_markdown(run), encoding="utf-8")
    paths["html"].write_text(to_html(run), encoding="utf-8")
    return paths
