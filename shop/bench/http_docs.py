"""The docs' figures over HTTP, written from kept `bench --http` and `--open-loop` runs, so that no
chapter types a latency, a rate or a count of connections by hand.

`docs/figures/http/<name>.json` is the JSON of one `manage.py bench --http <name> ... --json
PATH` run (name: the technique), or of `manage.py bench --open-loop ... --json PATH` for
`open_loop`; docs/bench.md, "Regenerating the docs' figures", has the commands. A page marks
where its figures go:

    <!-- http:connection_pooling -->
    (written by `manage.py bench_docs`; never edited by hand)
    <!-- /http:connection_pooling -->

`update()` rewrites every such block from its JSON. `manage.py bench_docs` calls it after the
bench and sweep blocks, so `bench_docs --check` and tests/shop/test_bench_http_docs.py fail when
a figure was typed over or a JSON replaced without rewriting the pages. The ratios a page
states (p50 off ÷ on, connections opened off ÷ on) are computed here, from the JSON. The JSON
is read as plain data: a field an older run lacks is left out.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from shop.bench.docs import DocsError, rewrite_blocks
from shop.bench.docs_values import (
    cell,
    formatted,
    is_number,
    machine_text,
    ratio_of,
    rows_text,
    yes,
)

KEPT = Path(settings.BASE_DIR) / "docs" / "figures" / "http"
OPEN_LOOP = "open_loop"  # the block and file of the ping endpoint's open loop
BLOCK = re.compile(
    r"^(?P<open><!-- http:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)^(?P<close><!-- /http:(?P=name) -->)$",
    re.DOTALL | re.MULTILINE,
)
OPENING = re.compile(r"^<!-- http:([a-z_]+) -->$", re.MULTILINE)
# `--http`'s and `--open-loop`'s options, in the order a command line gives them.
FLAGS = [
    ("clients", "--clients"),
    ("requests", "--requests"),
    ("rate", "--rate"),
    ("duration", "--duration"),
    ("in_flight", "--in-flight"),
    ("url", "--url"),
]


def path_of(name: str, directory: Path | None = None) -> Path:
    return (directory or KEPT) / f"{name}.json"


def regenerate(name: str) -> str:
    """The command that writes the kept JSON `name`, for an error message."""
    if name == OPEN_LOOP:
        return f"`manage.py bench --open-loop --json {path_of(name)}`"
    return f"`manage.py bench --http {name} --json {path_of(name)}`"


def load(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = path_of(name, directory)
    if not path.exists():
        raise DocsError(f"no kept HTTP run {path}: {regenerate(name)}")
    return json.loads(path.read_text(encoding="utf-8"))


def check_holds(name: str, data: dict[str, Any], directory: Path | None = None) -> None:
    """The JSON kept as `name` is a run of that: the open loop, or `--http name`'s pairs."""
    path = path_of(name, directory)
    if name == OPEN_LOOP:
        if data.get("mode") != "open-loop":
            raise DocsError(f"{path} is not an open-loop run (mode {data.get('mode')!r})")
        return
    if data.get("mode") != "http":
        raise DocsError(f"{path} is not a `bench --http` run (mode {data.get('mode')!r})")
    names = sorted({pair.get("name") for pair in data.get("pairs") or []})
    if names != [name]:
        raise DocsError(
            f"{path} should hold the pairs of {name} alone; it holds {', '.join(names) or 'none'}"
        )


# --- the command and the run -----------------------------------------------------------------


def command(name: str, data: dict[str, Any]) -> str:
    """The command line that made the run, its --json writing the kept file."""
    arguments = data.get("arguments") or {}
    mode = "--open-loop" if data.get("mode") == "open-loop" else "--http"
    parts = [
        f"DJANGO_SETTINGS_MODULE={data.get('settings_module') or 'config.settings.loadtest'}",
        f".venv/bin/python manage.py bench {mode}",
        *arguments.get("names", []),
    ]
    for key, flag in FLAGS:
        if arguments.get(key) is not None:
            value = arguments[key]
            parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    parts.append(f"--json docs/figures/http/{name}.json")
    return " ".join(parts)


