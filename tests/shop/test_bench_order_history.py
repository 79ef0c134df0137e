"""order_history: an ordinary scenario module, composite (every toggle off against every one on,
with every module's hooks), with the SQL floor as an extra arm, a cold arm and targets."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.models import Order
from shop import toggles
from shop.bench import discovery, floor
from shop.bench.measure import BenchError
from shop.bench.scenario import Call, Scenario
from shop.bench.scenarios import db_indexes as db_indexes_scenario
from shop.bench.scenarios.order_history import BASE_URL
from shop.techniques import db_indexes
from tests.factories import OrderFactory, ProductFactory, UserFactory, VariantFactory
from tests.shop.conftest import FAKE, run_bench

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(customer):
    """A customer with five orders (and a neighbour with one): prices with trailing zeros,
    timestamps with and without microseconds, a null paid_at, a name that needs escaping."""
    odd = VariantFactory(
        product=ProductFactory(name='Crème "brûlée" set\\ \u2603'), price=Decimal("12.50")
    )
    plain = VariantFactory(price=Decimal("3.00"))
    when = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
    OrderFactory(user=customer, created_at=when, lines=[(odd, 2), (plain, 1)], paid_at=when)
    OrderFactory(user=customer, created_at=when.replace(microsecond=123456), lines=[(plain, 5)])
    OrderFactory(
        user=customer,
        created_at=when.replace(day=11),
        lines=[(odd, 1)],
        status=Order.Status.PLACED,
    )
    OrderFactory(
        user=customer, created_at=when.replace(day=9), lines=[(plain, 1), (odd, 3)], paid_at=when
    )
    OrderFactory(user=customer, created_at=when, lines=[(plain, 2)], status=Order.Status.CANCELLED)
    OrderFactory(user=UserFactory(), created_at=when, lines=[(plain, 1)])
    return customer


@pytest.mark.parametrize("page_size", [50, 2])
def test_the_floor_is_the_api_page_byte_for_byte(api_client, history, page_size):
    api_client.force_authenticate(history)
    response = api_client.get(f"/api/orders/?page_size={page_size}")
    built = floor.body(
        user_id=history.pk, page_size=page_size, base_url="http://testserver/api/orders/"
    )
    assert json.loads(built) == response.json()
    assert built == response.content
    assert json.loads(built)["results"][0]["items"]  # not vacuous: orders with their items


def test_the_floor_of_a_customer_without_orders(api_client, customer):
    api_client.force_authenticate(customer)
    built = floor.body(user_id=customer.pk, page_size=50, base_url="http://testserver/api/orders/")
    assert built == api_client.get("/api/orders/?page_size=50").content


# A composite scenario's cold runs close the database connection, which a test's own
# transaction would not survive: these tests commit, and the tables are emptied after.
@pytest.mark.django_db(transaction=True)
def test_order_history_compares_all_off_all_on_and_the_floor(
    history, own_cache_keys, tmp_path, monkeypatch
):
    entered = []  # db_indexes' before(): every module's hooks run for a composite pair
    real_before = db_indexes_scenario.before
    monkeypatch.setattr(
        db_indexes_scenario, "before", lambda on: (entered.append(on), real_before(on))[1]
    )
    data, out = run_bench(tmp_path, "order_history", "--repeat", "2")
    (page,) = data["techniques"]  # an ordinary entry, the only one asked for
    assert page["name"] == "order_history" and page["every_toggle"] is True
    assert page["user"] == history.username and page["hold"] == {}
    assert page["same_answer"] is True and page["answer_stable"] is True
    # All off sends one items query per order (prefetch_related off among the rest); all on 3
    # (the count, the page and its items: local_cache answers the token lookup).
    assert page["off"]["queries"] > page["on"]["queries"] == 3
    floor_arm = page["arms"]["floor"]
    assert floor_arm["same_answer"] is True and floor_arm["identical_bytes"] is True
    assert floor_arm["side"]["runs"] == page["on"]["runs"] == 2
    # Counted by the QueryCounter that counts the endpoint's, not written down.
    assert floor_arm["side"]["queries_by_alias"] == {"default": 1, "replica": 0}
    # Database time is the time inside execute(), not the whole run: strictly less, and the
    # one statement's time the counter recorded (the statement is all the floor runs).
    assert 0 < floor_arm["side"]["db_p50_ms"] < floor_arm["side"]["p50_ms"]
    (statement,) = floor_arm["side"]["db_by_statement"]
    assert statement["sql"].startswith("\nWITH total AS") and statement["executions"] == 1
    assert floor_arm["side"]["db_p50_ms"] == statement["db_p50_ms"]
    assert floor_arm["source"].startswith("WITH total AS")
    # The customer's token, answered by local_cache (on with every other technique): nothing else.
    assert page["baseline"]["queries"] == 0
    assert floor_arm["baseline_multiple_p50"] == pytest.approx(
        page["baseline"]["p50_ms"] / floor_arm["side"]["p50_ms"], rel=0.01
    )
    assert floor_arm["on_multiple_p50"] == pytest.approx(
        page["on"]["p50_ms"] / floor_arm["side"]["p50_ms"], rel=0.01
    )
    targets = page["targets"]
    assert set(targets) == {"on.queries", "speedup_p50", "arms.floor.on_multiple_p50"}
    assert targets["on.queries"] == {
        "label": "all on, queries", "target": "<= 4", "value": 3, "met": True
    }  # fmt: skip
    assert targets["arms.floor.on_multiple_p50"]["value"] == floor_arm["on_multiple_p50"]
    # The page a customer opens first is timed cold too, both sides.
    assert page["cold"]["off"]["runs"] == page["cold"]["on"]["runs"] == 2
    assert page["cold"]["on"]["queries"] == 4  # cold: the token lookup too
    assert "SQL floor" in out and "cold on" in out and "targets: all on, queries <= 4: 3 ✓" in out
    assert "## Cold runs, extra arms and targets" in (tmp_path / "bench.md").read_text()
    assert entered[0] is False and True in entered  # all off dropped the indexes
    assert db_indexes.in_effect()  # and the bench put them back
    assert toggles.active_overrides() == {}


def test_the_floor_s_queries_and_database_time_are_measured(history):
    sample = floor.sample(user_id=history.pk, page_size=50, base_url=BASE_URL)
    assert sample.queries == {"default": 1, "replica": 0}
    # The time inside execute() that the QueryCounter recorded, so strictly less than the run
    # (which also fetches the row and encodes it), and exactly the one statement's time.
    assert 0 < sample.db_ms < sample.ms
    ((executions, statement_ms),) = sample.db_statements.values()
    assert executions == 1
    assert sample.db_ms == statement_ms


# --- a composite scenario is found like the others, and checked ------------------------------


def test_composite_scenarios_run_after_the_techniques():
    assert [suite.name for suite in discovery.load([])[0]][-1] == "order_history"
    named = discovery.load(["order_history", "select_related"])[0]
    assert [suite.name for suite in named] == ["select_related", "order_history"]
    (suite,) = discovery.load(["order_history"])[0]
    assert suite.composite and not discovery.suite("select_related").composite


def test_order_history_is_no_toggle_and_every_toggle_is_flipped():
    scenario = discovery.suite("order_history").scenarios[0]
    with pytest.raises(toggles.UnknownToggle):
        toggles.get("order_history")
    everything = {toggle.name for toggle in toggles.registered()}
    assert scenario.flags(False) == dict.fromkeys(everything, False)
    assert scenario.flags(True) == dict.fromkeys(everything, True)


def _composite(**fields) -> Scenario:
    return Scenario(
        name=FAKE, title="t", call=lambda: Call("GET", "/"), every_toggle=True, **fields
    )


def test_a_composite_scenario_named_as_a_toggle_is_refused(fake_module):
    fake_module.SCENARIO = _composite()
    with pytest.raises(BenchError, match="is a technique's toggle"):
        discovery.suite(FAKE)


def test_a_composite_scenario_that_holds_a_toggle_or_mixes_is_refused(fake_module, monkeypatch):
    monkeypatch.delitem(toggles._registry, FAKE)  # a request's name, not a toggle's
    fake_module.SCENARIO = _composite(hold={"select_related": True})
    with pytest.raises(BenchError, match="holds select_related"):
        discovery.suite(FAKE)
    fake_module.SCENARIO = _composite()
    fake_module.EXTRA_SCENARIOS = [Scenario(name=FAKE, title="u", call=lambda: Call("GET", "/"))]
    with pytest.raises(BenchError, match="mixes composite scenarios"):
        discovery.suite(FAKE)
    del fake_module.EXTRA_SCENARIOS
    assert discovery.suite(FAKE).composite


def test_the_http_modes_refuse_a_composite_scenario_in_one_line():
    """Over HTTP the other modules' before() hooks do not run, so all off would keep
    db_indexes' indexes: refused before any server starts."""
    with pytest.raises(CommandError, match="order_history: a composite scenario .* in process"):
        call_command("bench", "--http", "order_history", stdout=StringIO(), stderr=StringIO())
