"""The product list's first page of 50: category and brand for every row."""

from shop.bench.scenario import Call, Scenario

SCENARIO = Scenario(
    name="select_related",
    title="product list, 50 rows with category and brand",
    call=lambda: Call("GET", "/api/products/?page_size=50"),
)
