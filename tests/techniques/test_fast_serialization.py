"""fast_serialization: the order history, the staff order list, the product list and a
product's reviews, byte for byte the same whether DRF's serializers and json write them or
values() dicts and orjson do, with the same queries. What differs is what is read: every
column of the table off, the shown ones on. And the staff sales report, an object its selector
computed, byte for byte the same written by its serializer or as plain dicts, live or from its
read model."""

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Prefetch
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from catalog.models import Category
from catalog.serializers import NamedRefSerializer
from orders.apis import OrderOutputSerializer, SalesReportApi
from orders.models import Order
from orders.selectors import SalesReport
from shop import toggles
from shop.bench.scenarios import fast_serialization as scenario
from shop.perf_headers import parse_query_counts
from shop.techniques import fast_serialization, materialized_view
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    OrderFactory,
    ProductFactory,
    ReviewFactory,
    UserFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HISTORY = "/api/orders/"
STAFF = "/api/staff/orders/"
PRODUCTS = "/api/products/"
REPORT = "/api/reports/sales/"
# Read only off: columns of orders_order that neither list shows.
UNSHOWN = ('"orders_order"."updated_at"', '"orders_order"."idempotency_key"')


@pytest.fixture
def shop():
    """Two customers' orders, two pairs of them placed at the same instant. Names that need
    escaping or are not ASCII; orders without items; timestamps with and without microseconds;
    unset paid_at and cancelled_at; a cancelled order."""
    names = ["Café crème ☕", 'Quote " and \\ backslash', "日本茶", "line\u2028separator"]
    prices = ("12.50", "3.00", "0.99", "1000.10")
    cafe, quote, tea, line = (
        VariantFactory(product__name=name, price=Decimal(price))
        for name, price in zip(names, prices, strict=True)
    )
    customer, other = UserFactory(username="zoë"), UserFactory(username="ørjan")
    later = START + timedelta(minutes=10, microseconds=123456)
    specs = [  # user, created_at, lines, and what else differs from a paid order
        (customer, START, [], {}),
        (customer, START, [(tea, 3)], {"paid_at": START + timedelta(seconds=30)}),
        (customer, later, [(cafe, 1), (quote, 2)], {"paid_at": later + timedelta(seconds=1)}),
        (
            customer,
            START + timedelta(minutes=20),
            [],
            {
                "status": Order.Status.CANCELLED,
                "cancelled_at": START + timedelta(hours=1, microseconds=5),
            },
        ),
        (customer, START + timedelta(minutes=20), [(line, 1), (cafe, 2)], {}),
        (other, START + timedelta(minutes=30), [(quote, 1)], {}),
        (other, START + timedelta(minutes=30), [(tea, 1), (line, 4)], {}),
    ]
    orders = [
        OrderFactory(user=user, created_at=created, lines=lines, **extra)
        for user, created, lines, extra in specs
    ]
    return {"customer": customer, "other": other, "orders": orders}


@pytest.fixture
def customer_client(shop):
    client = APIClient()
    client.force_authenticate(shop["customer"])
    return client


def _get(client, path, flags, **headers):
    """The response and its query counts, with `flags` set by the header."""
    response = client.get(path, HTTP_X_PERF_TOGGLES=toggles.format_flags(flags), **headers)
    return response, parse_query_counts(response["X-DB-Queries"])


def _both(client, path, others=None, **headers):
    """The same request off and on: both bodies and query counts, checked to be identical."""
    off, off_queries = _get(
        client, path, {**(others or {}), "fast_serialization": False}, **headers
    )
    on, on_queries = _get(client, path, {**(others or {}), "fast_serialization": True}, **headers)
    assert off.status_code == on.status_code
    assert off["Content-Type"] == on["Content-Type"]
    assert off.content == on.content
    assert off_queries == on_queries
    return on


# Every combination of the techniques that change what these lists read.
COMBINATIONS = [
    dict(zip(("prefetch_related", "denormalized_fields"), states, strict=True))
    for states in itertools.product((False, True), repeat=2)
]


