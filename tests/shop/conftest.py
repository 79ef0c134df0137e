"""What the bench's test modules share: a scenario module made up for a test, a way to run the
bench and read its JSON, and cache keys of the test's own."""

import json
import os
import sys
import types
from io import StringIO

import pytest
from django.core.management import call_command

from shop import toggles
from shop.bench import discovery

FAKE = "bench_fake"


@pytest.fixture
def fake_module(monkeypatch):
    """A scenario module `bench_fake` for a toggle registered for the test only: the harness
    finds it as it finds the real ones. The toggle changes nothing in the shop."""
    toggle = toggles.Toggle(FAKE, "data_access", "a toggle for the harness's own tests")
    monkeypatch.setitem(toggles._registry, FAKE, toggle)
    module = types.ModuleType(f"shop.bench.scenarios.{FAKE}")
    module.events = []
    monkeypatch.setitem(sys.modules, module.__name__, module)
    real = discovery.module_names()
    monkeypatch.setattr(discovery, "module_names", lambda: sorted([*real, FAKE]))
    return module


@pytest.fixture
def own_cache_keys(settings):
    """A cold run deletes the project's cache keys: under a prefix of this process's own, so
    that tests running at the same time against the same Redis keep theirs."""
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": f"{config.get('KEY_PREFIX', '')}-{os.getpid()}"}
        for alias, config in settings.CACHES.items()
    }


def run_bench(tmp_path, *args, err: StringIO | None = None):
    """`manage.py bench ARGS --report tmp_path`: its JSON, and what it printed."""
    out = StringIO()
    call_command("bench", *args, "--report", str(tmp_path), stdout=out, stderr=err or StringIO())
    return json.loads((tmp_path / "bench.json").read_text()), out.getvalue()
