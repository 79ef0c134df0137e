"""Order rows: orders with their items, payments and events.

`OrderRows` is a part of `shop.seed.generate.World`: it reads the World's size and clock, the
users' join times, and the variant tables that the catalog phase (`shop.seed.catalog_rows`)
filled in.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterator

from shop.seed import text
from shop.seed.rows import DAY, HOUR, Block, cents
from shop.seed.spec import ORDER_BLOCK, ORDER_SPAN_DAYS, SizeSpec

# Weighted choices as lookup tables: index with int(random() * len(table)).
LINES_PER_ORDER = [1] * 16 + [2] * 24 + [3] * 25 + [4] * 18 + [5] * 11 + [6] * 6  # mean 3.02
QUANTITY = [1] * 13 + [2] * 4 + [3] * 2 + [4]  # mean 1.45
ORDER_GROWTH = 3.0  # orders are this many times denser at the anchor than 730 days before


class OrderRows:
    """The orders phase of `World` (which provides `rng` and `ts` and sets these attributes)."""

    spec: SizeSpec
    anchor_s: int
    user_joined: list[int]
    product_created: list[int]
    variant_tail: list[str]
    variant_price: list[int]
    variant_cum_weight: list[float]
    variants_before: list[int]
    rng: Callable[[str, int], random.Random]
    ts: Callable[[int], str]

    def order_blocks(self) -> Iterator[tuple[int, Block]]:
        n = self.spec.orders
        self._next_item = self._next_payment = self._next_event = 1
        for b, lo in enumerate(range(0, n, ORDER_BLOCK)):
            hi = min(n, lo + ORDER_BLOCK)
            yield hi, self._order_block(b, lo, hi)

    def _order_block(self, b: int, lo: int, hi: int) -> Block:
        rnd = self.rng("orders", b).random
        n, ts, anchor_s = self.spec.orders, self.ts, self.anchor_s
        user_joined, product_created = self.user_joined, self.product_created
        vtail, vprice, vcum, vbefore = (
            self.variant_tail,
            self.variant_price,
            self.variant_cum_weight,
            self.variants_before,
        )
        lines_table, quantity_table = LINES_PER_ORDER, QUANTITY
        carriers, reasons = text.CARRIERS, text.CANCEL_REASONS
        start = anchor_s - ORDER_SPAN_DAYS * DAY
        span = ORDER_SPAN_DAYS * DAY
        growth = math.log(ORDER_GROWTH)
        expm1_growth = ORDER_GROWTH - 1
        orders, items, payments, events = [], [], [], []
        iid, pay_id, eid = self._next_item, self._next_payment, self._next_event
        for i in range(lo, hi):
            oid = i + 1
            # Increasing times, denser towards the anchor (density grows by ORDER_GROWTH).
            u = (i + rnd()) / n
            t = start + int(span * math.log1p(u * expm1_growth) / growth)
            # The customer: someone who had joined by then, early joiners buying more.
            joined = bisect_right(user_joined, t)
            uid = 1 + int(joined * rnd() ** 1.6)
            # Lines: distinct variants of products that existed by then, popular ones more.
            n_variants = vbefore[bisect_right(product_created, t)]
            top = vcum[n_variants - 1]
            chosen: list[int] = []
            total = units = 0
            for _ in range(lines_table[int(rnd() * 100)]):
                v = bisect_right(vcum, rnd() * top, 0, n_variants - 1)
                if v in chosen:
                    continue
                chosen.append(v)
                q = quantity_table[int(rnd() * 20)]
                total += vprice[v] * q
                units += q
                items.append(f"{iid}\t{oid}\t{v + 1}\t{q}\t{vtail[v]}\n")
                iid += 1
            amount = cents(total)

            # Status: old orders are mostly shipped, recent ones mostly paid; nothing happens
            # at or after the anchor.
            x = rnd()
            if anchor_s - t > 7 * DAY:
                status = (
                    "shipped"
                    if x < 0.80
                    else "paid"
                    if x < 0.88
                    else "cancelled"
                    if x < 0.96
                    else "placed"
                )
            else:
                status = (
                    "placed"
                    if x < 0.10
                    else "paid"
                    if x < 0.62
                    else "shipped"
                    if x < 0.92
                    else "cancelled"
                )
            paid = t + 30 + int(rnd() * 1800)
            shipped = paid + 6 * HOUR + int(rnd() * 84 * HOUR)
            cancelled = paid + 600 + int(rnd() * 48 * HOUR)
            if status != "placed" and paid >= anchor_s:
                status = "placed"
            elif (status == "shipped" and shipped >= anchor_s) or (
                status == "cancelled" and cancelled >= anchor_s
            ):
                status = "paid"

            placed = ts(t)
            events.append(
                f'{eid}\t{oid}\tplaced\t{{"lines": {len(chosen)}, "total": "{amount}"}}\t{placed}\n'
            )
            eid += 1
            if status == "placed":
                updated, paid_at, cancelled_at = placed, "\\N", "\\N"
            else:
                paid_at = ts(paid)
                refunded = status == "cancelled"
                events.append(
                    f'{eid}\t{oid}\tpaid\t{{"payment_id": {pay_id}, "amount": "{amount}"}}'
                    f"\t{paid_at}\n"
                )
                eid += 1
                if status == "shipped":
                    updated, cancelled_at = ts(shipped), "\\N"
                    carrier = carriers[int(rnd() * len(carriers))]
                    events.append(f'{eid}\t{oid}\tshipped\t{{"carrier": "{carrier}"}}\t{updated}\n')
                    eid += 1
                elif refunded:
                    updated = cancelled_at = ts(cancelled)
                    reason = reasons[int(rnd() * len(reasons))]
                    events.append(
                        f'{eid}\t{oid}\tcancelled\t{{"reason": "{reason}", '
                        f'"refunded": "{amount}"}}\t{updated}\n'
                    )
                    eid += 1
                else:
                    updated, cancelled_at = paid_at, "\\N"
                payments.append(
                    f"{pay_id}\t{oid}\t{amount}\t{'refunded' if refunded else 'captured'}\t"
                    f"seed-{oid}\tseed_ch_{oid:08d}\t{paid_at}\t{cancelled_at if refunded else paid_at}\n"
                )
                pay_id += 1
            orders.append(
                f"{oid}\t{uid}\t{uid}\t{status}\t{placed}\t{updated}\t{paid_at}\t{cancelled_at}\t"
                f"{units}\t{amount}\t\n"
            )
        n_items, n_payments, n_events = (
            iid - self._next_item,
            pay_id - self._next_payment,
            eid - self._next_event,
        )
        self._next_item, self._next_payment, self._next_event = iid, pay_id, eid
        return {
            "orders_order": ("".join(orders), hi - lo),
            "orders_orderitem": ("".join(items), n_items),
            "orders_payment": ("".join(payments), n_payments),
            "orders_orderevent": ("".join(events), n_events),
        }
