"""What the row generators share: the block type they return, time units, and cents as text."""

from __future__ import annotations

DAY = 86_400
HOUR = 3_600

Block = dict[str, tuple[str, int]]  # table -> (COPY text, row count)


def cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"
