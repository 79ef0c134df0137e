"""Deterministic demo and benchmark data: `seed(size="small" | "medium" | "large")`.

See `shop.seed.core.seed` for the entry point, `shop.seed.spec.SIZES` for what each size holds,
and `python manage.py seed --help` for the command.
"""

from shop.seed.core import default_anchor, password_hash, seed
from shop.seed.report import SeedReport, TargetResult
from shop.seed.spec import DEFAULT_SEED, PASSWORD, SIZES, SizeSpec

__all__ = [
    "DEFAULT_SEED",
    "PASSWORD",
    "SIZES",
    "SeedReport",
    "SizeSpec",
    "TargetResult",
    "default_anchor",
    "password_hash",
    "seed",
]
