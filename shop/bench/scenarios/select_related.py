"""The product list's first page of 50: category and brand for every row."""

from catalog.models import Product
from shop.bench import holds, sweep_pages
from shop.bench.scenario import Call, Scenario
from shop.bench.statements import expect, lazy_sql, sent
from shop.bench.sweep import Sweep

TECHNIQUE = "select_related"
# The naive code is lazy model access: the serializer reads `product.category` and Django
# runs `SELECT ... WHERE id = %s LIMIT 21` for it. fast_serialization (on by default) would
# stand in for that with its own per-row values() query, so it is held off: both sides build
# model instances and go through DRF's serializer, and only the JOIN differs.
HOLD = holds.SELECT_RELATED


def _call(page_size: int = 50) -> Call:
    return Call("GET", f"/api/products/?page_size={page_size}")


def _prepare(page_size: int = 50) -> None:
    """Off must send the page query plus one lazy category and one lazy brand query per row;
    on, none of them."""
    product = Product.objects.filter(is_active=True).first()
    if product is None:
        return  # no products: both sides send the same two queries, nothing to verify
    lazy = [lazy_sql(product, "category"), lazy_sql(product, "brand")]
    off = sent(_call(page_size), {**HOLD, TECHNIQUE: False})
    on = sent(_call(page_size), {**HOLD, TECHNIQUE: True})
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


# --- the sweep: pages of 10, 50 and 200 products ---------------------------------------------
# Off sends 2 lazy queries a row, so its cost grows linearly with the page; on sends the same
# two queries at any page size: its database time stays nearly flat, and its p50 grows only
# with the rows serialized.


def _scenario_at(page_size: int) -> Scenario:
    # 200 is past the API's 100: see sweep_pages.
    return sweep_pages.page_scenario(
        SCENARIO,
        page_size,
        title=f"product list, {page_size} rows with category and brand",
        call=_call,
        prepare=_prepare,
    )


def after() -> list[str]:
    return sweep_pages.restore_cap()


SWEEP = Sweep(
    axis="page size (rows)",
    points=(10, 50, 200),
    scenario_at=_scenario_at,
    # A full page, or the point is skipped.
    fit=lambda rows: rows if Product.objects.filter(is_active=True).count() >= rows else None,
    shape="off: linear in the page size (2 queries a row); on: database time nearly flat "
    "(2 queries), the p50 growing only with the rows serialized",
)
