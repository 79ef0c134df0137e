"""The OpenAPI schema and its docs page are served."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_lists_every_endpoint(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert {
        "/api/products/",
        "/api/products/{product_id}/",
        "/api/products/{product_id}/reviews/",
        "/api/orders/",
        "/api/orders/{order_id}/",
        "/api/orders/{order_id}/cancel/",
        "/api/reports/sales/",
        "/api/auth/token/",
    } <= paths


def test_docs_page_is_served(api_client):
    response = api_client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_schema_generates_without_warnings_and_validates(tmp_path):
    # Nested Input/OutputSerializer classes must not collide as components, and every list
    # must be described as paginated: a wrong schema misleads every client generated from it.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )
    schema = (tmp_path / "schema.yml").read_text()
    for component in (
        "PaginatedProductSummaryList",
        "PaginatedOrderOutputList",
        "OrderDetailOutput",
    ):
        assert f"    {component}:\n" in schema