@pytest.mark.parametrize("others", COMBINATIONS, ids=toggles.format_flags)
def test_order_history_same_bytes_on_every_page(customer_client, shop, others):
    pages = []
    for number in (1, 2, 3):
        response = _both(customer_client, f"{HISTORY}?page_size=2&page={number}", others)
        assert response.status_code == 200
        pages.append(response.json())
    assert pages[0]["count"] == 5 and pages[0]["previous"] is None
    assert pages[2]["next"] is None and len(pages[2]["results"]) == 1
    orders = [order for page in pages for order in page["results"]]
    assert [order["id"] for order in orders] == [o.pk for o in reversed(shop["orders"][:5])]
    # Not vacuous: items, orders without any, microseconds, unset and set timestamps.
    assert [len(order["items"]) for order in orders] == [2, 0, 2, 1, 0]
    assert orders[0]["items"][0]["product_name"] == "line\u2028separator"
    assert orders[0]["total_amount"] == "1025.10" and orders[0]["item_count"] == 3
    assert orders[0]["paid_at"] is None
    assert orders[1]["created_at"] == "2026-03-10T12:20:00Z"
    assert orders[1]["cancelled_at"] == "2026-03-10T13:00:00.000005Z"
    assert orders[2]["created_at"] == "2026-03-10T12:10:00.123456Z"


def test_order_history_escapes_as_drf_does(customer_client, shop):
    body = _both(customer_client, f"{HISTORY}?page_size=50").content
    assert "Café crème ☕".encode() in body  # UTF-8, not \\u escapes
    assert b'"Quote \\" and \\\\ backslash"' in body
    assert b"line\\u2028separator" in body  # escaped, as DRF escapes it for JavaScript


def test_order_history_past_the_end_and_empty(customer_client, api_client, shop):
    assert _both(customer_client, f"{HISTORY}?page_size=2&page=9").status_code == 404
    api_client.force_authenticate(UserFactory())
    empty = _both(api_client, HISTORY)
    assert empty.content == b'{"count":0,"next":null,"previous":null,"results":[]}'


