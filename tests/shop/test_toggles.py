"""The toggle registry: registration, defaults from the environment, overrides that stay in
their own thread, task or coroutine, agreement with the catalog and shop/techniques/, and the
holds the bench and the Locust scenarios share (shop/bench/holds.py)."""

import ast
import asyncio
import os
import pkgutil
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shop import techniques, toggles
from shop.bench import discovery, holds

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
    assert len(catalog) == 32
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


@pytest.mark.registered_defaults
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


# --- holds: the bench's and Locust's from one source (shop/bench/holds.py) --------------------


def test_every_bench_scenario_holds_a_shop_bench_holds_entry_of_its_technique():
    """By identity: a scenario that typed its own dict, even an equal one, would fail here, and
    a Locust scenario sending the same entry could then drift from it."""
    for toggle in toggles.registered():
        named = holds.named(toggle.name)
        used = set()
        for scenario in discovery.suite(toggle.name).scenarios:
            if not scenario.hold:
                continue  # holds nothing
            found = [key for key, value in named.items() if scenario.hold is value]
            assert found, (toggle.name, scenario.title, dict(scenario.hold))
            used.update(found)
        assert used == set(named), (toggle.name, "entries no bench scenario holds")


def _locust_holds(name: str) -> set[str]:
    """The shop.bench.holds entries a Locust scenario sends. Anything else it could send in
    place of one (a keyword, a dict of its own) fails the test."""
    tree = ast.parse((ROOT / f"loadtests/scenarios/{name}.py").read_text())
    sent = set()

    def entry(node: ast.AST) -> str:
        is_entry = (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "holds"
        )
        assert is_entry, f"{name}: {ast.unparse(node)} is not a shop.bench.holds entry"
        return node.attr

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "toggles":
            assert not node.args, f"{name}: {ast.unparse(node)}"
            for keyword in node.keywords:
                assert keyword.arg is None, f"{name}: {ast.unparse(node)}: hold a holds entry"
                sent.add(entry(keyword.value))
        if isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "hold" for target in node.targets
        ):
            sent.add(entry(node.value))  # OrderingUser's `hold = holds.BULK_WRITES`
    return sent


def test_every_locust_scenario_sends_its_bench_scenarios_holds_from_shop_bench_holds():
    for toggle in toggles.registered():
        assert _locust_holds(toggle.name) == set(holds.named(toggle.name)), toggle.name


def test_a_locust_scenario_that_types_its_own_hold_is_caught(tmp_path, monkeypatch):
    """The check above on a drifted copy: the old way, a keyword typed in the Locust file."""
    drifted = (ROOT / "loadtests/scenarios/select_related.py").read_text()
    drifted = drifted.replace("**holds.SELECT_RELATED", "fast_serialization=True")
    (tmp_path / "loadtests/scenarios").mkdir(parents=True)
    (tmp_path / "loadtests/scenarios/select_related.py").write_text(drifted)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="hold a holds entry"):
        _locust_holds("select_related")


def test_the_locust_scenarios_import_in_a_locust_process_without_django():
    """`locust --list` imports every file as `make loadtest` does, with no Django settings."""
    files = sorted(str(path) for path in (ROOT / "loadtests/scenarios").glob("[!_]*.py"))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "PYTEST_VERSION"}
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("locust")), "-f", ",".join(files), "--list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    listed = result.stdout.split()
    assert len([word for word in listed if word.endswith("User")]) == len(files), result.stdout
