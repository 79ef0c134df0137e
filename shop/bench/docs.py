"""The docs' figures, written from one recorded bench run, so that no chapter quotes a number
the code no longer produces.

`docs/figures/bench.json` is the JSON of one whole `manage.py bench` run, kept in the
repository. A page marks where its figures go:

    <!-- bench:select_related -->
    (written by `manage.py bench_docs`; never edited by hand)
    <!-- /bench:select_related -->

A block named after a technique (or a composite scenario, `order_history`) shows every scenario
of that module, with its extra arms, cold runs and targets; `table` and `run` show the whole run. `update()` rewrites every block of a page from the JSON, and
`tests/shop/test_bench_docs.py` checks that each page already reads as `update()` would write it:
a figure typed over, or a JSON replaced without rewriting the pages, fails the test.

The renderer reads the JSON as plain data, not as `results.Run`: a field a newer bench adds is
shown generically (an extra number per side, an extra value per scenario or per run), and a
field an older run lacks is left out rather than shown as a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from shop.bench import metrics
from shop.bench.discovery import module_names
from shop.bench.docs_values import (
    SIDE_ROWS,
    cell,
    extra_keys,
    formatted,
    is_number,
    kind_of,
    ratio_of,
    yes,
)
from shop.bench.formatting import ms, times

KEPT = Path(settings.BASE_DIR) / "docs" / "figures" / "bench.json"
# A mark stands on a line of its own, so a page can mention one in running text.
BLOCK = re.compile(
    r"^(?P<open><!-- bench:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)^(?P<close><!-- /bench:(?P=name) -->)$",
    re.DOTALL | re.MULTILINE,
)
OPENING = re.compile(r"^<!-- bench:([a-z_]+) -->$", re.MULTILINE)
RUN_BLOCKS = ("run", "table")

# A cold side's rows (Scenario.cold), after the warm ones: what a first request costs.
COLD_ROWS = [
    ("p50_ms", "cold p50", "ms"),
    ("db_p50_ms", "cold database time, p50", "ms"),
    ("queries", "cold queries", "count"),
]
ENTRY_KNOWN = {
    "name", "title", "scenario", "path", "writes", "hold", "off", "on", "baseline",
    "speedup_p50", "db_speedup_p50", "ceiling_p50", "on_breakdown_ms", "same_answer",
    "answer_stable", "difference", "plans", "notes", "warnings", "error", "own_db_speedup_p50",
    "user", "every_toggle", "arms", "cold", "targets",
}  # fmt: skip
RUN_KNOWN = {
    "started_at", "settings", "size", "dataset", "machine", "repeat", "warmup", "budget_s",
    "elapsed_s", "interrupted", "techniques", "problems",
    "perf_toggles", "restored_at_start",
}  # fmt: skip
# The parts of `on_breakdown_ms`, as a sentence names them.
BREAKDOWN = {"baseline": "baseline", "database": "more database time", "python": "Python"}
# `manage.py bench`'s defaults: the command line shows an option only where the run changed it.
DEFAULT_REPEAT, DEFAULT_BUDGET_S = 20, 60.0


class DocsError(Exception):
    """A page or the JSON does not fit: an unknown block, an unclosed one, a missing run."""


def load(path: Path = KEPT) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# --- the run ------------------------------------------------------------------------------------


def command(data: dict[str, Any]) -> str:
    """The command line that made the run, as far as the JSON tells."""
    parts = [f"DJANGO_SETTINGS_MODULE={data.get('settings')} .venv/bin/python manage.py bench"]
    if data.get("size"):
        parts.append(f"--size {data['size']}")
    if data.get("repeat") not in (None, DEFAULT_REPEAT):
        parts.append(f"--repeat {data['repeat']}")
    if data.get("budget_s") not in (None, DEFAULT_BUDGET_S):
        parts.append(f"--budget {data['budget_s']:g}")
    return " ".join(parts)


def _when(started_at: Any) -> str:
    """`2026-12-02 07:03 UTC` from the JSON's ISO 8601 time."""
    try:
        return datetime.fromisoformat(started_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return str(started_at or "an unrecorded time")


def run_line(data: dict[str, Any]) -> str:
    """Which run the figures come from: when, on what data and machine, with which command."""
    dataset = data.get("dataset") or {}
    rows = ", ".join(
        f"{n:,} {name.replace('_', ' ')}" for name, n in dataset.get("rows", {}).items()
    )
    machine = dict(data.get("machine") or {})
    described = [
        f"{machine.pop('cpu_count')} CPUs" if "cpu_count" in machine else "",
        f"Python {machine.pop('python')}" if "python" in machine else "",
        f"Django {machine.pop('django')}" if "django" in machine else "",
        f"PostgreSQL {machine.pop('postgres')}" if "postgres" in machine else "",
        f"load average {machine.pop('load_average_1m')} at the start"
        if "load_average_1m" in machine
        else "",
        *(f"{key.replace('_', ' ')} {value}" for key, value in machine.items()),
    ]
    extras = [
        f"{key.replace('_', ' ')}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in data.items()
        if key not in RUN_KNOWN
    ]
    started = _when(data.get("started_at"))
    line = (
        f"From one run of `{command(data)}`, started {started}, on the "
        f"{dataset.get('size') or 'unseeded'} data set ({rows}); "
        f"{', '.join(part for part in described if part)}; up to {data.get('repeat')} runs per "
        f"side after {data.get('warmup')} warm-up runs, off and on alternated"
    )
    toggles = data.get("perf_toggles")
    extras.append(f"PERF_TOGGLES={toggles}" if toggles else "PERF_TOGGLES not set")
    restored = data.get("restored_at_start")
    if restored:
        extras.append(f"restored at start-up: {', '.join(restored)}")
    if extras:
        line += "; " + "; ".join(extras)
    if data.get("interrupted"):
        line += "; **the run was interrupted**"
    return (
        line + ". Kept in `docs/figures/bench.json` and written here by `manage.py bench_docs`: "
        "your machine's figures will differ, so run the command for your own."
    )


# --- one technique --------------------------------------------------------------------------------


def technique(data: dict[str, Any], name: str) -> str:
    entries = [e for e in data.get("techniques", []) if e.get("name") == name]
    if not entries:
        return f"The recorded run has no scenario for {name}.\n\n{run_line(data)}\n"
    parts = [scenario(entry) for entry in sorted(entries, key=lambda e: e.get("scenario", 0))]
    return "\n".join([*parts, run_line(data)]) + "\n"


def scenario(entry: dict[str, Any]) -> str:
    where = f"`{entry['path']}`" if entry.get("path") else ""
    where += f" as {entry['user']}" if where and entry.get("user") else ""
    held = ", ".join(f"{t} {'on' if v else 'off'}" for t, v in (entry.get("hold") or {}).items())
    context = "; ".join(part for part in (where, f"held: {held}" if held else "") if part)
    head = f"**{entry.get('title', entry.get('name'))}**" + (f" ({context})" if context else "")
    off, on = entry.get("off"), entry.get("on")
    if entry.get("error") or not (off and on):
        return f"{head}: the scenario failed: `{entry.get('error') or 'no runs'}`\n"
    # An extra arm (the SQL floor) is a column after the ratio: its figures, not a ratio. An
    # arm not compared with on (a contention round) has a table of its own, after the pair's.
    compared = {k: arm for k, arm in (entry.get("arms") or {}).items() if _compared(arm)}
    arms = [arm.get("side") or {} for arm in compared.values()]
    titles = [arm.get("title", label) for label, arm in compared.items()]
    lines = [head, "", "| | off | on | off ÷ on |" + "".join(f" {title} |" for title in titles)]
    lines.append("|" + "---|" * (4 + len(arms)))

    def row(label: str, a: Any, b: Any, ratio: str, kind: str, more: list[Any]) -> None:
        cells = [label, formatted(a, kind), formatted(b, kind), ratio]
        cells += [formatted(value, kind) if value is not None else "–" for value in more]
        lines.append("| " + " | ".join(cells) + " |")

    given = {"p50_ms": entry.get("speedup_p50"), "db_p50_ms": entry.get("db_speedup_p50")}
    extra = extra_keys(off, on, *arms)
    rows = [*SIDE_ROWS, *((key, key.replace("_", " "), kind_of(key)) for key in extra)]
    if off.get("streamed") or on.get("streamed"):
        rows.insert(2, ("ttfb_p50_ms", "time to first byte, p50", "ms"))
    for key, label, kind in rows:
        a, b = off.get(key), on.get(key)
        if a is None and b is None:
            continue
        ratio = times(given[key]) if given.get(key) is not None else ratio_of(a, b)
        row(label, a, b, ratio, kind, [arm.get(key) for arm in arms])
    cold = entry.get("cold") or {}
    if cold.get("off") and cold.get("on"):  # each run a first request (Scenario.cold)
        for key, label, kind in COLD_ROWS:
            a, b = cold["off"].get(key), cold["on"].get(key)
            given_ratio = cold.get("speedup_p50") if key == "p50_ms" else None
            ratio = times(given_ratio) if given_ratio is not None else ratio_of(a, b)
            row(label, a, b, ratio, kind, [None] * len(arms))
    # A figure a newer bench records per scenario as {"off": ..., "on": ...} is a row too.
    for key, value in entry.items():
        if key not in ENTRY_KNOWN and isinstance(value, dict) and {"off", "on"} <= set(value):
            a, b = value["off"], value["on"]
            row(key.replace("_", " "), a, b, ratio_of(a, b), kind_of(key), [None] * len(arms))
    lines.append(
        f"| runs | {off.get('runs', '–')} | {on.get('runs', '–')} | |"
        + "".join(f" {arm.get('runs', '–')} |" for arm in arms)
    )
    lines += _counted_arms(entry)
    lines += ["", *_sentences(entry)]
    return "\n".join(lines) + "\n"


def _compared(arm: dict[str, Any]) -> bool:
    return arm.get("same_answer") is not None or not _own_counts(arm)


def _own_counts(arm: dict[str, Any]) -> list[str]:
    """The counts of its own an arm reports (shop.bench.metrics: not the common ones)."""
    counts = (arm.get("side") or {}).get("metrics") or {}
    return [name for name in counts if name not in metrics.COMMON]


def _counted_arms(entry: dict[str, Any]) -> list[str]:
    """The arms that answer with counts (contention rounds): one row each, its runs' p50 of
    each count, and the p50 and p95 of the runs' own time."""
    counted = {k: arm for k, arm in (entry.get("arms") or {}).items() if not _compared(arm)}
    if not counted:
        return []
    names = list(dict.fromkeys(n for arm in counted.values() for n in _own_counts(arm)))
    lines = [
        "",
        "| | run p50 | run p95 |" + "".join(f" {n.replace('_', ' ')} |" for n in names),
        "|" + "---|" * (3 + len(names)),
    ]
    for label, arm in counted.items():
        side = arm.get("side") or {}
        counts = side.get("metrics") or {}
        cells = [
            arm.get("title", label),
            formatted(side.get("p50_ms"), "ms"),
            formatted(side.get("p95_ms"), "ms"),
            *(formatted((counts.get(n) or {}).get("p50"), kind_of(n)) for n in names),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _declared(entry: dict[str, Any]) -> list[str]:
    """Sentences on what a scenario declares beyond its pair: cold runs, arms, targets."""
    said = []
    cold, off, on = entry.get("cold") or {}, entry["off"], entry["on"]
    if cold.get("off") and cold.get("on"):
        said.append(
            "Cold, each run a first request (new database connections, the cache emptied): "
            f"off takes {ratio_of(cold['off'].get('p50_ms'), off.get('p50_ms'))} its warm p50, "
            f"on {ratio_of(cold['on'].get('p50_ms'), on.get('p50_ms'))}."
        )
    for label, arm in (entry.get("arms") or {}).items():
        if not _compared(arm):
            continue  # its own table says what it measured
        title = arm.get("title", label)
        title = title.removeprefix("the ")  # "the {title}" below
        text = f"On's p50 is {times(arm.get('on_multiple_p50'))} the {title}'s"
        if arm.get("baseline_multiple_p50") is not None:
            text += f"; the baseline alone is {times(arm['baseline_multiple_p50'])} it"
        said.append(
            f"{text}. Same answer as on from the {title}: {yes(arm.get('same_answer'))}"
            + (", byte for byte." if arm.get("identical_bytes") else ".")
        )
    targets = entry.get("targets") or {}
    if targets:
        said.append(
            "Targets: "
            + "; ".join(
                f"{t.get('label') or key} {t.get('target')}: {formatted(t.get('value'), 'count')} "
                f"{'met' if t.get('met') else '**not met**'}"
                for key, t in targets.items()
            )
            + "."
        )
    return said


def _sentences(entry: dict[str, Any]) -> list[str]:
    said = []
    base = entry.get("baseline")
    if base:
        text = f"Baseline (the do-nothing request, same user): p50 {formatted(base.get('p50_ms'), 'ms')}"
        if entry.get("ceiling_p50") is not None:
            text += f", so the ceiling on the speedup is {times(entry['ceiling_p50'])}"
        split = entry.get("on_breakdown_ms")
        if split:
            text += "; the on side's p50 is about " + ", ".join(
                f"{formatted(value, 'ms')} {BREAKDOWN.get(part, part)}"
                for part, value in split.items()
            )
        said.append(text + ".")
    own = entry.get("own_db_speedup_p50")
    if own is not None:
        said.append(
            f"Leaving out the statements the baseline sends too (the token lookup), the database "
            f"time is {times(own)} lower."
        )
    same = f"Same answer off and on: {yes(entry.get('same_answer'))}"
    if entry.get("answer_stable") is False:
        same += " (the answer changed from run to run)"
    said.append(same + ".")
    said += _declared(entry)
    extras = [
        f"{key.replace('_', ' ')}: {formatted(value, kind_of(key))}"
        for key, value in entry.items()
        if key not in ENTRY_KNOWN and (value is None or isinstance(value, str | int | float))
    ]
    if extras:
        said.append("; ".join(extras) + ".")
    for key in ("difference", "notes"):
        if entry.get(key):
            said.append(str(entry[key]))
    said += [f"Warning: {text}" for text in entry.get("warnings") or []]
    return [" ".join(said)]


# --- the whole run ----------------------------------------------------------------------------------


def table(data: dict[str, Any]) -> str:
    entries = data.get("techniques", [])
    extra = extra_keys(*(side for e in entries for side in (e.get("off"), e.get("on"))))
    header = ["technique", "scenario", "off p50 / p95", "on p50 / p95", "speedup"]
    header += ["baseline (ceiling)", "db p50 (÷)", "queries", "bytes", "memory"]
    header += [key.replace("_", " ") for key in extra] + ["same"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in entries:
        label = e["name"] if not e.get("scenario") else f"{e['name']} +{e['scenario']}"
        off, on, base = e.get("off"), e.get("on"), e.get("baseline")
        if e.get("error") or not (off and on):
            cells = [label, e.get("title", ""), "failed", *[""] * (len(header) - 3)]
        else:
            cells = [
                label,
                e.get("title", ""),
                f"{ms(off['p50_ms'])} / {ms(off['p95_ms'])} ms" + _first_byte(off),
                f"{ms(on['p50_ms'])} / {ms(on['p95_ms'])} ms" + _first_byte(on),
                times(e.get("speedup_p50")),
                f"{ms(base['p50_ms'])} ms ({times(e.get('ceiling_p50'))})" if base else "–",
                _pair(off, on, "db_p50_ms", "ms") + f" ({times(e.get('db_speedup_p50'))})",
                _pair(off, on, "queries", "count"),
                _pair(off, on, "bytes", "size"),
                _pair(off, on, "peak_memory_bytes", "size"),
                *(_pair(off, on, key, kind_of(key)) for key in extra),
                yes(e.get("same_answer")),
            ]
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    lines += ["", run_line(data)]
    return "\n".join(lines) + "\n"


def _first_byte(side: dict[str, Any]) -> str:
    """` (first byte 0.84 ms)` for a side that streamed its body (a run recorded before the
    bench measured it has no `streamed`, and shows nothing)."""
    if not side.get("streamed") or side.get("ttfb_p50_ms") is None:
        return ""
    return f" (first byte {ms(side['ttfb_p50_ms'])} ms)"


def _pair(off: dict[str, Any], on: dict[str, Any], key: str, kind: str) -> str:
    if off.get(key) is None and on.get(key) is None:
        return "–"
    return f"{formatted(off.get(key), kind)} → {formatted(on.get(key), kind)}"


def render(name: str, data: dict[str, Any]) -> str:
    """The body of the block `name`."""
    if name == "run":
        elapsed = data.get("elapsed_s")
        took = f"The run took {elapsed:g} s in all. " if is_number(elapsed) else ""
        return took + run_line(data) + "\n"
    if name == "table":
        return table(data)
    if name in {e.get("name") for e in data.get("techniques", [])} or name in module_names():
        return technique(data, name)
    raise DocsError(f"no figures named {name!r}: a technique, or one of {', '.join(RUN_BLOCKS)}")


# --- the pages ---------------------------------------------------------------------------------------


def update(text: str, data: dict[str, Any]) -> str:
    """`text` with every block's body rewritten from `data`."""

    def body(name: str) -> str:
        return (
            "<!-- Written by `manage.py bench_docs` from docs/figures/bench.json: "
            "do not edit by hand. -->\n" + render(name, data)
        )

    return rewrite_blocks(text, BLOCK, OPENING, body, kind="bench")


def rewrite_blocks(
    text: str,
    block: re.Pattern[str],
    opening: re.Pattern[str],
    body: Callable[[str], str],
    *,
    kind: str,
) -> str:
    """`text` with each marked block's body replaced by `body(name)`, its markers kept; a
    DocsError if an opening marker has no closing one. `block` has the groups open, name and
    close; `opening` finds the opening markers' names. The sweep blocks (sweep_docs.py) use it too."""
    opened = opening.findall(text)
    closed = [m.group("name") for m in block.finditer(text)]
    if opened != closed:
        unclosed = [name for name in opened if opened.count(name) != closed.count(name)]
        raise DocsError(f"unclosed or misnested {kind} blocks: {', '.join(unclosed) or opened}")
    return block.sub(lambda m: m.group("open") + body(m.group("name")) + m.group("close"), text)


def pages(root: Path | None = None) -> list[Path]:
    """Every Markdown page that may hold blocks: the README and docs/."""
    root = root or Path(settings.BASE_DIR)
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def blocks(text: str) -> list[str]:
    return OPENING.findall(text)
