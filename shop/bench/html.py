"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, nothing fetched),
with an overview of every speedup and, per scenario, off and on side by side as bars."""

from __future__ import annotations

import math
import re
from html import escape

from shop.bench import svg
from shop.bench.formatting import (
    HEADER,
    aliases,
    check,
    context_lines,
    counts,
    ms,
    row,
    share,
    size,
    times,
)
from shop.bench.measure import BASELINE_PATH
from shop.bench.results import Entry, Run
from shop.bench.samples import Side, ratio
from shop.bench.svg import Groups
from shop.bench.svg import svg as _svg  # the sweep report draws its charts with it too

# By bar label; an extra arm (the SQL floor) is ARM_COLOR.
COLORS = {
    "off": "#c2410c",
    "on": "#15803d",
    "cold off": "#fdba74",
    "cold on": "#86efac",
    "baseline": "#94a3b8",
}
ARM_COLOR = "#475569"

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1f2937; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin: 2.2rem 0 .3rem; }
code, pre { font: 13px ui-monospace, monospace; } pre { background: #f3f4f6; padding: .7rem;
       overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: .25rem .55rem;
       border-bottom: 1px solid #e5e7eb; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { white-space: normal; vertical-align: bottom; }
table.summary td, table.summary th { padding: .25rem .4rem; }
table.summary td.wrap { white-space: normal; }
table.summary td.title { white-space: normal; min-width: 12rem; max-width: 16rem; }
.badge { display: inline-block; border-radius: .6rem; padding: 0 .55rem; font-size: 12px;
       font-weight: 600; margin-right: .3rem; }
.same { background: #dcfce7; color: #166534; } .different { background: #fee2e2; color: #991b1b; }
.info { background: #e0e7ff; color: #3730a3; }
.ratio { font-size: 1.05rem; font-weight: 600; margin: .4rem 0; }
.error { color: #991b1b; } .muted { color: #6b7280; font-size: 13px; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2937; }
"""


def bars(metrics: Groups, label: str) -> str:
    """A group of bars per metric (p50, p95, queries...), each scaled to its own largest value,
    so the eye compares the sides within a metric."""
    return svg.bars(
        metrics,
        label,
        color=lambda arm: COLORS.get(arm, ARM_COLOR),
        one_scale=False,
        label_width=90,
        bar_width=420,
        bar_height=16,
        text_room=170,
    )


def overview(entries: list[Entry]) -> str:
    """Every scenario's p50 speedup on a log scale around 1× (no change): right is faster."""
    measured = [(e, e.speedup_p50) for e in entries if e.speedup_p50]
    if not measured:
        return ""
    label_width, half, row_height = 300, 260, 22
    reach = max(max(abs(math.log2(s)) for _, s in measured), 1.0)
    center = label_width + half
    parts = []
    for index, (entry, speedup) in enumerate(measured):
        y = 8 + index * row_height
        length = math.log2(speedup) / reach * half
        x = center if length >= 0 else center + length
        color = COLORS["on"] if speedup >= 1 else COLORS["off"]
        name = entry.name if entry.scenario == 0 else f"{entry.name} +{entry.scenario}"
        text_x = center + length + (6 if length >= 0 else -6)
        anchor = "start" if length >= 0 else "end"
        parts.append(
            f'<text x="{label_width - 10}" y="{y + 13}" text-anchor="end">{escape(name)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{max(abs(length), 1.5):.1f}" height="16" '
            f'fill="{color}" rx="2"/>'
            f'<text x="{text_x:.1f}" y="{y + 13}" text-anchor="{anchor}">{times(speedup)}</text>'
        )
    height = 8 + len(measured) * row_height + 18
    parts.append(
        f'<line x1="{center}" y1="2" x2="{center}" y2="{height - 16}" stroke="#6b7280"/>'
        f'<text x="{center}" y="{height - 3}" text-anchor="middle" class="muted">'
        "1× (no change) · log scale, right is faster with the technique on</text>"
    )
    return _svg(label_width + 2 * half + 60, height, "p50 speedup per scenario", parts)


