"""The docs' figures come from the kept bench run (docs/figures/bench.json) and nowhere else: every
marked block reads as `manage.py bench_docs` writes it, and every technique's chapter has one."""

import copy
import json
import re
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import resolve

from shop import toggles
from shop.bench import discovery, docs
from shop.bench.discovery import module_names
from shop.bench.docs_values import formatted
from shop.bench.formatting import times

ROOT = docs.KEPT.parents[2]


@pytest.fixture(scope="module")
def kept() -> dict:
    return docs.load()


def _differences(text: str, written: str) -> list[str]:
    """The first lines where a page departs from what bench_docs writes, for the message."""
    return [
        f"page: {a!r}\nrun:  {b!r}"
        for a, b in zip(text.splitlines(), written.splitlines(), strict=False)
        if a != b
    ][:3]


@pytest.mark.parametrize("page", docs.pages(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_matches_the_kept_run(page: Path, kept):
    text = page.read_text(encoding="utf-8")
    written = docs.update(text, kept)
    assert written == text, (
        f"{page.relative_to(ROOT)} differs from docs/figures/bench.json; run "
        "`manage.py bench_docs`:\n" + "\n".join(_differences(text, written))
    )


def test_every_technique_with_a_scenario_has_its_block_in_its_chapter():
    """A technique's block is in its chapter; a composite scenario's, which is no technique's,
    in docs/bench.md."""
    bench = docs.blocks((ROOT / "docs" / "bench.md").read_text(encoding="utf-8"))
    for name in module_names():
        if discovery.suite(name).composite:
            assert bench.count(name) == 1, name
            continue
        chapter = ROOT / "docs" / "techniques" / f"{name}.md"
        assert docs.blocks(chapter.read_text(encoding="utf-8")).count(name) == 1, chapter
    assert {"table", "order_history", "run"} <= set(bench)


def test_the_kept_json_is_one_whole_run(kept):
    """Every scenario module (order_history's included), in one run that finished."""
    ran = {entry["name"] for entry in kept["techniques"]}
    assert set(module_names()) <= ran
    (history,) = [entry for entry in kept["techniques"] if entry["name"] == "order_history"]
    assert history["arms"]["floor"]["side"] and history["targets"]
    assert not kept["interrupted"] and not kept["problems"]
    assert not [entry["name"] for entry in kept["techniques"] if entry["error"]]


def _identity(entry: dict) -> tuple:
    return entry["title"], entry["hold"], entry["notes"]


def _scenario_identity(scenario) -> tuple:
    """As the bench records it (runner.run_scenario): `hold` keeps only registered toggles."""
    registered = {toggle.name for toggle in toggles.registered()}
    hold = {name: on for name, on in scenario.hold.items() if name in registered}
    return scenario.title, hold, scenario.notes


def _drift(kept: dict) -> list[str]:
    """Each scenario whose title, hold or notes differ from the kept run's, or that the kept run
    lacks or has in excess."""
    found = []
    for name in module_names():
        recorded = {e["scenario"]: _identity(e) for e in kept["techniques"] if e["name"] == name}
        code = dict(enumerate(map(_scenario_identity, discovery.suite(name).scenarios)))
        found += [
            f"{name}[{index}]: kept {recorded.get(index)}, code {code.get(index)}"
            for index in sorted(recorded.keys() | code.keys())
            if recorded.get(index) != code.get(index)
        ]
    return found


def _route(path: str) -> str:
    """A request as the bench records it ("GET /api/products/113/reviews/?page_size=50"), less
    what comes from the data: the URL pattern and the query's parameter names."""
    method, url = path.split(" ", 1)
    parts = urlsplit(url)
    return f"{method} {resolve(parts.path).route} ?{','.join(sorted(parse_qs(parts.query)))}"


@pytest.mark.django_db(transaction=True)
def test_the_kept_run_measured_the_scenarios_the_code_has(kept):
    """A scenario added, removed, retitled, or with another hold, notes or request since the
    kept run needs a new run: the docs would otherwise show figures of a request the bench no
    longer sends. The request is compared on seeded data (method, URL route, query parameter
    names): its ids, cursors and dates come from the data."""
    drift = _drift(kept)
    call_command("seed", size="small", quiet=True, stdout=StringIO(), stderr=StringIO())
    recorded = {(e["name"], e["scenario"]): e["path"] for e in kept["techniques"]}
    for name in module_names():
        suite = discovery.suite(name)
        try:
            for index, scenario in enumerate(suite.scenarios):
                if scenario.call is None:  # no request to compare (an archive job)
                    continue
                if scenario.prepare is not None:
                    scenario.prepare()
                call = scenario.call()
                sent = _route(f"{call.method.upper()} {call.path}")
                if (name, index) in recorded and _route(recorded[name, index]) != sent:
                    drift.append(f"{name}[{index}]: kept {recorded[name, index]!r}, code {sent!r}")
        finally:
            # As the bench does: what a prepare started (async_tasks' workers) is stopped.
            if suite.after is not None:
                suite.after()
    assert not drift, (
        "scenarios changed since docs/figures/bench.json was recorded: rerun the bench and "
        "`manage.py bench_docs --from` (docs/bench.md):\n" + "\n".join(drift)
    )


def test_a_request_is_compared_less_what_comes_from_the_data():
    reviews = _route("GET /api/products/113/reviews/?page_size=50")
    assert reviews == _route("GET /api/products/7/reviews/?page_size=20")
    assert reviews != _route("GET /api/products/?page_size=50")
    assert reviews != _route("GET /api/products/113/reviews/?page_size=50&rating=5")
    assert reviews != _route("POST /api/products/113/reviews/?page_size=50")


@pytest.mark.parametrize("key", ["title", "hold", "notes"])
def test_a_changed_title_hold_or_notes_is_drift(kept, key):
    data = copy.deepcopy(kept)
    entry = next(e for e in data["techniques"] if e["name"] == "select_related")
    entry[key] = {"prefetch_related": False} if key == "hold" else entry[key] + " (changed)"
    (changed,) = set(_drift(data)) - set(_drift(kept))
    assert changed.startswith("select_related[0]: kept ")


def test_a_figure_typed_over_in_a_chapter_fails_and_bench_docs_writes_it_back(
    kept, tmp_path, monkeypatch
):
    original = (ROOT / "docs" / "techniques" / "select_related.md").read_text(encoding="utf-8")
    # Edit one figure inside the block, as a hand would.
    body = next(m for m in docs.BLOCK.finditer(original) if m.group("name") == "select_related")
    figure = re.search(r"\| p50 \| [0-9.]+ ms", body.group("body")).group(0)
    edited = original.replace(figure, figure.replace("| p50 | ", "| p50 | 9"), 1)
    assert edited != original
    assert docs.update(edited, kept) == original

    page = tmp_path / "select_related.md"
    page.write_text(edited, encoding="utf-8")
    monkeypatch.setattr(docs, "pages", lambda root=None: [page])
    with pytest.raises(CommandError, match="bench_docs"):
        call_command("bench_docs", check=True, stdout=StringIO())
    assert page.read_text(encoding="utf-8") == edited  # --check changes nothing
    call_command("bench_docs", stdout=StringIO())
    assert page.read_text(encoding="utf-8") == original


def test_a_block_renders_what_the_json_has_missing_fields_and_new_ones_alike(kept):
    """Another run may lack a field (an older bench) or add one (a newer bench): neither fails,
    a missing figure is left out, and a new one is shown."""
    data = copy.deepcopy(kept)
    entry = data["techniques"][0]
    for side in ("off", "on"):
        del entry[side]["db_p50_ms"]
        entry[side]["database_bytes"] = 305_802 if side == "off" else 13_693
    entry["baseline"] = None
    entry["write_cost_ratio"] = 1.25
    entry["write_ms"] = {"off": 2.5, "on": 3.75}
    data["perf_toggles"] = "select_related=off"
    data["restored_at_start"] = ["db_indexes: orders_order_created_idx"]
    data["run_note"] = "a field no bench writes yet"
    history = next(e for e in data["techniques"] if e["name"] == "order_history")
    history["arms"]["floor"]["side"]["db_p50_ms"] = None
    history["off"]["db_p50_ms"], history["on"]["db_p50_ms"] = 23.0, 2.24
    del data["machine"]["django"]

    chapter = docs.render(entry["name"], data)
    assert "database time" not in chapter.split("\n\n")[1]
    assert "| database bytes | 298.6 kB | 13.4 kB | 22.3× |" in chapter
    assert "Baseline" not in chapter.split("\n\n")[2]
    assert "write cost ratio: 1.25" in chapter
    assert "| write ms | 2.50 ms | 3.75 ms | 0.7× |" in chapter
    assert "PERF_TOGGLES=select_related=off" in chapter
    assert "restored at start-up: db_indexes: orders_order_created_idx" in chapter
    assert 'run note: "a field no bench writes yet"' in chapter
    assert "Django" not in docs.run_line(data)
    assert "database bytes" in docs.render("table", data)
    history_block = docs.render("order_history", data)
    assert "| off ÷ on | SQL floor |" in history_block
    off_db, on_db = (formatted(history[side]["db_p50_ms"], "ms") for side in ("off", "on"))
    speedup = times(history["db_speedup_p50"])  # whatever the kept run measured
    assert f"| database time, p50 | {off_db} | {on_db} | {speedup} | – |" in history_block

    data["techniques"] = [e for e in data["techniques"] if e["name"] != "select_related"]
    assert "no scenario for select_related" in docs.render("select_related", data)


def test_an_unknown_or_unclosed_block_is_an_error(kept):
    with pytest.raises(docs.DocsError, match="no_such_thing"):
        docs.update("<!-- bench:no_such_thing -->\n<!-- /bench:no_such_thing -->", kept)
    with pytest.raises(docs.DocsError, match="unclosed"):
        docs.update("<!-- bench:select_related -->\nfigures\n", kept)


def test_bench_docs_keeps_only_a_whole_run(kept, tmp_path, monkeypatch):
    kept = copy.deepcopy(kept)
    kept["dataset"]["size"] = "medium"
    partial = copy.deepcopy(kept)
    partial["techniques"] = [e for e in partial["techniques"] if e["name"] == "select_related"]
    source = tmp_path / "partial.json"
    source.write_text(json.dumps(partial), encoding="utf-8")
    target = tmp_path / "figures" / "bench.json"
    monkeypatch.setattr(docs, "KEPT", target)
    monkeypatch.setattr(docs, "pages", lambda root=None: [])
    with pytest.raises(CommandError, match="not a whole run: it lacks .*prefetch_related"):
        call_command("bench_docs", source=source, stdout=StringIO())
    assert not target.exists()

    source.write_text(json.dumps(kept), encoding="utf-8")
    call_command("bench_docs", source=source, stdout=StringIO())
    assert json.loads(target.read_text(encoding="utf-8")) == kept


def test_bench_docs_keeps_only_a_run_on_the_medium_data(kept, tmp_path, monkeypatch):
    """The chapters describe the medium data set: a small run, or one on data matching no size,
    is refused with one line, and nothing is copied."""
    target = tmp_path / "figures" / "bench.json"
    monkeypatch.setattr(docs, "KEPT", target)
    monkeypatch.setattr(docs, "pages", lambda root=None: [])
    source = tmp_path / "run.json"
    for measured_on, named in (("small", "small"), (None, "unrecognised")):
        data = copy.deepcopy(kept)
        data["dataset"]["size"] = measured_on
        source.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(CommandError, match=f"measured the {named} data set.*describe medium"):
            call_command("bench_docs", source=source, stdout=StringIO())
        assert not target.exists()
    data["dataset"]["size"] = "medium"
    source.write_text(json.dumps(data), encoding="utf-8")
    call_command("bench_docs", source=source, stdout=StringIO())
    assert target.exists()
