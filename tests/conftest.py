import pytest
from rest_framework.test import APIClient

from tests.factories import AddressFactory, UserFactory


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
