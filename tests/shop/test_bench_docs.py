"""The docs' figures come from the kept bench run (docs/figures/bench.json) and nowhere else: every
marked block reads as `manage.py bench_docs` writes it, and every technique's chapter has one."""

import copy
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shop.bench import discovery, docs
from shop.bench.discovery import module_names

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
    for name in module_names():
        chapter = ROOT / "docs" / "techniques" / f"{name}.md"
        assert docs.blocks(chapter.read_text(encoding="utf-8")).count(name) == 1, chapter
    bench = docs.blocks((ROOT / "docs" / "bench.md").read_text(encoding="utf-8"))
    assert {"table", "order_history", "run"} <= set(bench)


def test_the_kept_json_is_one_whole_run(kept):
    """Every scenario module and the order-history page, in one run that finished."""
    ran = {entry["name"] for entry in kept["techniques"]}
    assert set(module_names()) <= ran
    assert kept["order_history"] and not kept["order_history"]["error"]
    assert not kept["interrupted"] and not kept["problems"]
    assert not [entry["name"] for entry in kept["techniques"] if entry["error"]]


def test_the_kept_run_measured_the_scenarios_the_code_has(kept):
    """A scenario added, removed or retitled since the kept run needs a new run: the docs would
    otherwise show figures of a request the bench no longer sends."""
    for name in module_names():
        recorded = sorted(
            (e["scenario"], e["title"]) for e in kept["techniques"] if e["name"] == name
        )
        assert recorded == list(enumerate(s.title for s in discovery.suite(name).scenarios)), (
            f"{name}'s scenarios changed since docs/figures/bench.json was recorded: rerun the "
            "bench and `manage.py bench_docs --from` (docs/bench.md)"
        )


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
    data["order_history"]["floor"]["db_p50_ms"] = None
    del data["machine"]["django"]

    chapter = docs.render(entry["name"], data)
    assert "database time" not in chapter.split("\n\n")[1]
    assert "| database bytes | 298.6 kB | 13.4 kB | 22.3× |" in chapter
    assert "Baseline" not in chapter.split("\n\n")[2]
    assert "write cost ratio: 1.25" in chapter
    assert "| write ms | 2.50 ms | 3.75 ms | 0.7× |" in chapter
    assert 'perf toggles: "select_related=off"' in chapter
    assert "Django" not in docs.run_line(data)
    assert "database bytes" in docs.render("table", data)
    assert "| SQL floor |" in docs.render("order_history", data)

    data["order_history"] = None
    data["techniques"] = [e for e in data["techniques"] if e["name"] != "select_related"]
    assert "no order-history page" in docs.render("order_history", data)
    assert "no scenario for select_related" in docs.render("select_related", data)


def test_an_unknown_or_unclosed_block_is_an_error(kept):
    with pytest.raises(docs.DocsError, match="no_such_thing"):
        docs.update("<!-- bench:no_such_thing -->\n<!-- /bench:no_such_thing -->", kept)
    with pytest.raises(docs.DocsError, match="unclosed"):
        docs.update("<!-- bench:select_related -->\nfigures\n", kept)


def test_bench_docs_keeps_only_a_whole_run(kept, tmp_path, monkeypatch):
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
