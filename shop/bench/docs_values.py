"""How one value of a bench run's JSON reads in a page (`shop/bench/docs.py` writes the pages):
milliseconds, sizes, counts, ratios, yes or no; and which numbers of a side a page shows."""

from __future__ import annotations

from typing import Any

from shop.bench.formatting import ms, size, times

# Per side: (key, label, format). What a side holds beyond these is shown by `extra_keys`.
SIDE_ROWS = [
    ("p50_ms", "p50", "ms"),
    ("p95_ms", "p95", "ms"),
    ("db_p50_ms", "database time, p50", "ms"),
    ("queries", "queries", "count"),
    ("bytes", "response bytes", "size"),
    ("peak_memory_bytes", "peak Python memory", "size"),
]
# Known and shown elsewhere (or too fine-grained for a page).
SIDE_SKIP = {"queries_by_alias", "mean_ms", "min_ms", "samples_ms", "status", "runs", "endpoint"}
# The time to the first byte is the whole time unless a side streamed: shown only then.
SIDE_SKIP |= {"ttfb_p50_ms", "streamed"}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def formatted(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "ms":
        return f"{ms(value)} ms"
    if kind == "size":
        return size(value)
    if is_number(value):
        return f"{value:,}" if isinstance(value, int) else f"{value:,.3g}"
    return str(value)


def kind_of(key: str) -> str:
    """How a field a newer bench added reads, from its name: `*_ms`, `*bytes*`, or a count."""
    if key.endswith("_ms"):
        return "ms"
    if "bytes" in key:
        return "size"
    return "count"


def ratio_of(off: Any, on: Any) -> str:
    if not (is_number(off) and is_number(on)) or on <= 0:
        return ""
    return times(off / on)


def yes(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not checked"}[value]


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def extra_keys(*sides: dict[str, Any] | None) -> list[str]:
    """Numbers the sides hold that `SIDE_ROWS` does not name, in the JSON's order."""
    known = {key for key, _, _ in SIDE_ROWS} | SIDE_SKIP
    keys: dict[str, None] = {}
    for side in sides:
        for key, value in (side or {}).items():
            if key not in known and is_number(value):
                keys[key] = None
    return list(keys)


def rows_text(dataset: dict[str, Any] | None) -> str:
    """`10,002 users, 10,000 products, ...`: the data set's row counts, as a block's run line
    says them."""
    rows = (dataset or {}).get("rows") or {}
    return ", ".join(f"{n:,} {table.replace('_', ' ')}" for table, n in rows.items())


def machine_text(machine: dict[str, Any] | None) -> str:
    """`2 CPUs, Python 3.11.7, Django 5.2.19, PostgreSQL 15.20, load average 0.6 at the start`:
    what the run recorded of the machine, the parts it lacks left out."""
    machine = machine or {}
    described = [
        f"{machine['cpu_count']} CPUs" if "cpu_count" in machine else "",
        f"Python {machine['python']}" if "python" in machine else "",
        f"Django {machine['django']}" if "django" in machine else "",
        f"PostgreSQL {machine['postgres']}" if "postgres" in machine else "",
        f"load average {machine['load_average_1m']} at the start"
        if machine.get("load_average_1m") is not None
        else "",
    ]
    return ", ".join(part for part in described if part)
