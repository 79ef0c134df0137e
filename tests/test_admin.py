"""The admin opens for every model, and refuses the edits that would make stored copies lie."""

import pytest
from django.contrib import admin

from tests.factories import ReviewFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_every_changelist_opens(admin_client):
    ReviewFactory()
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert admin_client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    "model", ["catalog/review", "orders/order", "orders/orderevent", "shop/outboxmessage"]
)
def test_records_kept_by_services_cannot_be_added_by_hand(admin_client, model):
    assert admin_client.get(f"/admin/{model}/add/").status_code == 403
