"""The docs' figures over HTTP come from the kept `bench --http` and `--open-loop` runs
(docs/figures/http/<name>.json) and nowhere else: every `<!-- http:NAME -->` block reads as
`manage.py bench_docs` writes it, its ratios are computed from the JSON, and docs/bench.md names
the commands that made the kept runs."""

import copy
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shop.bench import docs, http, http_docs, sweep_docs
from shop.bench.formatting import times

ROOT = docs.KEPT.parents[2]
KEPT = sorted(path.stem for path in http_docs.KEPT.glob("*.json"))
CHAPTER = ROOT / "docs" / "techniques" / "connection_pooling.md"


def _without_blocks(text: str) -> str:
    for module in (docs, sweep_docs, http_docs):
        text = module.BLOCK.sub("", text)
    return text


@pytest.mark.parametrize("page", docs.pages(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_http_block_matches_its_kept_run(page: Path):
    text = page.read_text(encoding="utf-8")
    assert http_docs.update(text) == text, (
        f"{page.relative_to(ROOT)} differs from docs/figures/http/: run `manage.py bench_docs`"
    )


def test_the_kept_runs_are_shown_and_each_shown_block_is_kept():
    shown = sorted(
        name for page in docs.pages(ROOT) for name in http_docs.blocks(page.read_text("utf-8"))
    )
    assert shown == KEPT == ["connection_pooling", "open_loop"]
    assert http_docs.blocks(CHAPTER.read_text(encoding="utf-8")) == ["connection_pooling"]
    assert http_docs.blocks((ROOT / "docs" / "bench.md").read_text("utf-8")) == ["open_loop"]


@pytest.mark.parametrize("page", docs.pages(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_types_an_http_figure_outside_a_block(page: Path):
    """The figures the chapters once typed by hand: a rate, a division of two counts."""
    text = _without_blocks(page.read_text(encoding="utf-8"))
    assert not re.findall(r"\d[\d,.]* ÷ \d|\d+(?:\.\d+)? req/s|\b\d[\d,]*× fewer", text)


def test_the_kept_runs_are_the_documented_commands_on_the_medium_data_set():
    """docs/bench.md regenerates each kept run with the command its block names."""
    guide = (ROOT / "docs" / "bench.md").read_text(encoding="utf-8")
    for name in KEPT:
        data = http_docs.load(name)
        assert data["dataset"]["size"] == "medium"
        assert data["settings_module"] == "config.settings.loadtest"
        documented = http_docs.command(name, data).split(" ", 1)[1]  # without the settings
        assert documented in guide, f"docs/bench.md does not regenerate {name}: {documented}"
    pooling = http_docs.load("connection_pooling")
    (pair,) = pooling["pairs"]
    assert pooling["arguments"] == {
        "names": ["connection_pooling"],
        "clients": 16,
        "requests": 1000,
    }
    assert list(pair["arms"]) == ["persistent", "pgbouncer"] and pair["same_answer"] is True
    ping = http_docs.load("open_loop")
    assert ping["arguments"] == {"names": [], "rate": 200.0, "duration": 10.0}
    assert ping["target"] == "/api/perf/ping/" and ping["sent"] == 2000


def test_the_ratios_are_computed_from_the_json(tmp_path):
    data = copy.deepcopy(http_docs.load("connection_pooling"))
    off, on = data["pairs"][0]["off"], data["pairs"][0]["on"]
    on["p50_ms"], on["connections_opened"] = off["p50_ms"] / 4, 5
    off["connections_opened"] = 1000
    body = http_docs.render("connection_pooling", data)
    assert "p50 off ÷ on: 4.0×." in body
    assert f"Connections opened off ÷ on: {times(200)}." in body
    on["connections_opened"] = 0
    assert "Connections opened: 1,000 off, none on." in http_docs.render("connection_pooling", data)
    # A replaced JSON makes the page stale.
    (tmp_path / "connection_pooling.json").write_text(json.dumps(data), encoding="utf-8")
    chapter = CHAPTER.read_text(encoding="utf-8")
    assert http_docs.update(chapter, tmp_path) != chapter


def test_a_block_shows_every_arm_the_command_and_an_arm_that_could_not_run():
    body = http_docs.render("connection_pooling", http_docs.load("connection_pooling"))
    for label in ("off", "on", "persistent", "pgbouncer"):
        assert f"\n| {label} | 1,000 | " in body
    head = "| | requests | p50 | p90 | p99 | max | answered/s | errors | timeouts | connections opened |"
    assert head in body
    assert (
        "`DJANGO_SETTINGS_MODULE=config.settings.loadtest .venv/bin/python manage.py bench --http "
        "connection_pooling --clients 16 --requests 1000 --json "
        "docs/figures/http/connection_pooling.json`"
    ) in body
    pair = http.HttpPair(
        "connection_pooling", "t", "GET /", 1, http.HttpSide(), http.HttpSide(),
        skipped={"pgbouncer": "pgbouncer is not installed"},
    )  # fmt: skip
    entry = pair.as_dict()
    assert entry["skipped_arms"] == {"pgbouncer": "pgbouncer is not installed"}
    assert "The pgbouncer arm did not run: pgbouncer is not installed." in http_docs.pair(entry)
    loop = http_docs.render("open_loop", http_docs.load("open_loop"))
    assert "| asked | achieved | sent | errors | p50 | p90 | p99 | max |" in loop
    assert "--open-loop --rate 200 --duration 10 --json docs/figures/http/open_loop.json" in loop


def test_a_figure_typed_over_fails_the_check_and_bench_docs_writes_it_back(tmp_path, monkeypatch):
    original = CHAPTER.read_text(encoding="utf-8")
    body = next(http_docs.BLOCK.finditer(original)).group("body")
    figure = re.search(r"\| on \| [0-9,]+ \| [0-9.]+ ms", body).group(0)
    edited = original.replace(figure, figure.replace(" ms", "9 ms"), 1)
    assert edited != original

    page = tmp_path / "connection_pooling.md"
    page.write_text(edited, encoding="utf-8")
    monkeypatch.setattr(docs, "pages", lambda root=None: [page])
    with pytest.raises(CommandError, match="bench_docs"):
        call_command("bench_docs", check=True, stdout=StringIO())
    assert page.read_text(encoding="utf-8") == edited  # --check changes nothing
    call_command("bench_docs", stdout=StringIO())
    assert page.read_text(encoding="utf-8") == original


def test_a_missing_unknown_unclosed_or_mismatched_block_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(docs.DocsError, match="no kept HTTP run .*no_such_thing"):
        http_docs.update("<!-- http:no_such_thing -->\n<!-- /http:no_such_thing -->\n")
    with pytest.raises(docs.DocsError, match="unclosed"):
        http_docs.update("<!-- http:open_loop -->\nfigures\n")
    pooling = http_docs.path_of("connection_pooling").read_text(encoding="utf-8")
    (tmp_path / "open_loop.json").write_text(pooling, encoding="utf-8")
    with pytest.raises(docs.DocsError, match="is not an open-loop run"):
        http_docs.update("<!-- http:open_loop -->\n<!-- /http:open_loop -->\n", tmp_path)
    (tmp_path / "select_related.json").write_text(pooling, encoding="utf-8")
    with pytest.raises(docs.DocsError, match="pairs of select_related alone"):
        http_docs.update("<!-- http:select_related -->\n<!-- /http:select_related -->\n", tmp_path)
    # The command says which page, in one line.
    page = tmp_path / "page.md"
    page.write_text("<!-- http:open_loop -->\n", encoding="utf-8")
    monkeypatch.setattr(docs, "pages", lambda root=None: [page])
    with pytest.raises(CommandError, match=r"page\.md: unclosed or misnested http blocks"):
        call_command("bench_docs", check=True, stdout=StringIO())
