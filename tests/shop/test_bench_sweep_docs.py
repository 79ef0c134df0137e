"""The chapters' sweeps come from the kept sweep runs (docs/figures/sweeps/<name>.json) and
nowhere else: every `<!-- sweep:NAME -->` block reads as `manage.py bench_docs` writes it, and
every technique with a sweep shows it in its chapter."""

import copy
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shop.bench import docs, sweep, sweep_docs
from shop.bench.discovery import module_names

ROOT = docs.KEPT.parents[2]
SWEEPS = [name for name in module_names() if sweep._sweep_of(name) is not None]


def test_the_seven_techniques_have_a_sweep():
    assert set(SWEEPS) == {
        "cursor_pagination",
        "db_indexes",
        "select_related",
        "prefetch_related",
        "algorithmic_complexity",
        "streaming_export",
        "table_partitioning",
    }


@pytest.mark.parametrize("page", docs.pages(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_sweep_block_matches_its_kept_run(page: Path):
    text = page.read_text(encoding="utf-8")
    assert sweep_docs.update(text) == text, (
        f"{page.relative_to(ROOT)} differs from docs/figures/sweeps/: run `manage.py bench_docs`"
    )


@pytest.mark.parametrize("name", SWEEPS)
def test_each_chapter_shows_its_sweep_from_a_whole_medium_run(name):
    chapter = (ROOT / "docs" / "techniques" / f"{name}.md").read_text(encoding="utf-8")
    assert sweep_docs.blocks(chapter) == [name]
    data = sweep_docs.load(name)
    assert data["sweep"] == name and data["size"] == "medium"
    assert not data["interrupted"] and not data["problems"]
    assert all(point["error"] == "" and point["same_answer"] for point in data["points"])


@pytest.mark.parametrize("name", SWEEPS)
def test_the_kept_run_measured_the_points_and_series_the_code_has(name):
    """A point or series added or removed since the kept run needs a new run."""
    definition = sweep._sweep_of(name)
    data = sweep_docs.load(name)
    asked = sorted({point["asked"] for point in data["points"]} | set(data["skipped"]))
    assert asked == sorted(definition.points)
    assert [s["name"] for s in data["series"]] == [line.name for line in definition.series]
    assert data["parts"] == list(definition.parts)


def test_a_figure_typed_over_fails_the_check_and_bench_docs_writes_it_back(tmp_path, monkeypatch):
    original = (ROOT / "docs" / "techniques" / "cursor_pagination.md").read_text(encoding="utf-8")
    body = next(m for m in sweep_docs.BLOCK.finditer(original)).group("body")
    figure = re.search(r"\| [0-9,]+ \| [0-9.]+ ms", body).group(0)
    edited = original.replace(figure, figure.replace(" ms", "9 ms"), 1)
    assert edited != original

    page = tmp_path / "cursor_pagination.md"
    page.write_text(edited, encoding="utf-8")
    monkeypatch.setattr(docs, "pages", lambda root=None: [page])
    with pytest.raises(CommandError, match="bench_docs"):
        call_command("bench_docs", check=True, stdout=StringIO())
    assert page.read_text(encoding="utf-8") == edited  # --check changes nothing
    call_command("bench_docs", stdout=StringIO())
    assert page.read_text(encoding="utf-8") == original


def test_a_replaced_json_makes_the_page_stale(tmp_path):
    data = copy.deepcopy(sweep_docs.load("cursor_pagination"))
    data["points"][0]["on"]["p50_ms"] += 1
    (tmp_path / "cursor_pagination.json").write_text(json.dumps(data), encoding="utf-8")
    chapter = (ROOT / "docs" / "techniques" / "cursor_pagination.md").read_text(encoding="utf-8")
    assert sweep_docs.update(chapter, tmp_path) != chapter


def test_the_blocks_show_the_work_both_sides_and_what_each_sweep_adds():
    cursor = sweep_docs.render(sweep_docs.load("cursor_pagination"))
    assert "| offset (rows) | off p50 | on p50 | off db | on db | off db: count |" in cursor
    indexes = sweep_docs.render(sweep_docs.load("db_indexes"))
    for series in ("**staff filter**", "**product search**", "**product list**"):
        assert series in indexes
    assert "| orders in the table |" in indexes and "| products in the table |" in indexes
    export = sweep_docs.render(sweep_docs.load("streaming_export"))
    assert "off peak memory" in export and "on first byte" in export
    assert "first byte" not in sweep_docs.render(sweep_docs.load("select_related"))


def test_an_unknown_unclosed_or_mismatched_block_is_an_error(tmp_path):
    with pytest.raises(docs.DocsError, match="no kept sweep .*no_such_thing"):
        sweep_docs.update("<!-- sweep:no_such_thing -->\n<!-- /sweep:no_such_thing -->\n")
    with pytest.raises(docs.DocsError, match="unclosed"):
        sweep_docs.update("<!-- sweep:select_related -->\nfigures\n")
    (tmp_path / "select_related.json").write_text('{"sweep": "db_indexes"}', encoding="utf-8")
    with pytest.raises(docs.DocsError, match="holds the sweep 'db_indexes'"):
        sweep_docs.update(
            "<!-- sweep:select_related -->\n<!-- /sweep:select_related -->\n", tmp_path
        )


def test_bench_and_sweep_blocks_share_one_parser(monkeypatch):
    """One rewrite of marked blocks (docs.rewrite_blocks) serves both kinds: a bench block and
    a sweep block on one page are each rewritten by their own renderer, the other left alone."""
    page = "<!-- bench:run -->\nold\n<!-- /bench:run -->\n<!-- sweep:db_indexes -->\nold\n"
    page += "<!-- /sweep:db_indexes -->\n"
    called = []

    def shared(text, block, opening, body, *, kind):
        called.append(kind)
        return docs_rewrite(text, block, opening, body, kind=kind)

    docs_rewrite = docs.rewrite_blocks
    monkeypatch.setattr(docs, "rewrite_blocks", shared)
    monkeypatch.setattr(sweep_docs, "rewrite_blocks", shared)
    swept = sweep_docs.update(page)
    assert "old\n<!-- /bench:run -->" in swept and "<!-- /sweep:db_indexes -->" in swept
    assert "Written by `manage.py bench_docs` from docs/figures/sweeps/db_indexes.json" in swept
    both = docs.update(swept, docs.load())
    assert "old" not in both
    assert called == ["sweep", "bench"]
