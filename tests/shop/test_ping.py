"""GET /api/perf/ping/: the cheapest request the API serves, the bench's baseline."""

import pytest
from rest_framework.authtoken.models import Token

from shop.perf_headers import parse_query_counts
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_anonymous_ping_runs_no_query(api_client):
    response = api_client.get("/api/perf/ping/")
    assert response.status_code == 200
    assert response.json() == {"authenticated": False}
    assert sum(parse_query_counts(response["X-DB-Queries"]).values()) == 0
    assert "app;dur=" in response["Server-Timing"]


def test_ping_with_a_token_pays_only_for_the_token(api_client):
    token = Token.objects.create(user=UserFactory())
    response = api_client.get("/api/perf/ping/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.json() == {"authenticated": True}
    assert parse_query_counts(response["X-DB-Queries"]) == {"default": 1, "replica": 0}


def test_ping_with_a_wrong_token_is_refused(api_client):
    response = api_client.get("/api/perf/ping/", HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
