import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from shop import payment_gateway_stub
from tests.factories import (
    AddressFactory,
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    UserFactory,
)


@pytest.fixture(scope="session", autouse=True)
def payment_gateway():
    """Every order a test places is charged at a real stub gateway on loopback (a thread of
    this process), answering at once and never failing. Tests of slow or failing gateways
    start stubs of their own."""
    stub = payment_gateway_stub.GatewayStub()
    with payment_gateway_stub.running(stub) as url, override_settings(PAYMENT_GATEWAY_URL=url):
        yield stub


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def customer(db):
    user = UserFactory()
    AddressFactory(user=user)
    return user


@pytest.fixture
def customer_client(customer) -> APIClient:
    client = APIClient()
    client.force_authenticate(customer)
    return client


@pytest.fixture
def staff_client(db) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


@pytest.fixture
def products(db):
    """Twelve products over three categories and four brands: each category and brand is
    shared by several rows, so a query per row shows against one per table."""
    categories = CategoryFactory.create_batch(3)
    brands = BrandFactory.create_batch(4)
    return [ProductFactory(category=categories[i % 3], brand=brands[i % 4]) for i in range(12)]
