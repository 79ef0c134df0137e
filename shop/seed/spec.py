"""What a seed of each size contains, and what it must achieve."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizeSpec:
    users: int
    products: int
    reviews: int  # a target: the real count varies a little with the seed
    orders: int
    brands: int


# The one table of sizes. Orders have ~3 lines each, products ~3 variants each, and the
# catalog always has 8 top categories with 5 children each.
SIZES: dict[str, SizeSpec] = {
    "small": SizeSpec(users=1_000, products=500, reviews=5_000, orders=2_000, brands=50),
    "medium": SizeSpec(users=10_000, products=10_000, reviews=100_000, orders=100_000, brands=100),
    "large": SizeSpec(
        users=100_000, products=100_000, reviews=1_000_000, orders=1_000_000, brands=200
    ),
}

# Time budgets (seconds) on the project's 2-core machine, and the memory budget at any size.
TIME_TARGETS: dict[str, float] = {"medium": 60.0, "large": 600.0}
MEMORY_TARGET_BYTES = 1024**3

DEFAULT_SEED = 42

# Every timestamp lies in the DAYS_BEFORE_ANCHOR days before the anchor (UTC midnight).
DAYS_BEFORE_ANCHOR = 1100
JOIN_SPAN_DAYS = 1095  # users join and products appear over this many days
ORDER_SPAN_DAYS = 730  # orders are placed over this many days

# Fixed generation blocks: each block draws from its own RNG, derived from (seed, phase,
# block number), so how the rows are batched for loading never changes what is generated.
USER_BLOCK = 5_000
PRODUCT_BLOCK = 500
ORDER_BLOCK = 5_000

# The shared password of every seeded account.
PASSWORD = "password"
