"""Concurrent orders against real PostgreSQL: stock is never oversold, and a raced
Idempotency-Key still yields exactly one order."""

import pytest

from catalog.models import Variant
from orders import services
from orders.models import Order
from shop.errors import Conflict
from tests.concurrency import THREADS, run_concurrently
from tests.factories import UserFactory, VariantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_orders_never_oversell():
    variant = VariantFactory(stock=5)
    users = [UserFactory() for _ in range(THREADS)]

    def place(i):
        try:
            services.order_place(
                user=users[i], lines=[services.OrderLine(sku=variant.sku, quantity=1)]
            )
            return "placed"
        except Conflict:
            return "short"

    outcomes = run_concurrently(place, THREADS)
    assert sorted(outcomes) == ["placed"] * 5 + ["short"] * (THREADS - 5)
    assert Variant.objects.get(pk=variant.pk).stock == 0
    assert Order.objects.count() == 5


def test_crossing_orders_do_not_deadlock():
    a, b = VariantFactory(stock=100), VariantFactory(stock=100)
    user = UserFactory()

    def place(i):
        first, second = (a, b) if i % 2 else (b, a)
        lines = [
            services.OrderLine(sku=first.sku, quantity=1),
            services.OrderLine(sku=second.sku, quantity=1),
        ]
        return services.order_place(user=user, lines=lines).created

    assert run_concurrently(place, THREADS) == [True] * THREADS
    assert Variant.objects.get(pk=a.pk).stock == 100 - THREADS


def test_a_raced_idempotency_key_gives_one_order():
    variant = VariantFactory(stock=100)
    user = UserFactory()
    lines = [services.OrderLine(sku=variant.sku, quantity=2)]

    results = run_concurrently(
        lambda i: services.order_place(user=user, lines=lines, idempotency_key="same-click"),
        THREADS,
    )
    assert len({r.order.pk for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Order.objects.count() == 1
    assert Variant.objects.get(pk=variant.pk).stock == 98


def test_raced_retries_for_the_last_units_replay_instead_of_conflicting():
    # The key must be claimed before stock is taken: otherwise the retries find no stock
    # left (the first attempt took it) and answer "nothing was ordered" for a placed order.
    variant = VariantFactory(stock=2)
    user = UserFactory()
    lines = [services.OrderLine(sku=variant.sku, quantity=2)]

    def place(i):
        try:
            return services.order_place(user=user, lines=lines, idempotency_key="last-two")
        except Conflict as exc:
            return exc

    results = run_concurrently(place, THREADS)
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r.created for r in results) == 1
    assert len({r.order.pk for r in results}) == 1
    assert Variant.objects.get(pk=variant.pk).stock == 0
