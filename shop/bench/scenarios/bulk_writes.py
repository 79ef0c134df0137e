"""Two writes that touch many rows: placing an order with 50 lines, and importing 10k products.

`SCENARIO` is the order; `EXTRA_SCENARIOS` holds the import, which measures the same toggle on
a write a thousand times larger. Both write, so every run is rolled back by the harness.
Sequences are not transactional, so ids and timestamps differ from run to run: the answers
compare everything else, the database rows included.
"""

from decimal import Decimal

from django.http import HttpResponse

from catalog.models import Brand, Category, Product, Variant
from catalog.services import PRODUCT_IMPORT_MAX
from shop.bench import holds
from shop.bench.scenario import Call, Scenario

ORDER_LINES = 50
CUSTOMER = "user1"
# One imported product per product in the catalog, at most an import's limit: 10,000 on the
# medium data set (the size the targets name), 500 on small, so `bench --size small` stays short.
IMPORT_PRODUCTS_MAX = PRODUCT_IMPORT_MAX
IMPORT_VARIANTS_PER_PRODUCT = 3  # the seed averages about 3
IMPORT_PREFIX = "bench-import-"  # the seed's slugs never start with it
STAFF = "staff"

_order_skus: list[str] = []
_import_payload: dict = {}


def _order_prepare() -> None:
    # The first variants of active products; every seeded variant has at least 50 in stock.
    variants = Variant.objects.filter(product__is_active=True, stock__gte=1).order_by("id")
    _order_skus[:] = variants.values_list("sku", flat=True)[:ORDER_LINES]


def _order_call() -> Call:
    items = [{"sku": sku, "quantity": 1} for sku in _order_skus]
    return Call("POST", "/api/orders/", data={"items": items}, user=CUSTOMER)


def order_answer(response: HttpResponse) -> dict:
    """The placed order without its ids and timestamps, and the stock it left."""
    body = response.json()
    volatile = {"id", "created_at", "paid_at", "cancelled_at"}
    order = {key: value for key, value in body.items() if key not in volatile}
    if "items" in order:
        order["items"] = [
            {key: value for key, value in item.items() if key != "id"} for item in order["items"]
        ]
    skus = [item["sku"] for item in body.get("items", [])]
    stock = sorted(Variant.objects.filter(sku__in=skus).values_list("sku", "stock"))
    return {"status": response.status_code, "order": order, "stock": stock}


SCENARIO = Scenario(
    name="bulk_writes",
    title=f"place an order with {ORDER_LINES} lines",
    prepare=_order_prepare,
    call=_order_call,
    writes=True,
    answer=order_answer,
    # No other technique's code stands in for a save() per row. algorithmic_complexity is held
    # on (its default) so its checks cost the same few microseconds on both sides whatever
    # PERF_TOGGLES says; the read-back's toggles (prefetch_related, denormalized_fields,
    # fast_serialization) are left alone: they run the same code on both sides.
    hold=holds.BULK_WRITES,
    notes="bulk_create does not call save() or send pre_save/post_save signals.",
)


def import_payload(*, count: int, variants: int, prefix: str) -> dict:
    """`count` products, each with `variants` variants, the same every time it is called."""
    category_ids = list(Category.objects.order_by("id").values_list("id", flat=True))
    brand_ids = list(Brand.objects.order_by("id").values_list("id", flat=True))
    description = "Imported in bulk to measure the bulk_writes technique. " * 10
    products = []
    for n in range(count):
        products.append(
            {
                "name": f"Imported product {n}",
                "slug": f"{prefix}{n}",
                "description": description,
                "category_id": category_ids[n % len(category_ids)],
                "brand_id": brand_ids[n % len(brand_ids)],
                "variants": [
                    {
                        "sku": f"{prefix.upper()}{n}-{v}",
                        "name": f"Option {v}",
                        "price": str(Decimal("4.99") + n % 50 + v),
                        "stock": (n * 7 + v) % 500,
                    }
                    for v in range(variants)
                ],
            }
        )
    return {"products": products}


def import_count() -> int:
    """As many products as the catalog holds (the seeded ones: the bench's own never commit)."""
    return max(1, min(Product.objects.count(), IMPORT_PRODUCTS_MAX))


def _import_prepare() -> None:
    _import_payload.clear()
    _import_payload.update(
        import_payload(
            count=import_count(), variants=IMPORT_VARIANTS_PER_PRODUCT, prefix=IMPORT_PREFIX
        )
    )


def _import_call() -> Call:
    return Call("POST", "/api/staff/products/import/", data=_import_payload, user=STAFF)


def import_answer(response: HttpResponse) -> dict:
    """The response, and every imported row without its id and timestamps."""
    products = Product.objects.filter(slug__startswith=IMPORT_PREFIX).order_by("slug")
    variants = Variant.objects.filter(product__slug__startswith=IMPORT_PREFIX).order_by("sku")
    return {
        "status": response.status_code,
        "body": response.json(),
        "products": list(
            products.values_list(
                "slug", "name", "description", "category_id", "brand_id", "is_active"
            )
        ),
        "variants": list(variants.values_list("sku", "product__slug", "name", "price", "stock")),
    }


EXTRA_SCENARIOS = [
    Scenario(
        name="bulk_writes",
        # No count in the title: it is the catalog's, and the title names the scenario
        # whatever the size.
        title=f"import as many products as the catalog has, "
        f"{IMPORT_VARIANTS_PER_PRODUCT} variants each",
        prepare=_import_prepare,
        call=_import_call,
        writes=True,
        answer=import_answer,
        # Nothing held: the import reads no other toggle.
        repeat=3,  # on medium, the naive side takes about 20 s a run
        notes="Parsing and checking the body, and building the model objects, cost the same "
        "both ways; the rest of the difference is the INSERTs.",
    ),
]
