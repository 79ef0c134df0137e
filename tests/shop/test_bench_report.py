"""How the reports read: queries per database alias and the primary's share in every report,
counts under readable labels (the JSON keeps their names), and a summary table built to fit a
1300 px window. Built from plain measured data: no request is sent."""

import json
import re

from shop.bench import html, report
from shop.bench.results import Entry, Run
from shop.bench.samples import Sample, Side


def side(queries: dict[str, int], *, metrics: dict[str, float] | None = None) -> Side:
    return Side([Sample(ms=5.0, queries=queries, bytes=100, status=200, metrics=metrics or {})])


def run_of(*entries: Entry) -> Run:
    return Run(
        started_at="2026-01-01T00:00:00+00:00",
        settings_module="config.settings.loadtest",
        size=None,
        detected_size=None,
        rows={},
        machine={},
        repeat=1,
        warmup=1,
        budget_s=1.0,
        entries=list(entries),
    )


def entry(name: str, off: Side, on: Side) -> Entry:
    return Entry(name=name, title=f"{name}'s request", scenario=0, path="GET /x", off=off, on=on)


ROUTED = entry(
    "read_routing",
    side({"default": 34, "replica": 0}),
    side({"default": 2, "replica": 32}, metrics={"connections_opened": 1}),
)
PRIMARY_ONLY = entry("select_related", side({"default": 102}), side({"default": 2}))


def test_the_html_shows_queries_per_alias_readably():
    page = html.to_html(run_of(ROUTED))
    assert "off default 34 · replica 0, on default 2 · replica 32" in page
    assert "{&#x27;default&#x27;" not in page and "{'default'" not in page


def test_counts_read_with_labels_in_every_report_and_keep_their_json_names():
    run = run_of(ROUTED)
    assert "connections opened off 0 · on 1" in html.to_html(run)
    assert report.metrics_lines(run) == ["read_routing[0]: connections opened off 0 · on 1"]
    assert "connections opened off 0 · on 1" in report.to_markdown(run)
    assert "connections_opened" not in report.to_markdown(run)
    on = json.loads(report.to_json(run))["techniques"][0]["on"]
    assert on["metrics"]["connections_opened"] == {"p50": 1, "max": 1, "total": 1}


def test_console_and_markdown_show_where_queries_ran_when_a_replica_answered():
    run = run_of(PRIMARY_ONLY, ROUTED)
    line = (
        "read_routing[0]: off default 34 · replica 0 (primary 100%), "
        "on default 2 · replica 32 (primary 6%)"
    )
    assert report.alias_lines(run) == [line]
    assert f"- {line}" in report.to_markdown(run)


def test_a_run_that_stayed_on_the_primary_says_so_in_one_line():
    run = run_of(PRIMARY_ONLY)
    assert report.alias_lines(run) == ["every query ran on the primary (default)"]
    assert "- every query ran on the primary (default)" in report.to_markdown(run)


def test_the_summary_table_puts_the_title_under_the_name_and_lets_long_cells_wrap():
    """Twelve columns of nowrap cells were over 1300 px wide (checked with headless chromium):
    the title shares the name's column, and paired figures may wrap, never inside a figure."""
    page = html.to_html(run_of(PRIMARY_ONLY))
    table = re.search(r'<table class="summary">.*?</table>', page, re.S)[0]
    assert "<th>scenario</th>" not in table
    assert '<td class="title"><a href="#select_related-0">select_related</a><br>' in table
    assert "select_related&#x27;s request</span></td>" in table
    assert '<td class="wrap">100\u00a0B\u00a0→\u00a0100\u00a0B</td>' in table
    assert "table.summary td.wrap { white-space: normal; }" in page