@pytest.mark.parametrize("page_size", [1, 3, 100])
def test_staff_cursor_pages_same_bytes_forward_and_back(staff_client, shop, page_size):
    """Each side follows its own links: the same links, the same pages, both ways."""
    forward, path = [], f"{STAFF}?page_size={page_size}"
    while path is not None:
        page = _both(staff_client, path, {"cursor_pagination": True})
        forward.append(page.json())
        path = page.json()["next"]
    assert len(forward) == -(-7 // page_size)
    backward, path = [], forward[-1]["previous"]
    while path is not None:
        backward.append(_both(staff_client, path, {"cursor_pagination": True}).json())
        path = backward[-1]["previous"]
    assert [page["results"] for page in reversed(backward)] == [p["results"] for p in forward[:-1]]
    rows = [row for page in forward for row in page["results"]]
    assert [row["id"] for row in rows] == [order.pk for order in reversed(shop["orders"])]
    assert {row["customer"] for row in rows} == {"zoë", "ørjan"}


@pytest.mark.parametrize("number", [1, 2, 3, 9])
def test_staff_page_numbers_same_bytes(staff_client, shop, number):
    response = _both(
        staff_client, f"{STAFF}?page_size=3&page={number}", {"cursor_pagination": False}
    )
    if number == 9:
        assert response.status_code == 404
        return
    assert response.json()["count"] == 7
    assert response.json()["results"]


@pytest.mark.parametrize("cursor_pagination", [False, True])
def test_staff_list_empty(staff_client, cursor_pagination):
    assert (
        _both(staff_client, STAFF, {"cursor_pagination": cursor_pagination}).json()["results"] == []
    )


def test_query_counts_are_the_serializer_s(customer_client, shop):
    """Off and on run the same queries; prefetch_related still decides how the items come."""
    path = f"{HISTORY}?page_size=5"
    for prefetch, expected in ((True, 3), (False, 2 + 5)):  # COUNT(*), the page, the items
        for fast in (False, True):
            flags = {"prefetch_related": prefetch, "fast_serialization": fast}
            assert _get(customer_client, path, flags)[1]["default"] == expected, flags


def _page_sql(client, path):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    (sql,) = [
        q["sql"] for q in captured if 'FROM "orders_order"' in q["sql"] and "LIMIT" in q["sql"]
    ]
    return sql


def _reads_every_column(client, path):
    sql = _page_sql(client, path)
    return all(column in sql for column in UNSHOWN)


@pytest.mark.parametrize("path", [f"{HISTORY}?page_size=2", f"{STAFF}?page_size=2"])
def test_the_toggle_is_honoured_by_header_and_override(customer_client, staff_client, shop, path):
    client = staff_client if path.startswith(STAFF) else customer_client
    with toggles.override(fast_serialization=False):
        assert _reads_every_column(client, path)  # model instances: every column
    with toggles.override(fast_serialization=True):
        assert not any(column in _page_sql(client, path) for column in UNSHOWN)
    for state, off in (("off", True), ("on", False)):
        client.credentials(HTTP_X_PERF_TOGGLES=f"fast_serialization={state}")
        assert _reads_every_column(client, path) is off
        client.credentials()


def test_the_environment_sets_the_default(customer_client, shop, monkeypatch):
    monkeypatch.setenv("PERF_TOGGLES", "fast_serialization=off")
    assert _reads_every_column(customer_client, f"{HISTORY}?page_size=2")


def test_pretty_printing_and_the_browsable_api_keep_drf_s_renderers(customer_client, shop):
    pretty = _both(customer_client, HISTORY, HTTP_ACCEPT="application/json; indent=2")
    assert pretty.content.startswith(b'{\n  "count": 5')
    with toggles.override(fast_serialization=True):
        html = customer_client.get(HISTORY, HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert "日本茶" in html.content.decode()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kathmandu", "America/St_Johns"])
def test_values_are_represented_as_drf_represents_them(zone):
    """Each compiled field against DRF's own field, on values the database may not hold."""

    class Sample(serializers.Serializer):
        number = serializers.IntegerField()
        text = serializers.CharField()
        amount = serializers.DecimalField(max_digits=12, decimal_places=2)
        when = serializers.DateTimeField()
        day = serializers.DateField()

    values = {
        "number": [0, -7, 2**40],
        "text": ["", "ünïcode", "12"],
        "amount": [Decimal("1.5"), Decimal("2.345"), Decimal("-0.005"), 7, Decimal("1E+3")],
        "when": [START, START.replace(microsecond=1), START + timedelta(days=200)],
        "day": [date(2026, 3, 10), date(1, 1, 1), "2026-03-10", ""],
    }
    shape = fast_serialization._shape(Sample, Order)
    with timezone.override(zone):
        tz = timezone.get_current_timezone()
        for key, column, convert in shape.fields:
            field = Sample().fields[key]
            assert column == key
            for value in values[key]:
                assert convert(value, tz) == field.to_representation(value), (key, value)


def test_the_renderer_writes_drf_s_bytes():
    data = {"a": ["é", "\u2028\u2029", '"\\/', "\x00\x1f\x7f", None, True, -1], "b": {}}
    assert fast_serialization.ORJSONRenderer().render(data) == JSONRenderer().render(data)
    assert fast_serialization.ORJSONRenderer().render(None) == b""


def test_fields_without_a_compiled_twin_are_refused():
    class Shown(OrderOutputSerializer):
        label = serializers.SerializerMethodField()

        def get_label(self, order):
            return str(order)

    with pytest.raises(ValueError, match="label: no fast representation"):
        fast_serialization._shape(Shown, Order)


def test_a_prefetch_object_is_refused():
    orders = Order.objects.prefetch_related(Prefetch("items"))
    with pytest.raises(ValueError, match="Prefetch"):
        fast_serialization._prefetched(orders)


def test_the_benchmark_calls_give_the_same_bytes(shop, catalog):
    UserFactory(username="staff", is_staff=True)
    materialized_view.refresh(concurrently=False)  # the report's read model, as the seed does
    for entry in [scenario.SCENARIO, *scenario.EXTRA_SCENARIOS]:
        call = entry.call()
        client = APIClient()
        if call.user is not None:
            client.force_authenticate(get_user_model().objects.get(username=call.user))
        body = _both(client, call.path, entry.hold).json()
        assert body["by_day"] if call.path.startswith(REPORT) else body["results"]
    assert scenario.SCENARIO.call().user == "zoë"  # the customer with the most orders


def test_the_benchmark_pairs_send_the_same_columns_on_both_sides(shop, catalog, monkeypatch):
    """What the pair isolates is the serialization: with the held toggles, the serializer side
    reads the columns values() reads. Unheld, field_selection off (say, in PERF_TOGGLES) would
    have the serializer side read every description, a gain that is not this technique's."""
    monkeypatch.setenv("PERF_TOGGLES", "field_selection=off")
    UserFactory(username="staff", is_staff=True)
    for entry in [scenario.SCENARIO, *scenario.EXTRA_SCENARIOS]:
        call = entry.call()
        if call.path.startswith(REPORT):
            continue  # no page: the selector reads the same views on both sides
        client = APIClient()
        if call.user is not None:
            client.force_authenticate(get_user_model().objects.get(username=call.user))
        pages = {}
        for fast in (False, True):
            flags = {**entry.hold, "fast_serialization": fast}
            with toggles.override(**flags), CaptureQueriesContext(connection) as captured:
                assert client.get(call.path).status_code == 200
            pages[fast] = [q["sql"] for q in captured if "LIMIT" in q["sql"]][0]
        assert ('"description"' in pages[False]) is ('"description"' in pages[True]), entry.title


# --- the product list and a product's reviews -------------------------------------------------


@pytest.fixture
def catalog():
    """Products in two categories (one inside the other) and two brands, some reviewed (a
    rating with decimals), some not (no rating at all), names that need escaping, two created
    at the same instant, one inactive."""
    parent = CategoryFactory(name="Kitchen")
    child = CategoryFactory(name='Kettles & "teapots"', parent=parent)
    brands = [BrandFactory(name="Ångström"), BrandFactory(name="Brand\u2028B")]
    names = ["Electric kettle", "Café kettle ☕", "Teapot", "Kettlebell 日本", "Old kettle"]
    products = [
        ProductFactory(
            name=name,
            category=(parent, child)[i % 2],
            brand=brands[i % 2],
            created_at=START + timedelta(minutes=i // 2, microseconds=7 * (i % 2)),
            is_active=name != "Old kettle",
        )
        for i, name in enumerate(names)
    ]
    for product, ratings in ((products[0], (5, 4, 4)), (products[2], (1,))):
        for rating in ratings:
            ReviewFactory(product=product, rating=rating, title='Said "so"', body="ünï\u2029x")
    return {"products": products, "parent": parent, "child": child}


PRODUCT_TOGGLES = [
    dict(zip(("select_related", "denormalized_fields", "field_selection"), states, strict=True))
    for states in itertools.product((False, True), repeat=3)
]


@pytest.mark.parametrize("others", PRODUCT_TOGGLES, ids=toggles.format_flags)
def test_product_list_same_bytes(api_client, catalog, others):
    pages = [_both(api_client, f"{PRODUCTS}?page_size=3&page={n}", others).json() for n in (1, 2)]
    rows = pages[0]["results"] + pages[1]["results"]
    assert pages[0]["count"] == 4 and pages[1]["next"] is None
    assert [row["name"] for row in rows] == [
        "Kettlebell 日本",
        "Teapot",
        "Café kettle ☕",
        "Electric kettle",
    ]
    assert rows[0]["category"] == {"id": catalog["child"].pk, "name": 'Kettles & "teapots"'}
    assert rows[0]["brand"]["name"] == "Brand\u2028B" and rows[0]["review_count"] == 0
    assert rows[1]["category"] == {"id": catalog["parent"].pk, "name": "Kitchen"}
    assert rows[1]["rating_avg"] == "1.00" and rows[1]["brand"]["name"] == "Ångström"
    assert rows[3]["rating_avg"] == "4.33" and rows[3]["review_count"] == 3
    assert rows[2]["created_at"] == "2026-03-10T12:00:00.000007Z"


@pytest.mark.parametrize(
    "query", ["search=kettle", "category={parent}", "search=ket&category={child}"]
)
def test_product_filters_same_bytes(api_client, catalog, query):
    path = f"{PRODUCTS}?" + query.format(parent=catalog["parent"].pk, child=catalog["child"].pk)
    assert _both(api_client, path).json()["results"]


def test_product_list_query_counts_are_the_serializer_s(api_client, catalog):
    """select_related still decides whether category and brand come in the page's query."""
    for select, expected in ((True, 2), (False, 2 + 2 * 4)):  # COUNT(*), the page, 2 a row
        for fast in (False, True):
            flags = {"select_related": select, "fast_serialization": fast}
            assert _get(api_client, PRODUCTS, flags)[1]["default"] == expected, flags


@pytest.mark.parametrize("denormalized_fields", [False, True])
def test_reviews_same_bytes(api_client, catalog, denormalized_fields):
    product = catalog["products"][0]
    path = f"{PRODUCTS}{product.pk}/reviews/?page_size=2"
    first = _both(api_client, path, {"denormalized_fields": denormalized_fields}).json()
    assert first["count"] == 3 and len(first["results"]) == 2
    assert first["results"][0]["title"] == 'Said "so"'
    assert _both(api_client, f"{path}&page=2", {"denormalized_fields": denormalized_fields})


class _CategoryOut(serializers.Serializer):
    """A category with its parent, which may be unset: {"id", "name"} as the product list
    shows a category."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    parent = NamedRefSerializer(allow_null=True)


@pytest.mark.parametrize("joined", [False, True])
def test_an_unset_foreign_key_is_null(catalog, joined):
    """A nested object over a nullable foreign key, JOINed or read per row: None where unset,
    as DRF writes it, and the same queries as the serializer's."""
    categories = Category.objects.order_by("id")
    if joined:
        categories = categories.select_related("parent")
    expected = _CategoryOut(categories, many=True).data
    shape = fast_serialization._shape(_CategoryOut, Category)
    rows = list(categories.values(*shape.columns_for(fast_serialization._joined(categories))))
    with CaptureQueriesContext(connection) as queries:
        got = shape.represent(
            rows,
            prefetched=set(),
            joined=fast_serialization._joined(categories),
            tz=timezone.get_current_timezone(),
        )
    assert got == [dict(row) for row in expected]
    assert got[0]["parent"] is None and got[1]["parent"]["name"] == "Kitchen"
    assert len(queries) == (0 if joined else 1)  # one per set parent, none when JOINed


def test_a_nested_object_must_be_a_forward_foreign_key():
    class Shown(serializers.Serializer):
        id = serializers.IntegerField()
        user = NamedRefSerializer(source="items")

    with pytest.raises(ValueError, match="only a forward foreign key"):
        fast_serialization._shape(Shown, Order)


def _count_sql(client, path, flags):
    with toggles.override(**flags), CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    (sql,) = [q["sql"] for q in captured if "COUNT(*)" in q["sql"]]
    return sql


@pytest.mark.parametrize(
    ("path", "others"),
    [(PRODUCTS, {"select_related": True}), (STAFF, {"cursor_pagination": False})],
)
def test_the_page_count_is_the_serializer_s_statement(staff_client, shop, catalog, path, others):
    """values() JOINs the tables it reads names from; the COUNT(*) must not carry them."""
    off, on = (
        _count_sql(staff_client, f"{path}?page_size=2", {**others, "fast_serialization": fast})
        for fast in (False, True)
    )
    assert on == off
    assert "JOIN" not in on


# --- the sales report: an object its selector computed, not a queryset ------------------------

# The shop fixture's revenue orders are on 2026-03-10; the range starts a day before them.
SALES = f"{REPORT}?date_from=2026-03-09&date_to=2026-03-12"
# The live aggregate (db_aggregation's GROUP BY) or the read model, on the primary either way.
REPORT_SOURCES = [
    {"materialized_view": False, "db_aggregation": True, "read_replica": False},
    {"materialized_view": True, "read_replica": False},
]


@pytest.mark.parametrize("source", REPORT_SOURCES, ids=toggles.format_flags)
def test_sales_report_same_bytes(staff_client, shop, source):
    """Live or from the refreshed views, the report's serializer and its plain twin write the
    same bytes with the same queries: decimals to their places, dates as ISO days, product
    names escaped as DRF escapes them."""
    materialized_view.refresh(concurrently=False)
    response = _both(staff_client, SALES, source)
    assert response.status_code == 200
    assert (materialized_view.AS_OF_HEADER in response) is source["materialized_view"]
    report = response.json()
    assert report["date_from"] == "2026-03-09" and report["date_to"] == "2026-03-12"
    # Six paid orders on 2026-03-10, one of them without items (the cancelled one is no revenue).
    assert report["by_day"] == [
        {"day": "2026-03-10", "orders": 6, "units": 15, "revenue": "5050.96"}
    ]
    assert report["orders"] == 6 and report["revenue"] == "5050.96"
    assert report["average_order_value"] == "841.83"  # 841.826..., rounded half up
    names = [row["product_name"] for row in report["top_products"]]
    assert names == ["line\u2028separator", "Café crème ☕", 'Quote " and \\ backslash', "日本茶"]
    assert b"line\\u2028separator" in response.content


@pytest.mark.parametrize("source", REPORT_SOURCES, ids=toggles.format_flags)
def test_sales_report_without_sales_same_bytes(staff_client, source):
    materialized_view.refresh(concurrently=False)
    response = _both(staff_client, SALES, source)
    assert response.content == (
        b'{"date_from":"2026-03-09","date_to":"2026-03-12","orders":0,"units":0,'
        b'"revenue":"0.00","average_order_value":"0.00","by_day":[],"top_products":[]}'
    )


def test_a_report_object_is_represented_as_drf_represents_it():
    """The compiled report against its serializer, on values no query returns: an integer
    revenue, an exponent, a half cent to round, a day's units unset (an order without items)."""
    report = SalesReport(
        date_from=date(2026, 3, 9),
        date_to=date(2026, 3, 12),
        orders=3,
        units=7,
        revenue=Decimal("1E+3"),
        by_day=[
            {"day": date(2026, 3, 9), "orders": 1, "units": None, "revenue": 0},
            {"day": date(2026, 3, 10), "orders": 2, "units": 7, "revenue": Decimal("999.995")},
        ],
        top_products=[
            {"product_id": 7, "product_name": "", "units": 7, "revenue": Decimal("0.005")}
        ],
    )
    serializer = SalesReportApi.OutputSerializer
    plain = fast_serialization._plain(serializer)
    assert plain.represent(report, timezone.get_current_timezone()) == serializer(report).data
    assert [key for key, _, _ in plain.fields] == list(serializer().fields)


def test_sales_report_pretty_printing_keeps_drf_s_renderer(staff_client):
    pretty = _both(staff_client, SALES, REPORT_SOURCES[0], HTTP_ACCEPT="application/json; indent=2")
    assert pretty.content.startswith(b'{\n  "date_from": "2026-03-09"')


def test_a_dotted_source_has_no_plain_twin():
    class Shown(serializers.Serializer):
        customer = serializers.CharField(source="user.username")

    with pytest.raises(ValueError, match="customer: a dotted source"):
        fast_serialization._plain(Shown)
