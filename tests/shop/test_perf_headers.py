"""Every response tells its cost and its toggles; the header works only where allowed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shop.perf_headers import parse_query_counts
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_responses_carry_query_counts_per_alias_and_server_timing(api_client):
    ProductFactory.create_batch(3)
    response = api_client.get("/api/products/")
    counts = parse_query_counts(response["X-DB-Queries"])
    assert set(counts) == {"default", "replica"}
    assert counts["default"] == 2  # COUNT(*) for the page, then the rows with their JOINs
    assert response["Server-Timing"].startswith("db;dur=")
    assert 'desc="2 queries"' in response["Server-Timing"]
    assert ", app;dur=" in response["Server-Timing"]


def test_the_header_flips_a_technique_and_is_echoed(api_client):
    ProductFactory.create_batch(3)
    on = api_client.get("/api/products/")
    off = api_client.get("/api/products/", HTTP_X_PERF_TOGGLES="select_related=off")
    assert off["X-Perf-Toggles"] == "select_related=off"
    assert on["X-Perf-Toggles"] == ""
    assert parse_query_counts(off["X-DB-Queries"])["default"] == 2 + 2 * 3
    assert off.json() == on.json()


@pytest.mark.parametrize("header", ["nope=off", "select_related=sideways"])
def test_a_bad_header_is_a_400_with_a_message(api_client, header):
    response = api_client.get("/api/products/", HTTP_X_PERF_TOGGLES=header)
    assert response.status_code == 400
    assert response.json()["X-Perf-Toggles"]


def test_the_header_is_ignored_where_overrides_are_not_allowed(api_client, settings, monkeypatch):
    ProductFactory.create_batch(3)
    settings.PERF_ALLOW_OVERRIDE = False
    # Not echoed either: it would tell any client how the server is configured.
    monkeypatch.setenv("PERF_TOGGLES", "prefetch_related=off")
    response = api_client.get("/api/products/", HTTP_X_PERF_TOGGLES="select_related=off")
    assert parse_query_counts(response["X-DB-Queries"])["default"] == 2
    assert "X-Perf-Toggles" not in response
    # Even a malformed header is ignored rather than refused: it means nothing there.
    assert api_client.get("/api/products/", HTTP_X_PERF_TOGGLES="nope=off").status_code == 200


def test_production_settings_never_allow_the_header():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import config.settings.production as s; print(s.PERF_ALLOW_OVERRIDE)",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SECRET_KEY": "x", "PERF_ALLOW_OVERRIDE": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr


def test_cost_headers_only_where_settings_allow_them(api_client, settings):
    ProductFactory.create_batch(3)
    assert "X-DB-Queries" in api_client.get("/api/products/")
    settings.PERF_COST_HEADERS = False
    response = api_client.get("/api/products/")
    assert response.status_code == 200
    assert "X-DB-Queries" not in response
    assert "Server-Timing" not in response


def test_production_settings_never_send_cost_headers():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import config.settings.production as s; print(s.PERF_COST_HEADERS)",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SECRET_KEY": "x", "PERF_COST_HEADERS": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr


def test_the_toggle_list_shows_effective_state(api_client, monkeypatch):
    body = api_client.get("/api/perf/toggles/").json()
    row = next(t for t in body if t["name"] == "select_related")
    assert row == {
        "name": "select_related",
        "group": "data_access",
        "description": row["description"],
        "default": True,
        "enabled": True,
        "source": "default",
    }
    off = api_client.get("/api/perf/toggles/", HTTP_X_PERF_TOGGLES="select_related=off").json()
    assert next(t for t in off if t["name"] == "select_related")["source"] == "override"
    monkeypatch.setenv("PERF_TOGGLES", "select_related=off")
    env = api_client.get("/api/perf/toggles/").json()
    assert next(t for t in env if t["name"] == "select_related")["enabled"] is False


def test_server_timing_keeps_metrics_set_further_in(rf):
    from django.http import HttpResponse

    from shop.perf_headers import QueryCostMiddleware

    def inner(request):
        response = HttpResponse("ok")
        response["Server-Timing"] = "toolbar;dur=1.5"
        return response

    response = QueryCostMiddleware(inner)(rf.get("/"))
    assert response["Server-Timing"].startswith("db;dur=")
    assert response["Server-Timing"].endswith(", toolbar;dur=1.5")
