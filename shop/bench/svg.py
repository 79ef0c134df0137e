"""Inline SVG for the self-contained HTML reports (no script, nothing fetched): the element, and
horizontal bar charts, a group of bars per metric, each bar labelled with its arm and value."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

# Per metric: {arm: (value, its text)}, e.g. ("p50", {"off": (12.3, "12.3 ms"), ...}).
Groups = list[tuple[str, dict[str, tuple[float, str]]]]


def svg(width: float, height: float, label: str, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}">'
        + "".join(parts)
        + "</svg>"
    )


def bars(
    groups: Groups,
    label: str,
    *,
    color: Callable[[str], str],
    one_scale: bool,
    label_width: int,
    bar_width: int,
    bar_height: int,
    text_room: int,
) -> str:
    """Horizontal bars, a group per metric. `one_scale`: every group against the largest value
    of all (milliseconds against milliseconds); else each group against its own largest, so the
    eye compares the arms within a metric. A value above 0 always shows a sliver of a bar."""
    gap = 3
    overall = max((value for _, arms in groups for value, _ in arms.values()), default=0) or 1
    y, parts = 4.0, []
    for metric, arms in groups:
        biggest = overall if one_scale else max(value for value, _ in arms.values()) or 1
        top = y
        for arm, (value, text) in arms.items():
            width = max(value / biggest * bar_width, 1.5 if value > 0 else 0)
            parts.append(
                f'<rect x="{label_width}" y="{y:.1f}" width="{width:.1f}" height="{bar_height}" '
                f'fill="{color(arm)}" rx="2"/>'
                f'<text x="{label_width + width + 6:.1f}" y="{y + 12:.1f}">'
                f"{escape(arm)}: {escape(text)}</text>"
            )
            y += bar_height + gap
        parts.append(
            f'<text x="{label_width - 8}" y="{(top + y) / 2 + 3:.1f}" text-anchor="end" '
            f'font-weight="600">{escape(metric)}</text>'
        )
        y += 10
    return svg(label_width + bar_width + text_room, y, label, parts)