def _when(started_at: Any) -> str:
    try:
        return datetime.fromisoformat(started_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return str(started_at or "an unrecorded time")


def run_line(name: str, data: dict[str, Any]) -> str:
    """Which run: the command, when, on what data and machine, as the other blocks say it."""
    dataset = data.get("dataset") or {}
    rows = rows_text(dataset)
    data_set = f"the {dataset.get('size') or 'unrecognised'} data set" + (
        f" ({rows})" if rows else ""
    )
    return (
        f"From one run of `{command(name, data)}`, started {_when(data.get('started_at'))}, on "
        f"{data_set}; {machine_text(data.get('machine'))}; the client, gunicorn and "
        f"PostgreSQL on the same CPUs. Kept in `docs/figures/http/{name}.json` and written here "
        "by `manage.py bench_docs`: your machine's figures will differ, so run the command for "
        "your own.\n"
    )


# --- closed loop: the pairs ------------------------------------------------------------------


def _errors(side: dict[str, Any]) -> str:
    errors = side.get("errors") or {}
    total = sum(errors.values())
    if not total:
        return "0"
    return f"{total:,} ({', '.join(f'{kind}: {n:,}' for kind, n in sorted(errors.items()))})"


def pair(entry: dict[str, Any]) -> str:
    """A pair's table, a row per side and per further arm, then what follows from it."""
    sides = [("off", entry.get("off") or {}), ("on", entry.get("on") or {})]
    sides += list((entry.get("arms") or {}).items())
    head = f"**{entry.get('title') or entry.get('name')}** (`{cell(str(entry.get('request')))}`"
    head += f", {entry.get('clients')} concurrent clients)" if entry.get("clients") else ")"
    lines = [
        head,
        "",
        "| | requests | p50 | p90 | p99 | max | answered/s | errors | timeouts "
        "| connections opened |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, side in sides:
        rate = side.get("rate_per_s")
        cells = [
            label,
            formatted(side.get("requests"), "count"),
            *(formatted(side.get(key), "ms") for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
            f"{rate:,.1f}" if is_number(rate) else "–",
            _errors(side),
            formatted(side.get("timeouts"), "count"),
            formatted(side.get("connections_opened"), "count"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", _said(entry, sides)]) + "\n"


def _said(entry: dict[str, Any], sides: list[tuple[str, dict[str, Any]]]) -> str:
    off, on = entry.get("off") or {}, entry.get("on") or {}
    said = []
    p50 = ratio_of(off.get("p50_ms"), on.get("p50_ms"))
    if p50:
        said.append(f"p50 off ÷ on: {p50}.")
    opened_off, opened_on = off.get("connections_opened"), on.get("connections_opened")
    if is_number(opened_off) and is_number(opened_on):
        ratio = ratio_of(opened_off, opened_on)
        said.append(
            f"Connections opened off ÷ on: {ratio}."
            if ratio
            else f"Connections opened: {opened_off:,} off, none on."
        )
    queries = [f"{label} `{s['db_queries']}`" for label, s in sides if s.get("db_queries")]
    if queries:
        said.append("gunicorn's `X-DB-Queries` on the last answer: " + ", ".join(queries) + ".")
    same = f"Same answer as on: {yes(entry.get('same_answer'))}"
    said.append(same + (f" ({entry['difference']})." if entry.get("difference") else "."))
    for label, why in (entry.get("skipped_arms") or {}).items():
        said.append(f"The {label} arm did not run: {why}.")
    return " ".join(said)


# --- open loop ---------------------------------------------------------------------------------


def open_loop(data: dict[str, Any]) -> str:
    """The schedule asked for against what the server kept up with, and the latencies."""
    target = data.get("target") or "/api/perf/ping/"
    sent, errors = data.get("sent"), data.get("errors")
    share = f" ({errors / sent:.1%})" if is_number(errors) and sent else ""
    kinds = data.get("error_kinds") or {}
    if kinds:
        share += " [" + ", ".join(f"{kind}: {n:,}" for kind, n in sorted(kinds.items())) + "]"
    rate, achieved = data.get("rate"), data.get("achieved_rate")
    lines = [
        f"**GET `{target}`, open loop** ({formatted(data.get('duration_s'), 'count')} s of "
        f"schedule, up to {data.get('in_flight')} requests in flight)",
        "",
        "| asked | achieved | sent | errors | p50 | p90 | p99 | max |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| "
        + " | ".join(
            [
                f"{rate:g}/s" if is_number(rate) else "–",
                f"{achieved:,.1f}/s" if is_number(achieved) else "–",
                formatted(sent, "count"),
                formatted(errors, "count") + share,
                *(formatted(data.get(k), "ms") for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
            ]
        )
        + " |",
        "",
    ]
    said = "Latency runs from each request's intended send time, errors and timeouts included."
    if is_number(data.get("max_send_lag_ms")):
        said += (
            f" The latest request left its client thread {formatted(data['max_send_lag_ms'], 'ms')}"
            " after it was due."
        )
    return "\n".join([*lines, said]) + "\n"


# --- the pages -----------------------------------------------------------------------------------


def render(name: str, data: dict[str, Any]) -> str:
    if name == OPEN_LOOP:
        body = open_loop(data)
    else:
        body = "\n".join(pair(entry) for entry in data.get("pairs") or [])
    return body + "\n" + run_line(name, data)


def update(text: str, directory: Path | None = None) -> str:
    """`text` with every http block's body rewritten from its kept JSON."""

    def body(name: str) -> str:
        data = load(name, directory)
        check_holds(name, data, directory)
        return (
            f"<!-- Written by `manage.py bench_docs` from docs/figures/http/{name}.json: "
            "do not edit by hand. -->\n" + render(name, data)
        )

    return rewrite_blocks(text, BLOCK, OPENING, body, kind="http")


def blocks(text: str) -> list[str]:
    return OPENING.findall(text)
