"""Tax: the built-in jurisdiction-table tax provider (pure, no I/O)."""

from app.tax.providers import (
    DEFAULT_TAX_RULES,
    EXEMPT_CLASS,
    BuiltinTax,
    TaxableLine,
    TaxLine,
    TaxProvider,
    TaxQuote,
    round_half_up,
)

__all__ = [
    "DEFAULT_TAX_RULES",
    "EXEMPT_CLASS",
    "BuiltinTax",
    "TaxLine",
    "TaxProvider",
    "TaxQuote",
    "TaxableLine",
    "round_half_up",
]
