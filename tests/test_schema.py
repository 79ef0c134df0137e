"""The OpenAPI schema and its docs page are served."""

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

from catalog import imports, services
from shop.pagination import KeysetPagination, PagePagination

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


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_their_scripts_from_the_project_not_a_cdn(api_client, page):
    html = api_client.get(page).content.decode()
    scripts = re.findall(r"<script[^>]+src=\"([^\"]+)\"", html)
    styles = re.findall(r"<link[^>]+href=\"([^\"]+\.css)\"", html)
    assert scripts, html
    for url in scripts + styles:
        assert url.startswith(settings.STATIC_URL) or url.startswith("/" + settings.STATIC_URL), url
        # Shipped in an installed package: found without any network.
        assert finders.find(url.split(settings.STATIC_URL, 1)[1]), url


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


def test_schema_states_the_limits_the_api_enforces(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    items = components["OrderListInput"]["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, settings.ORDER_MAX_LINES)
    quantity = components["OrderListInputLine"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, settings.ORDER_MAX_QUANTITY_PER_LINE)
    products = components["ProductImportInput"]["properties"]["products"]
    assert (products["minItems"], products["maxItems"]) == (1, services.PRODUCT_IMPORT_MAX)
    variants = components["ProductImportInputProduct"]["properties"]["variants"]
    assert variants["maxItems"] == imports.IMPORT_VARIANTS_MAX
    key = next(
        p
        for p in schema["paths"]["/api/orders/"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert key["schema"]["maxLength"] == 100
    assert key["schema"]["pattern"] == "^[A-Za-z0-9_.:\\-]{1,100}$"
    rating = components["ProductReviewsInput"]["properties"]["rating"]
    assert (rating["minimum"], rating["maximum"]) == (1, 5)
    for path, paginator in (
        ("/api/products/", PagePagination),
        ("/api/orders/", PagePagination),
        ("/api/staff/orders/", KeysetPagination),
    ):
        parameters = {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}
        page_size = parameters["page_size"]
        assert (page_size["minimum"], page_size["maximum"]) == (1, paginator.max_page_size)


@pytest.mark.django_db
def test_the_stated_limits_check_nothing_themselves(customer_client):
    # The service checks them, with its own messages, every bad line at once.
    response = customer_client.post(
        "/api/orders/", {"items": [{"sku": "A", "quantity": 0}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"items": {"0": {"quantity": ["Must be between 1 and 1000."]}}}