def _metrics(sides: dict[str, Side]) -> Groups:
    """The bars per metric. The baseline is a different request: it shows in the times and
    the queries, where it is the part every request pays, not in its tiny body."""
    answers = {arm: side for arm, side in sides.items() if arm != "baseline"}
    metrics = [
        ("p50", {arm: (s.p50_ms, f"{ms(s.p50_ms)} ms") for arm, s in sides.items()}),
        ("p95", {arm: (s.p95_ms, f"{ms(s.p95_ms)} ms") for arm, s in sides.items()}),
        ("db p50", {arm: (s.db_p50_ms, f"{ms(s.db_p50_ms)} ms") for arm, s in sides.items()}),
        ("queries", {arm: (s.queries, str(s.queries)) for arm, s in sides.items()}),
        ("bytes", {arm: (s.bytes, size(s.bytes)) for arm, s in answers.items()}),
    ]
    if any(s.streamed for s in answers.values()):
        # The whole time for a side that is not streamed: a bar as long as its p50.
        first = {arm: (s.ttfb_p50_ms, f"{ms(s.ttfb_p50_ms)} ms") for arm, s in sides.items()}
        metrics.insert(1, ("time to first byte p50", first))
    if all(s.db_bytes is not None for s in answers.values()):
        sent = {arm: (s.db_bytes, size(s.db_bytes)) for arm, s in answers.items()}
        metrics.append(("bytes from the db", sent))
    if all(s.peak_memory_bytes is not None for s in answers.values()):
        memory = {
            arm: (s.peak_memory_bytes, size(s.peak_memory_bytes)) for arm, s in answers.items()
        }
        metrics.append(("peak memory", memory))
    return metrics


def _badge(same: bool | None, text: str) -> str:
    if same is None:
        return ""
    kind = "same" if same else "different"
    return f'<span class="badge {kind}">{escape(text)} {check(same)}</span>'


def _section(entry: Entry) -> str:
    suffix = "" if entry.scenario == 0 else f" +{entry.scenario}"
    html = [
        f'<section id="{escape(entry.name)}-{entry.scenario}">',
        f"<h2>{escape(entry.name + suffix)} · {escape(entry.title)}</h2>",
        f'<p class="muted"><code>{escape(entry.path)}</code></p>',
    ]
    if entry.error:
        html.append(f'<p class="error">Error: {escape(entry.error)}</p>')
    if entry.off and entry.on:
        badges = _badge(entry.same_answer, "same answer")
        if entry.answer_stable is False:
            badges += '<span class="badge different">answer changed between runs</span>'
        if entry.writes:
            badges += '<span class="badge info">writes, rolled back</span>'
        for name, on in entry.hold.items():
            badges += f'<span class="badge info">{escape(name)} held {"on" if on else "off"}</span>'
        html.append(f"<p>{badges}</p>")
        html.append(
            f'<p class="ratio">p50 {ms(entry.off.p50_ms)} ms off → {ms(entry.on.p50_ms)} ms on: '
            f"{times(entry.speedup_p50)}</p>"
            f'<p class="muted">of which in the database: {ms(entry.off.db_p50_ms)} ms off → '
            f"{ms(entry.on.db_p50_ms)} ms on ({times(entry.db_speedup_p50)})"
            + (
                f"; {times(entry.own_db_speedup_p50)} without the baseline's statements "
                "(authentication)"
                if entry.own_db_speedup_p50
                else ""
            )
            + "</p>"
        )
        sides = {"off": entry.off, "on": entry.on}
        sides |= {arm.title: arm.side for arm in entry.arms.values()}
        if entry.cold_off and entry.cold_on:
            sides |= {"cold off": entry.cold_off, "cold on": entry.cold_on}
        breakdown = entry.on_breakdown_ms  # set whenever the on side and the baseline are
        if entry.baseline is not None and breakdown is not None:
            sides["baseline"] = entry.baseline
            html.append(
                f'<p class="muted">baseline (<code>GET {escape(BASELINE_PATH)}</code> as the same '
                f"user, a view that does nothing): {ms(entry.baseline.p50_ms)} ms, so no "
                f"technique could make this request more than {times(entry.ceiling_p50)} faster "
                f"end to end. The on side's {ms(entry.on.p50_ms)} ms is about the baseline, "
                f"{ms(breakdown['database'])} ms more in the database and "
                f"{ms(breakdown['python'])} ms of this request's own Python.</p>"
            )
        chart = bars(_metrics(sides), f"{entry.name}: {', '.join(sides)}")
        html.append(chart)
        html += _declared(entry)
        html.append(
            f'<p class="muted">{len(entry.off.samples)} runs per side; queries per alias '
            f"off {escape(aliases(entry.off.queries_by_alias))}, "
            f"on {escape(aliases(entry.on.queries_by_alias))}; primary's share "
            f"off {share(entry.off.primary_share)}, on {share(entry.on.primary_share)}</p>"
        )
        found = counts(entry)
        if found:
            html.append(f'<p class="muted">Per request: {escape(found)}</p>')
    for text in [entry.notes, *entry.warnings]:
        if text:
            html.append(f"<p>{escape(text)}</p>")
    if entry.difference:
        html.append(f'<p class="error">Answers differ: {escape(entry.difference)}</p>')
    for side, plans in entry.plans.items():
        for query, plan in plans.items():
            html.append(
                f"<details><summary>EXPLAIN, {escape(side)}: {escape(query)}</summary>"
                f"<pre>{escape(plan)}</pre></details>"
            )
    html.append("</section>")
    return "\n".join(html)


