"""The toggle registry: registration, defaults from the environment, overrides that stay in
their own thread, task or coroutine, and agreement with the catalog and shop/techniques/."""

import asyncio
import pkgutil
import re
import threading
from pathlib import Path

import pytest

from shop import techniques, toggles

ROOT = Path(__file__).resolve().parents[2]


def test_every_technique_module_registers_its_toggle_and_nothing_else_is_registered():
    modules = {
        m.name for m in pkgutil.iter_modules(techniques.__path__) if not m.name.startswith("_")
    }
    assert {toggle.name for toggle in toggles.registered()} == modules


def _catalog() -> dict[str, tuple[str, str]]:
    """name → (group, status), from the table in docs/techniques/README.md."""
    rows = re.findall(
        r"^\| (\w+) \| (\w+) \|.*\| (built|planned) \|$",
        (ROOT / "docs/techniques/README.md").read_text(),
        flags=re.MULTILINE,
    )
    return {name: (group, status) for group, name, status in rows}


def test_the_catalog_the_registry_and_the_files_agree():
    catalog = _catalog()
    assert len(catalog) == 31
    built = {name for name, (_group, status) in catalog.items() if status == "built"}
    assert {toggle.name for toggle in toggles.registered()} == built
    for toggle in toggles.registered():
        assert toggle.group == catalog[toggle.name][0], toggle.name
    for name in built:
        assert (ROOT / f"shop/techniques/{name}.py").is_file(), name
        assert (ROOT / f"tests/techniques/test_{name}.py").is_file(), name
        assert (ROOT / f"docs/techniques/{name}.md").is_file(), name
        assert (ROOT / f"shop/bench/scenarios/{name}.py").is_file(), name
        assert (ROOT / f"loadtests/scenarios/{name}.py").is_file(), name


def test_defaults_are_on():
    assert all(toggle.default for toggle in toggles.registered())
    assert toggles.is_enabled("select_related")
    assert toggles.source("select_related") == "default"


def test_environment_sets_the_default(monkeypatch):
    monkeypatch.setenv("PERF_TOGGLES", "select_related=off")
    assert not toggles.is_enabled("select_related")
    assert toggles.source("select_related") == "environment"
    with toggles.override(select_related=True):
        assert toggles.is_enabled("select_related")  # code beats the environment
    assert not toggles.is_enabled("select_related")


@pytest.mark.parametrize("spec", ["nope=off", "select_related", "select_related=maybe"])
def test_malformed_or_unknown_specs_are_errors(spec):
    with pytest.raises((toggles.UnknownToggle, ValueError)):
        toggles.parse(spec)


def test_unknown_names_are_errors_in_code():
    with pytest.raises(toggles.UnknownToggle, match="unknown toggle 'nope'"):
        toggles.is_enabled("nope")
    with pytest.raises(toggles.UnknownToggle), toggles.override(nope=False):
        pass


def test_override_restores_on_exit_even_after_an_error():
    with pytest.raises(RuntimeError), toggles.override(select_related=False):
        assert not toggles.is_enabled("select_related")
        raise RuntimeError
    assert toggles.is_enabled("select_related")


def test_an_override_stays_in_its_thread():
    inside, seen_elsewhere = threading.Event(), []

    def other_thread():
        inside.wait(5)
        seen_elsewhere.append(toggles.is_enabled("select_related"))

    thread = threading.Thread(target=other_thread)
    thread.start()
    with toggles.override(select_related=False):
        inside.set()
        thread.join(5)
        assert not toggles.is_enabled("select_related")
    assert seen_elsewhere == [True]


def test_overrides_follow_their_own_coroutine():
    async def read_after(delay, flag):
        with toggles.override(select_related=flag):
            await asyncio.sleep(delay)
            return toggles.is_enabled("select_related")

    async def both():
        return await asyncio.gather(read_after(0.02, False), read_after(0.01, True))

    assert asyncio.run(both()) == [False, True]


def test_format_flags_is_the_header_form():
    assert toggles.format_flags({"select_related": False}) == "select_related=off"
    assert toggles.parse(toggles.format_flags({"select_related": True})) == {"select_related": True}
