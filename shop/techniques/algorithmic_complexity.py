"""Check a cart in one pass with sets and dicts, instead of rescanning lists inside a loop.

Placing an order checks that no SKU is on two lines and finds each line's variant among the
variants fetched for the order.

Off: the code a team writes first. For each line, scan the lines before it for the same SKU;
for each line, scan the fetched variants until one has its SKU. Each scan is short, but there
is one per line, so the work is O(n²): n(n-1)/2 comparisons for n lines. At 100 lines that is
5,000 comparisons and does not matter; at 10,000 it is 50 million and takes seconds.

On: remember the SKUs seen so far in a set, and index the variants by SKU in a dict. Each line
costs one hash lookup, so the work is O(n).

Both give the same answer in the same order, so the errors a customer sees do not change.
"""

from collections.abc import Sequence
from typing import Protocol, TypeVar

from shop import toggles

TOGGLE = toggles.register(
    "algorithmic_complexity",
    group="data_access",
    description="set and dict lookups in checkout validation instead of nested loops",
)


def repeats(skus: Sequence[str]) -> list[bool]:
    """For each position, whether the same SKU is at an earlier position."""
    if not toggles.is_enabled(TOGGLE.name):
        return _repeats_naive(skus)
    return _repeats_optimized(skus)


def _repeats_naive(skus: Sequence[str]) -> list[bool]:
    found = []
    for index, sku in enumerate(skus):
        found.append(any(earlier == sku for earlier in skus[:index]))  # scans every earlier line
    return found


def _repeats_optimized(skus: Sequence[str]) -> list[bool]:
    seen: set[str] = set()
    found = []
    for sku in skus:
        found.append(sku in seen)  # one hash lookup
        seen.add(sku)
    return found


class HasSku(Protocol):
    """Anything with a SKU: the catalog's `Variant`, which this module does not need to know."""

    sku: str


V = TypeVar("V", bound=HasSku)


def match(skus: Sequence[str], variants: Sequence[V]) -> list[V | None]:
    """For each SKU, the variant with that SKU, or None when none of `variants` has it."""
    if not toggles.is_enabled(TOGGLE.name):
        return _match_naive(skus, variants)
    return _match_optimized(skus, variants)


def _match_naive(skus: Sequence[str], variants: Sequence[V]) -> list[V | None]:
    # For each SKU, scan the variants until one has it: an unknown SKU scans all of them.
    return [next((variant for variant in variants if variant.sku == sku), None) for sku in skus]


def _match_optimized(skus: Sequence[str], variants: Sequence[V]) -> list[V | None]:
    by_sku = {variant.sku: variant for variant in variants}  # SKUs are unique
    return [by_sku.get(sku) for sku in skus]
