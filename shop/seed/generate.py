"""Row generators: each block of rows comes out as COPY text, one string per table.

Speed matters here (the large size writes ~10 million rows), so the hot loops avoid Decimal,
datetime and random's convenience methods: prices are integer cents, timestamps are integer
seconds after `base` formatted from precomputed day and time-of-day strings, and weighted
choices are lookups into precomputed tables or a bisect over cumulative weights.

Determinism: every block draws from its own `random.Random`, seeded from (seed, phase, block
number), and ids are handed out in generation order, so the same seed and anchor give the same
rows however the loader batches them.

`World` holds what every phase shares and generates the users; the catalog and orders phases
are its parts `shop.seed.catalog_rows.CatalogRows` and `shop.seed.order_rows.OrderRows`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from shop.seed import text
from shop.seed.catalog_rows import CatalogRows
from shop.seed.order_rows import OrderRows
from shop.seed.rows import DAY, Block
from shop.seed.spec import DAYS_BEFORE_ANCHOR, JOIN_SPAN_DAYS, USER_BLOCK, SizeSpec

# COPY column lists, in the order the generators write the fields.
COLUMNS: dict[str, str] = {
    "auth_user": "id, password, is_superuser, username, first_name, last_name, email, "
    "is_staff, is_active, date_joined",
    "orders_address": "id, user_id, full_name, line1, city, postal_code, country, is_default",
    "catalog_category": "id, name, slug, parent_id",
    "catalog_brand": "id, name, slug",
    "catalog_product": "id, name, slug, description, category_id, brand_id, is_active, "
    "created_at, updated_at, rating_avg, review_count",
    "catalog_variant": "id, product_id, sku, name, price, stock",
    "catalog_review": "id, product_id, author_id, author_username, rating, title, body, created_at",
    "orders_order": "id, user_id, shipping_address_id, status, created_at, updated_at, paid_at, "
    "cancelled_at, item_count, total_amount, request_fingerprint",
    "orders_orderitem": "id, order_id, variant_id, quantity, product_name, sku, unit_price",
    "orders_payment": "id, order_id, amount, status, idempotency_key, provider_reference, "
    "created_at, updated_at",
    "orders_orderevent": "id, order_id, kind, data, created_at",
}

_TIME_OF_DAY: list[str] = []


class World(CatalogRows, OrderRows):
    """What every phase needs: the size, the clock, and what earlier phases decided."""

    def __init__(self, *, spec: SizeSpec, seed: int, anchor: date, password_hash: str) -> None:
        self.spec = spec
        self.seed = seed
        self.anchor = anchor
        self.password_hash = password_hash
        anchor_dt = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)
        self.base = anchor_dt - timedelta(days=DAYS_BEFORE_ANCHOR)
        self.anchor_s = DAYS_BEFORE_ANCHOR * DAY  # timestamps are seconds after base
        self.days = [
            (self.base + timedelta(days=d)).strftime("%Y-%m-%d ") for d in range(DAYS_BEFORE_ANCHOR)
        ]
        if not _TIME_OF_DAY:
            _TIME_OF_DAY.extend(
                f"{h:02d}:{m:02d}:{s:02d}+00"
                for h in range(24)
                for m in range(60)
                for s in range(60)
            )
        self.tod = _TIME_OF_DAY

        # Users join and products appear over JOIN_SPAN_DAYS, ids in time order (so "who
        # existed at time t" is a prefix of the ids, found by bisect).
        self.user_joined = self._spread("user-joined", spec.users)
        self.product_created = self._spread("product-created", spec.products)

        rng = self.rng("catalog-setup", 0)
        heads = [h + t for h in text.BRAND_HEADS for t in text.BRAND_TAILS]
        self.brands = rng.sample(heads, spec.brands)
        self.brand_slugs = [text.slugify(b) for b in self.brands]
        self.paragraphs = text.description_paragraphs(rng)
        # Leaf categories: (id, top index, nouns); tops are ids 1-8, their children 9-48.
        self.leaves: list[tuple[int, int, list[str]]] = []
        for top_index, (_, _, children) in enumerate(text.CATEGORY_TREE):
            for _, nouns in children:
                self.leaves.append((9 + len(self.leaves), top_index, nouns))
        self.adjective_slugs = [text.slugify(a) for a in text.ADJECTIVES]

        # Filled in by the catalog phase, used by the orders phase.
        self.variant_tail: list[str] = []  # "product name\tsku\tprice" per variant id - 1
        self.variant_price: list[int] = []  # cents
        self.variant_cum_weight: list[float] = []  # cumulative popularity
        self.variants_before: list[int] = [0]  # [p] = number of variants of products 1..p

    def rng(self, phase: str, block: int) -> random.Random:
        return random.Random(f"perfshop-seed:{self.seed}:{phase}:{block}")

    def ts(self, s: int) -> str:
        return self.days[s // DAY] + self.tod[s % DAY]

    def _spread(self, phase: str, n: int) -> list[int]:
        """n increasing times over the JOIN_SPAN_DAYS from base, each jittered in its slot."""
        rnd = self.rng(phase, 0).random
        slot = JOIN_SPAN_DAYS * DAY / n
        return [int((i + rnd()) * slot) for i in range(n)]

    # --- users --------------------------------------------------------------------------

    def user_blocks(self) -> Iterator[tuple[int, Block]]:
        n = self.spec.users
        for b, lo in enumerate(range(0, n, USER_BLOCK)):
            hi = min(n, lo + USER_BLOCK)
            yield hi, self._user_block(b, lo, hi)

    def _user_block(self, b: int, lo: int, hi: int) -> Block:
        rnd = self.rng("users", b).random
        first_names, last_names = text.FIRST_NAMES, text.LAST_NAMES
        streets, kinds, cities = text.STREETS, text.STREET_KINDS, text.CITIES
        nf, nl, ns, nk, nc = (
            len(first_names),
            len(last_names),
            len(streets),
            len(kinds),
            len(cities),
        )
        pw, ts, joined = self.password_hash, self.ts, self.user_joined
        users, addresses = [], []
        for i in range(lo, hi):
            uid = i + 1
            first = first_names[int(rnd() * nf)]
            last = last_names[int(rnd() * nl)]
            users.append(
                f"{uid}\t{pw}\tf\tuser{uid}\t{first}\t{last}\tuser{uid}@example.com\tf\tt\t"
                f"{ts(joined[i])}\n"
            )
            city, country = cities[int(rnd() * nc)]
            line1 = f"{1 + int(rnd() * 250)} {streets[int(rnd() * ns)]} {kinds[int(rnd() * nk)]}"
            postal = f"{10000 + int(rnd() * 89999)}"
            addresses.append(
                f"{uid}\t{uid}\t{first} {last}\t{line1}\t{city}\t{postal}\t{country}\tt\n"
            )
        return {
            "auth_user": ("".join(users), hi - lo),
            "orders_address": ("".join(addresses), hi - lo),
        }

    def staff_block(self) -> Block:
        """`staff` (is_staff) and `admin` (superuser), after the numbered users."""
        n, pw, joined = self.spec.users, self.password_hash, self.ts(0)
        rows = (
            f"{n + 1}\t{pw}\tf\tstaff\tStaff\tMember\tstaff@example.com\tt\tt\t{joined}\n"
            f"{n + 2}\t{pw}\tt\tadmin\tAdmin\tUser\tadmin@example.com\tt\tt\t{joined}\n"
        )
        return {"auth_user": (rows, 2)}
