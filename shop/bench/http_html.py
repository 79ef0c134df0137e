"""The HTML report of the HTTP modes (`bench --http`, `bench --open-loop`): one self-contained
file (inline CSS and SVG, no scripts, nothing fetched), drawn from the same data as their
bench.json, so the page and the JSON cannot disagree.

Closed loop: per pair, off and on side by side, the latency percentiles (p50, p90, p99, max,
every request sent included), the rate answered without error, errors and timeouts, gunicorn's
own X-DB-Queries, and whether the two sides gave the same answer. Open loop: the rate achieved
against the rate asked for, and the percentiles from the intended send time.
Every value that comes from a run, a scenario or the server is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from shop.bench import svg
from shop.bench.svg import Groups

COLORS = {
    "off": "#c2410c",
    "on": "#15803d",
    "asked": "#94a3b8",
    "achieved": "#1d4ed8",
    "latency": "#1d4ed8",
}
PERCENTILES = (("p50", "p50_ms"), ("p90", "p90_ms"), ("p99", "p99_ms"), ("max", "max_ms"))

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1f2937; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin: 2.2rem 0 .3rem; }
code { font: 13px ui-monospace, monospace; }
table { border-collapse: collapse; font-size: 13px; margin: .5rem 0; }
td, th { padding: .25rem .55rem; border-bottom: 1px solid #e5e7eb; text-align: left;
       white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; border-radius: .6rem; padding: 0 .55rem; font-size: 12px;
       font-weight: 600; margin-right: .3rem; }
.same { background: #dcfce7; color: #166534; } .different { background: #fee2e2; color: #991b1b; }
.unknown { background: #fef3c7; color: #92400e; }
.error { color: #991b1b; } .muted { color: #6b7280; font-size: 13px; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2937; }
"""


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def bars(groups: Groups, label: str) -> str:
    """A group of bars per metric, all groups on one scale (milliseconds compare with
    milliseconds, a stall's max against the p50 it hides behind)."""
    return svg.bars(
        groups,
        label,
        color=COLORS.__getitem__,
        one_scale=True,
        label_width=60,
        bar_width=460,
        bar_height=15,
        text_room=190,
    )


def _kinds(errors: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in sorted(errors.items()))


def _badge(same: bool | None) -> str:
    kind, text = {
        True: ("same", "same answer ✓"),
        False: ("different", "answers DIFFERENT ✗"),
        None: ("unknown", "answers not compared"),
    }[same]
    return f'<span class="badge {kind}">{escape(text)}</span>'


def _pair(pair: dict[str, Any]) -> str:
    sides = {"off": pair["off"], "on": pair["on"]}
    rows = []
    for arm, side in sides.items():
        cells = [
            f"<td><b>{escape(arm)}</b></td>",
            f'<td class="num">{int(_num(side["requests"]))}</td>',
            *(f'<td class="num">{escape(_ms(side[key]))}</td>' for _, key in PERCENTILES),
            f'<td class="num">{_num(side["rate_per_s"]):.1f}</td>',
            f'<td class="num">{sum(side["errors"].values())}</td>',
            f'<td class="num">{int(_num(side["timeouts"]))}</td>',
            f"<td>{escape(_kinds(side['errors']) or '–')}</td>",
            f"<td><code>{escape(side['db_queries'] or '–')}</code></td>",
            f'<td class="num">{int(_num(side.get("connections_opened", 0)))}</td>',
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    groups = [
        (label, {arm: (_num(s[key]), f"{_ms(s[key])} ms") for arm, s in sides.items()})
        for label, key in PERCENTILES
    ]
    html = [
        f'<section id="{escape(pair["name"])}">',
        f"<h2>{escape(pair['name'])} · {escape(pair['title'])}</h2>",
        f"<p><code>{escape(pair['request'])}</code>, {int(_num(pair['clients']))} concurrent "
        f"clients {_badge(pair['same_answer'])}</p>",
    ]
    if pair["difference"]:
        prefix = "Answers differ: " if pair["same_answer"] is False else ""
        html.append(f'<p class="error">{escape(prefix + pair["difference"])}</p>')
    html += [
        "<table><tr><th>side</th><th>requests</th><th>p50 ms</th><th>p90 ms</th>"
        "<th>p99 ms</th><th>max ms</th><th>req/s</th><th>errors</th><th>timeouts</th>"
        "<th>error kinds</th><th>X-DB-Queries (server)</th><th>connections opened</th></tr>",
        *rows,
        "</table>",
        bars(groups, f"{pair['name']}: latency percentiles off and on"),
        "</section>",
    ]
    return "\n".join(html)


def _open_loop(data: dict[str, Any]) -> str:
    sent = int(_num(data["sent"]))
    errors = int(_num(data["errors"]))
    share = f"{errors / sent:.1%}" if sent else "–"
    latency = [
        (label, {"latency": (_num(data[key]), f"{_ms(data[key])} ms")})
        for label, key in PERCENTILES
    ]
    rate = [
        (
            "rate",
            {
                "asked": (_num(data["rate"]), f"{_num(data['rate']):g}/s"),
                "achieved": (_num(data["achieved_rate"]), f"{_num(data['achieved_rate']):.1f}/s"),
            },
        )
    ]
    rows = [
        ("URL", f"<code>{escape(str(data['url']))}</code>"),
        ("asked", f"{_num(data['rate']):g}/s for {_num(data['duration_s']):g} s"),
        ("achieved", f"{_num(data['achieved_rate']):.1f}/s answered without error"),
        ("sent", str(sent)),
        (
            "errors",
            f"{errors} ({share})" + (f": {escape(_kinds(data['error_kinds']))}" if errors else ""),
        ),
        ("in flight", f"at most {int(_num(data['in_flight']))} (client threads)"),
        ("latest send", f"{_ms(data['max_send_lag_ms'])} ms after it was due"),
    ]
    return "\n".join(
        [
            f"<h2>Open loop · GET <code>{escape(str(data['target']))}</code></h2>",
            "<table>"
            + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
            + "</table>",
            bars(rate, "rate asked for and achieved"),
            "<p class=muted>Latency from the intended send time, errors and timeouts "
            "included (ms):</p>",
            bars(latency, "open-loop latency percentiles"),
        ]
    )


def render(data: dict[str, Any]) -> str:
    """The page for one run's data: what `http_cli` writes to bench.json."""
    closed = data["mode"] == "http"
    title = "Bench over HTTP (closed loop)" if closed else "Bench: open loop"
    machine = data["machine"]
    context = (
        f"Started {escape(str(data['started_at']))}, settings <code>{escape(str(data['settings_module']))}"
        f"</code>, {escape(str(machine.get('cpu_count')))} CPUs, load average "
        f"{escape(str(machine.get('load_average_1m')))} at the start; Python "
        f"{escape(str(machine.get('python')))}, Django {escape(str(machine.get('django')))}, "
        f"PostgreSQL {escape(str(machine.get('postgres')))}."
    )
    if closed:
        body = [_pair(pair) for pair in data["pairs"]] or ["<p>No pair ran.</p>"]
        note = (
            "Latency from sending a request to the end of its body. Every request sent is "
            "counted: one that timed out or got no answer, at the time it took."
        )
    else:
        body = [_open_loop(data)]
        note = (
            "Each request is due at t0 + i / rate and timed from then, so a stall shows in "
            "every request queued behind it."
        )
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f"<p class=muted>{context}</p>",
            f"<p class=muted>{escape(note)}</p>",
            *body,
            "</body></html>",
        ]
    )
