"""The product list's first page of 50: category and brand for every row."""

from catalog.models import Product
from shop.bench.scenario import Call, Scenario
from shop.bench.statements import expect, lazy_sql, sent

TECHNIQUE = "select_related"
# The naive code is lazy model access: the serializer reads `product.category` and Django
# runs `SELECT ... WHERE id = %s LIMIT 21` for it. fast_serialization (on by default) would
# stand in for that with its own per-row values() query, so it is held off: both sides build
# model instances and go through DRF's serializer, and only the JOIN differs.
HOLD = {"fast_serialization": False}


def _call() -> Call:
    return Call("GET", "/api/products/?page_size=50")


def _prepare() -> None:
    """Off must send the page query plus one lazy category and one lazy brand query per row;
    on, none of them."""
    product = Product.objects.filter(is_active=True).first()
    if product is None:
        return  # no products: both sides send the same two queries, nothing to verify
    lazy = [lazy_sql(product, "category"), lazy_sql(product, "brand")]
    off = sent(_call(), {**HOLD, TECHNIQUE: False})
    on = sent(_call(), {**HOLD, TECHNIQUE: True})
    for sql in lazy:
        expect(off.times(sql) == off.rows, TECHNIQUE, f"off sent {off.times(sql)} of {sql!r}")
        expect(on.times(sql) == 0, TECHNIQUE, f"on still sent {sql!r}")
    expect(
        len(off.statements) == len(on.statements) + 2 * off.rows,
        TECHNIQUE,
        f"off sent {len(off.statements)} queries, on {len(on.statements)}: not 2 per row more",
    )


SCENARIO = Scenario(
    name=TECHNIQUE,
    title="product list, 50 rows with category and brand",
    prepare=_prepare,
    call=_call,
    hold=HOLD,
    notes="fast_serialization is held off: its values() path would replace the lazy model "
    "access that is the naive code here. Checked before timing: off sends 1 + 2N lazy queries.",
)
