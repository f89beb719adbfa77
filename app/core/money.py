"""Money is integers (Invariant 1): minor units plus an ISO-4217 currency."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import NumberPattern, get_currency_precision, parse_pattern

__all__ = ["Money", "allocate", "amount_text", "minor_digits", "parse_amount"]

_AMOUNT = re.compile(r"\s*(-)?\s*(\d{1,12})(?:[.,](\d+))?\s*")


@lru_cache(maxsize=64)
def _currency_pattern(locale: str) -> tuple[Locale, NumberPattern]:
    """Babel's standard currency pattern for a locale, parsed once (format_currency re-parses every call)."""
    language = Locale.parse(locale)
    return language, parse_pattern(language.currency_formats["standard"])


@lru_cache(maxsize=256)
def minor_digits(currency: str) -> int:
    """Digits after the decimal point for a currency (EUR 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(currency))


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError("Money.amount_minor must be an int (minor units), never a float")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"not an ISO-4217 currency code: {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def times(self, quantity: int) -> Money:
        return Money(self.amount_minor * quantity, self.currency)

    def allocate(self, weights: Sequence[int]) -> list[Money]:
        return [Money(part, self.currency) for part in allocate(self.amount_minor, weights)]

    def as_decimal(self) -> Decimal:
        return Decimal(self.amount_minor).scaleb(-minor_digits(self.currency))

    def format(self, locale: str = "en_US") -> str:
        language, pattern = _currency_pattern(locale)
        return str(pattern.apply(self.as_decimal(), language, currency=self.currency))

    def __str__(self) -> str:
        return self.format()


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` minor units in proportion to ``weights``; the parts always sum to ``total``.

    Largest-remainder method: each part gets the floor of its exact share, and the units
    left over go one each to the parts with the largest remainders (earliest first on ties).
    Negative totals are split like their absolute value, then negated.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = [divmod(magnitude * w, weight_sum) for w in weights]
    parts = [q for q, _ in shares]
    left_over = magnitude - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-shares[i][1], i))
    for i in by_remainder[:left_over]:
        parts[i] += 1
    return [sign * p for p in parts]


def parse_amount(text: str, currency: str) -> int | None:
    """An amount as a person types it in ``currency`` ("4.90", "4,9", "-2", "1500" for JPY, "1.250" for BHD)
    → minor units, or None when it is not one. No floats; no more decimals than the currency has; a leading
    minus gives a negative amount, for the caller to refuse in its own words."""
    match = _AMOUNT.fullmatch(text or "")
    if not match:
        return None
    sign, whole, fraction = match.groups()
    digits, fraction = minor_digits(currency), fraction or ""
    if len(fraction) > digits:  # "1.250" in EUR is refused, not read as 1.25 (nor as 1250)
        return None
    minor = int(whole + fraction.ljust(digits, "0"))  # "4" + "90" → 490
    return -minor if sign else minor


def amount_text(amount_minor: int, currency: str) -> str:
    """Minor units as a form shows them for editing: 490 EUR → "4.90", 500 JPY → "500", 1250 BHD → "1.250"."""
    return str(Money(amount_minor, currency).as_decimal())
