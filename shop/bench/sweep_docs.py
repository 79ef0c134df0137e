"""The chapters' sweeps, written from kept sweep runs, so that no chapter quotes a curve the
code no longer draws.

`docs/figures/sweeps/<name>.json` is the JSON of one `manage.py bench --sweep <name>` run
(`--json` writes it there; docs/bench.md, "Regenerating the sweeps' figures"). A chapter marks
where its sweep goes:

    <!-- sweep:cursor_pagination -->
    (written by `manage.py bench_docs`; never edited by hand)
    <!-- /sweep:cursor_pagination -->

`update()` rewrites every such block from its JSON. `manage.py bench_docs` calls it after the
bench blocks (shop/bench/docs.py), so `bench_docs --check` and tests/shop/test_bench_sweep_docs.py
fail when a figure was typed over or a JSON replaced without rewriting the pages. The JSON is
read as plain data: a field an older run lacks is left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings

from shop.bench.docs import DocsError, rewrite_blocks
from shop.bench.docs_values import machine_text, rows_text
from shop.bench.formatting import ms, size, times

KEPT = Path(settings.BASE_DIR) / "docs" / "figures" / "sweeps"
BLOCK = re.compile(
    r"^(?P<open><!-- sweep:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)^(?P<close><!-- /sweep:(?P=name) -->)$",
    re.DOTALL | re.MULTILINE,
)
OPENING = re.compile(r"^<!-- sweep:([a-z_]+) -->$", re.MULTILINE)


def path_of(name: str, directory: Path | None = None) -> Path:
    return (directory or KEPT) / f"{name}.json"


def load(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = path_of(name, directory)
    if not path.exists():
        raise DocsError(
            f"no kept sweep {path}: `manage.py bench --sweep {name} --size medium --json {path}`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


# --- one sweep -------------------------------------------------------------------------------


def render(data: dict[str, Any]) -> str:
    """The body of a sweep's block: a table per series, what the run could not measure, and
    which run it was."""
    points = data.get("points") or []
    named = [s.get("name") for s in data.get("series") or []]
    groups = [(name, [p for p in points if p.get("series") == name]) for name in named]
    parts = []
    for name, group in groups or [(None, points)]:
        axis = next(
            (s.get("axis") for s in data.get("series") or [] if s.get("name") == name),
            data.get("axis", "point"),
        )
        head = f"**{name}**\n\n" if name else ""
        parts.append(head + _table(data, axis, group))
    said = []
    if data.get("skipped"):
        said.append(
            "Not measured, the data cannot hold them: "
            + ", ".join(f"{point:,}" for point in data["skipped"])
            + "."
        )
    for empty in data.get("empty") or []:
        where = f"{empty['series']} at " if empty.get("series") else ""
        said.append(f"Not measured, {where}{empty['point']:,}: {empty['why']}.")
    for point in points:
        label = f"{point.get('point'):,}"
        if point.get("series"):
            label = f"{point['series']} at {label}"
        if point.get("error"):
            said.append(f"{label}: failed: `{point['error']}`.")
        for warning in (point.get("entry") or {}).get("warnings") or []:
            said.append(f"{label}: warning: {warning}")
    said += [f"Problem: {problem}" for problem in data.get("problems") or []]
    return "\n".join(parts) + "\n" + (" ".join(said) + "\n\n" if said else "") + _run(data)


def _table(data: dict[str, Any], axis: str, points: list[dict[str, Any]]) -> str:
    measured = [p for p in points if p.get("off") and p.get("on")]
    sides = [p[side] for p in measured for side in ("off", "on")]
    names = list(data.get("parts") or [])
    streamed = any(side.get("streamed") for side in sides)
    memory = any(side.get("peak_memory_bytes") is not None for side in sides)
    head = [axis, "off p50", "on p50", "off db", "on db"]
    head += [f"{side} db: {part}" for side in ("off", "on") for part in names]
    head += ["off first byte", "on first byte"] if streamed else []
    head += ["off peak memory", "on peak memory"] if memory else []
    head += ["off ÷ on", "same answer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for point in measured:
        off, on = point["off"], point["on"]
        cells = [f"{point['point']:,}"]
        cells += [_ms(s.get(key)) for key in ("p50_ms", "db_p50_ms") for s in (off, on)]
        cells += [_ms((s.get("db_parts_ms") or {}).get(part)) for s in (off, on) for part in names]
        cells += [_ms(s.get("ttfb_p50_ms")) for s in (off, on)] if streamed else []
        cells += [size(s.get("peak_memory_bytes")) for s in (off, on)] if memory else []
        cells += [times(point.get("speedup_p50")), _yes(point.get("same_answer"))]
        lines.append("| " + " | ".join(cells) + " |")
    notes = "Times are each side's p50 over its runs; db is its time in the database (p50)"
    notes += "; the `db:` columns split it by statement" if names else ""
    notes += "; first byte, the time to the first byte of the body" if streamed else ""
    notes += "; peak memory, Python's peak while the request ran" if memory else ""
    return "\n".join(lines) + "\n\n" + notes + ".\n"


def _ms(value: Any) -> str:
    return "–" if value is None else f"{ms(value)} ms"


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not checked"}[value]


def command(data: dict[str, Any]) -> str:
    parts = [
        f"DJANGO_SETTINGS_MODULE={data.get('settings') or 'config.settings.loadtest'}",
        f".venv/bin/python manage.py bench --sweep {data.get('sweep')}",
    ]
    if data.get("size"):
        parts.append(f"--size {data['size']}")
    if data.get("repeat") not in (None, 20):
        parts.append(f"--repeat {data['repeat']}")
    return " ".join(parts)


def _run(data: dict[str, Any]) -> str:
    """Which run the figures come from: the command, when, on what data and machine, how long."""
    rows = rows_text(data.get("dataset"))
    started = str(data.get("started_at") or "an unrecorded time").replace("T", " ")
    line = (
        f"From one run of `{command(data)}`, started {started}, on the "
        f"{data.get('size') or 'unseeded'} data set ({rows}); "
        f"{machine_text(data.get('machine'))}; up to {data.get('repeat')} runs per "
        "side at each point, off and on alternated"
    )
    if isinstance(data.get("elapsed_s"), int | float):
        line += f"; the sweep took {data['elapsed_s']:g} s"
    if data.get("interrupted"):
        line += "; **the run was interrupted**"
    return (
        f"{line}. Kept in `docs/figures/sweeps/{data.get('sweep')}.json` and written here by "
        "`manage.py bench_docs`: your machine's figures will differ, so run the command for "
        "your own.\n"
    )


# --- the pages -----------------------------------------------------------------------------------


def update(text: str, directory: Path | None = None) -> str:
    """`text` with every sweep block's body rewritten from its kept JSON."""

    def body(name: str) -> str:
        data = load(name, directory)
        if data.get("sweep") != name:
            raise DocsError(f"{path_of(name, directory)} holds the sweep {data.get('sweep')!r}")
        return (
            f"<!-- Written by `manage.py bench_docs` from docs/figures/sweeps/{name}.json: "
            "do not edit by hand. -->\n" + render(data)
        )

    return rewrite_blocks(text, BLOCK, OPENING, body, kind="sweep")


def blocks(text: str) -> list[str]:
    return OPENING.findall(text)
