"""The admin opens for every model, refuses the edits that would make stored copies lie, and
invalidates the cached pages its writes change once they commit."""

from datetime import datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db.models.signals import pre_delete
from django.utils import timezone
from rest_framework.test import APIClient

from catalog import payloads
from catalog.models import Product
from shop import cache
from shop.perf_headers import parse_cache_ops
from tests.concurrency import run_concurrently
from tests.factories import ReviewFactory, UserFactory, VariantFactory

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


# --- the admin's writes invalidate the cached pages once they commit --------------------------
# Real commits (transaction=True): outside a transaction, on_commit would run at once.


def _form_data(response) -> dict:
    """The POST data of an admin change form as the page shows it: the model's fields and
    every inline's management form and rows."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue  # an empty field, an unticked box: not sent
            if isinstance(value, datetime):  # a date box and a time box
                local = timezone.localtime(value)
                data[form.add_prefix(f"{name}_0")] = local.date().isoformat()
                data[form.add_prefix(f"{name}_1")] = local.time().isoformat()
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    return data


def _cached_get(path: str):
    """GET an API page with cache_aside on, in a fresh client (a reader, not the admin)."""
    return APIClient().get(path, HTTP_X_PERF_TOGGLES="cache_aside=on")


@pytest.mark.django_db(transaction=True)
def test_a_price_changed_in_the_admin_shows_on_the_next_read(admin_client):
    variant = VariantFactory(price=Decimal("10.00"))
    product = variant.product
    path = f"/api/products/{product.pk}/"
    assert _cached_get(path).json()["variants"][0]["price"] == "10.00"
    assert parse_cache_ops(_cached_get(path)["X-Cache-Ops"])["hits"] == 1  # cached

    url = f"/admin/catalog/product/{product.pk}/change/"
    data = _form_data(admin_client.get(url))
    data["variants-0-price"] = "12.50"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    assert _cached_get(path).json()["variants"][0]["price"] == "12.50"


@pytest.mark.django_db(transaction=True)
def test_products_deleted_from_the_changelist_are_gone_on_the_next_read(admin_client):
    """A reader that misses between the invalidation and the DELETE caches the rows again:
    here one reads (on its own connection, as another process would) at the last moment
    before the rows go. The invalidation runs after the commit, so it removes that entry."""
    products = [VariantFactory().product for _ in range(2)]
    paths = [f"/api/products/{product.pk}/" for product in products]
    for path in paths:
        assert _cached_get(path).status_code == 200

    read_before_the_commit = {}  # pk: (the reader's status, its sets, the page cached after)

    def read_just_before_the_delete(sender, instance, **kwargs):
        key = payloads.product_detail_key(instance.pk)
        cache.delete(key)  # as its TTL running out just then would: the reader misses
        [read] = run_concurrently(lambda _: _cached_get(f"/api/products/{instance.pk}/"), 1)
        sets = parse_cache_ops(read["X-Cache-Ops"])["sets"]
        read_before_the_commit[instance.pk] = (read.status_code, sets, cache.get(key) is not None)

    pre_delete.connect(read_just_before_the_delete, sender=Product, dispatch_uid="test-read")
    try:
        response = admin_client.post(
            "/admin/catalog/product/",
            {
                "action": "delete_selected",
                "_selected_action": [product.pk for product in products],
                "post": "yes",
            },
        )
    finally:
        pre_delete.disconnect(sender=Product, dispatch_uid="test-read")
    assert response.status_code == 302
    assert read_before_the_commit == {product.pk: (200, 1, True) for product in products}
    assert not Product.objects.filter(pk__in=[product.pk for product in products]).exists()
    for path in paths:
        assert _cached_get(path).status_code == 404, path
