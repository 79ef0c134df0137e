"""`?fields=` on the product list's largest page (100 rows, three of its eight fields) and on
the order history's first page (50 orders, without their items): off, the whole page is
fetched and represented, then cut; on, only what the fields need is read."""

from shop.bench import holds
from shop.bench.dataset import busiest_username
from shop.bench.scenario import Call, Scenario

NOTES = (
    "The same body on both sides, far smaller than the whole page: the JSON is trimmed either "
    "way. What differs is what PostgreSQL sends (the 'from the db' bytes) and the JOINs, "
    "prefetches and columns it reads for it. cache_aside, http_caching and compression are held "
    "off: a cached page would answer both sides without a query (a sparse page bypasses it "
    "anyway), and the bytes are the JSON's."
)

SCENARIO = Scenario(
    name="sparse_fields",
    title="product list, 100 rows, ?fields=id,name,slug",
    call=lambda: Call("GET", "/api/products/?page_size=100&fields=id,name,slug"),
    db_bytes=True,
    hold=holds.SPARSE_FIELDS,
    notes=NOTES,
)

EXTRA_SCENARIOS = [
    Scenario(
        name="sparse_fields",
        title="order history, 50 orders, ?fields=id,status,total_amount",
        call=lambda: Call(
            "GET",
            "/api/orders/?page_size=50&fields=id,status,total_amount",
            user=busiest_username(),
        ),
        db_bytes=True,
        hold=holds.SPARSE_FIELDS,
        notes="Off prefetches the 50 orders' items, which the answer never shows.",
    ),
]
