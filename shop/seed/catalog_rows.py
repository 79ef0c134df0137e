"""Catalog rows: the category tree and brands, then products with their variants and reviews.

`CatalogRows` is a part of `shop.seed.generate.World`: it reads the World's size, clock and
catalog setup, and fills in the variant tables that the orders phase (`shop.seed.order_rows`)
draws from.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

from shop.seed import text
from shop.seed.rows import Block, cents
from shop.seed.spec import PRODUCT_BLOCK, SizeSpec

# Weighted choices as lookup tables: index with int(random() * len(table)).
VARIANTS_PER_PRODUCT = [1, 2, 2, 3, 3, 3, 3, 4, 4, 5]  # mean 3.0
# Rating tables for a product's quality: great, good, mixed, poor.
RATINGS = [
    [5] * 60 + [4] * 28 + [3] * 7 + [2] * 3 + [1] * 2,
    [5] * 40 + [4] * 35 + [3] * 14 + [2] * 6 + [1] * 5,
    [5] * 20 + [4] * 25 + [3] * 25 + [2] * 15 + [1] * 15,
    [5] * 8 + [4] * 12 + [3] * 20 + [2] * 25 + [1] * 35,
]
QUALITY = [0] * 35 + [1] * 40 + [2] * 18 + [3] * 7
PRICE_ENDINGS = [99, 99, 99, 99, 49, 95, 0, 50]
POPULARITY_SIGMA = 1.2  # log-normal spread of product popularity (reviews and sales)


class CatalogRows:
    """The catalog phase of `World` (which provides `rng` and `ts` and sets these attributes)."""

    spec: SizeSpec
    anchor_s: int
    user_joined: list[int]
    product_created: list[int]
    brands: list[str]
    brand_slugs: list[str]
    paragraphs: list[str]
    leaves: list[tuple[int, int, list[str]]]
    adjective_slugs: list[str]
    variant_tail: list[str]
    variant_price: list[int]
    variant_cum_weight: list[float]
    variants_before: list[int]
    rng: Callable[[str, int], random.Random]
    ts: Callable[[int], str]

    def taxonomy_block(self) -> Block:
        categories = []
        for top_index, (top, _, _) in enumerate(text.CATEGORY_TREE):
            categories.append(f"{top_index + 1}\t{top}\t{text.slugify(top)}\t\\N\n")
        for leaf_id, top_index, _ in self.leaves:
            top, _, children = text.CATEGORY_TREE[top_index]
            child = children[(leaf_id - 9) % 5][0]
            slug = f"{text.slugify(top)}-{text.slugify(child)}"
            categories.append(f"{leaf_id}\t{child}\t{slug}\t{top_index + 1}\n")
        brands = [
            f"{i + 1}\t{name}\t{slug}\n"
            for i, (name, slug) in enumerate(zip(self.brands, self.brand_slugs, strict=True))
        ]
        return {
            "catalog_category": ("".join(categories), len(categories)),
            "catalog_brand": ("".join(brands), len(brands)),
        }

    def product_blocks(self) -> Iterator[tuple[int, Block]]:
        n = self.spec.products
        for derived in (self.variant_tail, self.variant_price, self.variant_cum_weight):
            derived.clear()
        del self.variants_before[1:]
        self._next_variant = 1
        self._next_review = 1
        self._cum_weight = 0.0
        for b, lo in enumerate(range(0, n, PRODUCT_BLOCK)):
            hi = min(n, lo + PRODUCT_BLOCK)
            yield hi, self._product_block(b, lo, hi)

    def _product_block(self, b: int, lo: int, hi: int) -> Block:
        rng = self.rng("products", b)
        rnd = rng.random
        spec, ts, anchor_s = self.spec, self.ts, self.anchor_s
        leaves, brands, brand_slugs = self.leaves, self.brands, self.brand_slugs
        adjectives, adjective_slugs = text.ADJECTIVES, self.adjective_slugs
        paragraphs, n_paragraphs = self.paragraphs, len(self.paragraphs)
        titles, sentences = text.REVIEW_TITLES, text.REVIEW_SENTENCES
        user_joined, product_created = self.user_joined, self.product_created
        n_users, n_brands, n_adj = spec.users, len(brands), len(adjectives)
        mean_reviews = spec.reviews / spec.products
        max_reviews = n_users // 2
        mu = -(POPULARITY_SIGMA**2) / 2  # so that popularity has mean 1
        users = range(1, n_users + 1)
        vtail, vprice, vcum, vbefore = (
            self.variant_tail,
            self.variant_price,
            self.variant_cum_weight,
            self.variants_before,
        )
        products, variants, reviews = [], [], []
        vid, rid, cum = self._next_variant, self._next_review, self._cum_weight
        for i in range(lo, hi):
            pid = i + 1
            leaf_id, top_index, nouns = leaves[int(rnd() * len(leaves))]
            brand = int(n_brands * rnd() ** 1.5)  # a few big brands, a long tail
            adj = int(rnd() * n_adj)
            noun = nouns[int(rnd() * len(nouns))]
            name = f"{brands[brand]} {adjectives[adj]} {noun}"
            slug = f"{brand_slugs[brand]}-{adjective_slugs[adj]}-{text.slugify(noun)}-{pid}"
            created = product_created[i]
            updated = created + int(rnd() * (anchor_s - created) * 0.5)
            # A long description: an opening line, then paragraphs from the pool (2-4 kB).
            parts = [
                f"The {name} is a {adjectives[adj].lower()} {noun.lower()} by {brands[brand]}."
            ]
            length, target = len(parts[0]), 2000 + int(rnd() * 1300)
            while length < target:
                paragraph = paragraphs[int(rnd() * n_paragraphs)]
                parts.append(paragraph)
                length += len(paragraph) + 2
            description = "\\n\\n".join(parts)  # an escaped newline in COPY text

            popularity = rng.lognormvariate(mu, POPULARITY_SIGMA)
            n_reviews = min(max_reviews, int(popularity * mean_reviews + rnd()))
            ratings = RATINGS[QUALITY[int(rnd() * 100)]]
            rating_sum = 0
            for author in rng.sample(users, n_reviews):
                rating = ratings[int(rnd() * 100)]
                rating_sum += rating
                start = max(created, user_joined[author - 1])
                pool = sentences[rating]
                body = pool[int(rnd() * len(pool))]
                target = 100 + int(rnd() * 380)
                while len(body) < target:
                    body += " " + pool[int(rnd() * len(pool))]
                reviews.append(
                    f"{rid}\t{pid}\t{author}\tuser{author}\t{rating}\t"
                    f"{titles[rating][int(rnd() * 10)]}\t{body}\t"
                    f"{ts(start + int(rnd() * (anchor_s - start)))}\n"
                )
                rid += 1
            # The average rounded half up to 2 decimals, in integers: round(100 * sum / n).
            avg = cents((200 * rating_sum + n_reviews) // (2 * n_reviews)) if n_reviews else "0.00"
            active = "t" if rnd() < 0.97 else "f"
            products.append(
                f"{pid}\t{name}\t{slug}\t{description}\t{leaf_id}\t{brand + 1}\t{active}\t"
                f"{ts(created)}\t{ts(updated)}\t{avg}\t{n_reviews}\n"
            )

            # Variants: one per option of the top category, with prices near a base price.
            options = text.CATEGORY_TREE[top_index][1]
            n_variants = min(len(options), VARIANTS_PER_PRODUCT[int(rnd() * 10)])
            first_option = int(rnd() * len(options))
            base_price = math.exp(5.3 + rnd() * 5.3)  # log-uniform, about 2.00 to 400.00
            weight = popularity / n_variants
            for j in range(n_variants):
                price = int(base_price * (1 + 0.15 * j))
                price = min(49_999, max(200, price // 100 * 100 + PRICE_ENDINGS[int(rnd() * 8)]))
                sku = f"PS-{pid:06d}-{j + 1}"
                variants.append(
                    f"{vid}\t{pid}\t{sku}\t{options[(first_option + j) % len(options)]}\t"
                    f"{cents(price)}\t{50 + int(rnd() * 951)}\n"
                )
                vtail.append(f"{name}\t{sku}\t{cents(price)}")
                vprice.append(price)
                cum += weight
                vcum.append(cum)
                vid += 1
            vbefore.append(vid - 1)
        self._next_variant, self._next_review, self._cum_weight = vid, rid, cum
        return {
            "catalog_product": ("".join(products), hi - lo),
            "catalog_variant": ("".join(variants), len(variants)),
            "catalog_review": ("".join(reviews), len(reviews)),
        }