def _declared(entry: Entry) -> list[str]:
    """What the scenario declares beyond its pair: its extra arms, its cold runs, its targets."""
    html = []
    for arm in entry.arms.values():
        bytes_badge = _badge(arm.identical_bytes, "byte for byte")
        html.append(
            f"<p>{_badge(arm.same_answer, f'{arm.title} = on')}{bytes_badge}"
            f"on is {times(ratio(entry.on.p50_ms, arm.side.p50_ms))} the {escape(arm.title)}'s "
            f"p50; the baseline alone is "
            + times(entry.baseline and ratio(entry.baseline.p50_ms, arm.side.p50_ms))
            + "</p>"
        )
    if entry.cold_off and entry.cold_on:
        html.append(
            f'<p class="muted">cold (each run a first request: new database connections, '
            f"the cache emptied): p50 {ms(entry.cold_off.p50_ms)} ms off → "
            f"{ms(entry.cold_on.p50_ms)} ms on ({times(entry.cold_speedup_p50)}); database "
            f"{ms(entry.cold_off.db_p50_ms)} → {ms(entry.cold_on.db_p50_ms)} ms; queries "
            f"{entry.cold_off.queries} → {entry.cold_on.queries}</p>"
        )
    targets = entry.to_dict()["targets"]
    if targets:
        items = "".join(
            f"<li>{escape(t['label'])} {escape(t['target'])}: {t['value']} "
            f"{'✓' if t['met'] else '✗'}</li>"
            for t in targets.values()
        )
        html.append(f"<p>Targets:</p><ul>{items}</ul>")
    return html


# The summary table fits a 1300 px window: the scenario's title goes under its name, in one
# column, and the cells that pair two figures (with a note: first byte, own db time, db bytes)
# may wrap. Right-aligned: the timings and the speedup.
WRAPPED = {2, 3, 6, 8, 9, 10}
NUMERIC = {2, 3, 4, 5}
# A figure and its unit, or an arrow and what it points at, never part at a line break.
_UNBROKEN = re.compile(r"(?<=[\d×B]) (?=kB|MB|B\b|ms|→|/)|(?<=→|/) (?=[\d–])")


def _cell(text: str) -> str:
    return escape(_UNBROKEN.sub("\u00a0", text))


def _summary_table(entries: list[Entry]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADER if h != "scenario")
    rows = []
    for entry in entries:
        cells = row(entry)
        tds = [
            f'<td class="title"><a href="#{escape(entry.name)}-{entry.scenario}">'
            f'{escape(cells[0])}</a><br><span class="muted">{escape(cells[1])}</span></td>'
        ]
        for index, cell in enumerate(cells[2:], start=2):
            classes = " ".join(
                name for name, columns in (("num", NUMERIC), ("wrap", WRAPPED)) if index in columns
            )
            cls = f' class="{classes}"' if classes else ""
            tds.append(f"<td{cls}>{_cell(cell)}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return f'<table class="summary"><tr>{head}</tr>{"".join(rows)}</table>'


def to_html(run: Run) -> str:
    context = "".join(f"<li>{escape(line)}</li>" for line in context_lines(run))
    problems = "".join(f'<li class="error">{escape(p)}</li>' for p in run.problems)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>PerfShop benchmark, {escape(run.started_at)}</title>
<style>{CSS}</style></head>
<body>
<h1>PerfShop benchmark</h1>
<p class="muted">{escape(run.started_at)} · {run.elapsed_s:.0f} s</p>
<ul>{context}</ul>
{"<p class='error'>Interrupted: the results below are the ones finished.</p>" if run.interrupted else ""}
{f"<ul>{problems}</ul>" if problems else ""}
<p>Each technique's request ran through the whole Django stack, alternating off and on on the same
data. Times are wall-clock milliseconds per request, body included; the bars of each metric are
scaled to its largest side. The baseline is <code>GET {escape(BASELINE_PATH)}</code>, sent as the
same user alongside each pair: what a request costs when its view does nothing. The ceiling is
off p50 divided by the baseline's p50, the most any technique could show end to end.</p>
{overview(run.entries)}
{_summary_table(run.entries)}
{"".join(_section(entry) for entry in run.entries)}
</body></html>
"""
