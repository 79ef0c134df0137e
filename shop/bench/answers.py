"""Same answer off and on: keeping one answer per side, and saying where two differ."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from shop.bench.samples import Sample

_MISSING = object()


class AnswerKeeper:
    """Wraps one side's run: keeps the first answer and checks every later one against it,
    then drops it, so forty runs of a 10 MB export do not hold 400 MB."""

    def __init__(self, run: Callable[[], Sample]) -> None:
        self._run = run
        self.first: Sample | None = None
        self.stable = True

    def __call__(self) -> Sample:
        sample = self._run()
        if self.first is None:
            self.first = sample
        elif (sample.status, sample.answer) != (self.first.status, self.first.answer):
            self.stable = False
        return dataclasses.replace(sample, answer=None)


def compare(off: Sample, on: Sample, names: tuple[str, str] = ("off", "on")) -> tuple[bool, str]:
    """Whether two runs gave the same answer (status and body), and if not, where they part.
    `names` say which run is which in the message: an extra arm's answer is compared with on's
    (`("on", "floor")`), a cold run's with its warm side's."""
    a, b = names
    if off.status != on.status:
        return False, f"status {off.status} {a}, {on.status} {b}"
    if off.answer == on.answer:
        return True, ""
    return False, first_difference(off.answer, on.answer, names=names)


def first_difference(
    off: Any, on: Any, path: str = "answer", names: tuple[str, str] = ("off", "on")
) -> str:
    """`results[3].items[0].unit_price: '12.50' off, '12.5' on`."""
    a_name, b_name = names
    if isinstance(off, dict) and isinstance(on, dict):
        for key in [*off, *(k for k in on if k not in off)]:
            a, b = off.get(key, _MISSING), on.get(key, _MISSING)
            if a is _MISSING or b is _MISSING:
                side = b_name if a is _MISSING else a_name
                return f"{path}.{key}: only {side}"
            if a != b:
                return first_difference(a, b, f"{path}.{key}", names)
    if isinstance(off, list) and isinstance(on, list):
        for index, (a, b) in enumerate(zip(off, on, strict=False)):
            if a != b:
                return first_difference(a, b, f"{path}[{index}]", names)
        if len(off) != len(on):
            return f"{path}: {len(off)} items {a_name}, {len(on)} {b_name}"
    if isinstance(off, bytes | str) and isinstance(on, bytes | str) and type(off) is type(on):
        at = next((i for i, (a, b) in enumerate(zip(off, on, strict=False)) if a != b), None)
        if at is None:
            return f"{path}: {len(off)} long {a_name}, {len(on)} {b_name}"
        return f"{path}, from offset {at}: {_short(off[at:])} {a_name}, {_short(on[at:])} {b_name}"
    return f"{path}: {_short(off)} {a_name}, {_short(on)} {b_name}"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
