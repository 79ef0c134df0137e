"""The toggle registry: every technique's off/on switch, in one place.

A technique registers itself when its module is imported (`shop.apps` imports every module in
`shop/techniques/` at start-up), with its name, group, one-line description and default.
Whether it is on is decided, most specific first, by:

1. `with toggles.override(select_related=False):` in code, or the per-request header
   `X-Perf-Toggles: select_related=off` (which the middleware turns into an override);
2. the environment: `PERF_TOGGLES="select_related=off,cache_aside=off"`;
3. the default it registered with (on).

Overrides live in a context variable, so they are local to the thread, the asyncio task or the
Celery task that sets them, and never leak into a concurrent request.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

GROUPS = ("data_access", "replicas", "queues", "caching")

_ON = {"on", "true", "1", "yes"}
_OFF = {"off", "false", "0", "no"}


class UnknownToggle(LookupError):
    """A name that no technique registered."""

    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(_registry)) or "none yet"
        super().__init__(f"unknown toggle {name!r} (known: {known})")
        self.name = name


@dataclass(frozen=True)
class Toggle:
    name: str
    group: str
    description: str
    default: bool = True


_registry: dict[str, Toggle] = {}
# Immutable, so a context that inherited the value can never change it for another.
_overrides: ContextVar[Mapping[str, bool]] = ContextVar(
    "perf_toggle_overrides", default=MappingProxyType({})
)


def register(name: str, *, group: str, description: str, default: bool = True) -> Toggle:
    if group not in GROUPS:
        raise ValueError(f"toggle {name!r}: group must be one of {GROUPS}, got {group!r}")
    toggle = Toggle(name=name, group=group, description=description, default=default)
    existing = _registry.get(name)
    if existing is not None and existing != toggle:
        raise ValueError(f"toggle {name!r} is registered twice, differently")
    _registry[name] = toggle
    return toggle


def registered() -> list[Toggle]:
    return sorted(_registry.values(), key=lambda toggle: (GROUPS.index(toggle.group), toggle.name))


def get(name: str) -> Toggle:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownToggle(name) from None


def parse(spec: str) -> dict[str, bool]:
    """`"select_related=off, prefetch_related=on"` → `{"select_related": False, ...}`.

    Raises UnknownToggle for a name nobody registered and ValueError for a malformed part.
    """
    flags: dict[str, bool] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip().lower()
        if not sep or value not in _ON | _OFF:
            raise ValueError(f"{part!r} is not name=on or name=off")
        get(name)
        flags[name] = value in _ON
    return flags


def environment_defaults() -> Mapping[str, bool]:
    """The defaults PERF_TOGGLES sets. The variable is read each time (tests change it); its
    parse is cached, since this runs for every toggle check."""
    return _parse_environment(os.environ.get("PERF_TOGGLES", ""))


@lru_cache(maxsize=8)
def _parse_environment(spec: str) -> Mapping[str, bool]:
    return MappingProxyType(parse(spec))


def is_enabled(name: str) -> bool:
    toggle = get(name)
    overrides = _overrides.get()
    if name in overrides:
        return overrides[name]
    return environment_defaults().get(name, toggle.default)


def source(name: str) -> str:
    """Where the effective state of `name` comes from: override, environment or default."""
    get(name)
    if name in _overrides.get():
        return "override"
    if name in environment_defaults():
        return "environment"
    return "default"


def active_overrides() -> dict[str, bool]:
    return dict(_overrides.get())


@contextmanager
def override(**flags: bool) -> Iterator[None]:
    """Set toggles for the duration of the block, in this context only."""
    for name in flags:
        get(name)
    merged = {**_overrides.get(), **{name: bool(on) for name, on in flags.items()}}
    token = _overrides.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _overrides.reset(token)


def format_flags(flags: Mapping[str, bool]) -> str:
    """The header form: `{"a": False}` → `"a=off"`."""
    return ",".join(f"{name}={'on' if on else 'off'}" for name, on in sorted(flags.items()))
