"""Built-in tax: jurisdiction rule tables, rates in basis points, per-line integer rounding.

Pure: the store's settings dict in, a ``TaxQuote`` out. No floats: every rate is an int of
basis points (1900 = 19 %) and every amount integer minor units. Each line is rounded on
its own (half away from zero), so the quote's total tax is exactly the sum of its lines.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from app.core.money import Money

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

BPS = 10_000  # basis points in 100 %
NO_TAX_NAME = "No tax"
EXEMPT_NAME = "Tax exempt"
# A product of this tax class is never taxed, in any jurisdiction (a store's own classes can't use the name).
EXEMPT_CLASS = "exempt"

# A demo café in Berlin (prices include tax; that flag is a store setting the checkout reads).
DEFAULT_TAX_RULES: dict[str, Any] = {
    "default_class": "standard",
    "jurisdictions": [
        {"country": "DE", "region": "", "name": "MwSt", "rates": {"standard": 1900, "reduced": 700, "zero": 0}},
        {"country": "AT", "region": "", "name": "USt", "rates": {"standard": 2000, "reduced": 1000, "zero": 0}},
        {"country": "FR", "region": "", "name": "TVA", "rates": {"standard": 2000, "reduced": 550, "zero": 0}},
        {"country": "NL", "region": "", "name": "BTW", "rates": {"standard": 2100, "reduced": 900, "zero": 0}},
        {"country": "GB", "region": "", "name": "VAT", "rates": {"standard": 2000, "reduced": 500, "zero": 0}},
        {"country": "US", "region": "NY", "name": "Sales tax", "rates": {"standard": 888, "zero": 0}},
    ],
}


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest int, halves away from zero (so -2.5 -> -3)."""
    if denominator == 0:
        raise ZeroDivisionError("round_half_up: denominator is zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


@dataclass(frozen=True)
class TaxableLine:
    key: str
    amount: Money  # line total after discounts; includes tax when prices include tax
    tax_class: str


@dataclass(frozen=True)
class TaxLine:
    key: str
    tax_class: str
    rate_bps: int
    name: str
    taxable: Money  # net amount
    tax: Money


@dataclass(frozen=True)
class TaxQuote:
    lines: tuple[TaxLine, ...]
    prices_include_tax: bool
    currency: str

    @property
    def total_tax(self) -> Money:
        return Money(sum(line.tax.amount_minor for line in self.lines), self.currency)

    @property
    def net_total(self) -> Money:
        return Money(sum(line.taxable.amount_minor for line in self.lines), self.currency)

    @property
    def gross_total(self) -> Money:
        return self.net_total + self.total_tax


class TaxProvider(Protocol):
    def quote(
        self,
        lines: Sequence[TaxableLine],
        *,
        country: str,
        region: str = "",
        prices_include_tax: bool,
        exempt: bool = False,
    ) -> TaxQuote: ...


@dataclass(frozen=True)
class _Jurisdiction:
    name: str
    rates: Mapping[str, int]
    default_class: str

    def rate_for(self, tax_class: str) -> int:
        return self.rates.get(tax_class, self.rates[self.default_class])


def _fail(message: str) -> ValueError:
    return ValueError(f"tax rules: {message}")


def _parse_jurisdiction(raw: object, where: str, default_class: str) -> tuple[tuple[str, str], _Jurisdiction]:
    if not isinstance(raw, Mapping):
        raise _fail(f"{where} must be an object, got {raw!r}")
    country, region, name = raw.get("country"), raw.get("region", ""), raw.get("name")
    if not isinstance(country, str) or len(country) != 2 or not country.isalpha() or not country.isupper():
        raise _fail(f"{where}.country must be an ISO-3166 alpha-2 code like 'DE', got {country!r}")
    if not isinstance(region, str):
        raise _fail(f"{where}.region must be a string, got {region!r}")
    if not isinstance(name, str) or not name.strip():
        raise _fail(f"{where}.name must be a non-empty string, got {name!r}")
    rates = raw.get("rates")
    if not isinstance(rates, Mapping) or not rates:
        raise _fail(f"{where}.rates must be a non-empty object of tax class -> basis points")
    for tax_class, bps in rates.items():
        if tax_class == EXEMPT_CLASS:
            raise _fail(f"{where}.rates.{EXEMPT_CLASS}: that class is never taxed and can't have a rate")
        if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= BPS:
            raise _fail(f"{where}.rates.{tax_class} must be an integer of basis points 0..{BPS}, got {bps!r}")
    own_default = raw.get("default_class", default_class)
    if own_default not in rates:
        raise _fail(f"{where}.rates has no rate for its default class {own_default!r}")
    key = (country, region.strip().upper())
    return key, _Jurisdiction(name=name.strip(), rates=dict(rates), default_class=own_default)


class BuiltinTax:
    """Implements ``TaxProvider`` from a rules table (see ``DEFAULT_TAX_RULES``)."""

    def __init__(self, rules: Mapping[str, Any], currency: str) -> None:
        if not isinstance(rules, Mapping):
            raise _fail(f"must be an object, got {rules!r}")
        self.currency = Money.zero(currency).currency
        default_class = rules.get("default_class", "standard")
        if not isinstance(default_class, str) or not default_class:
            raise _fail(f"default_class must be a non-empty string, got {default_class!r}")
        raw_jurisdictions = rules.get("jurisdictions", [])
        if not isinstance(raw_jurisdictions, list):
            raise _fail(f"jurisdictions must be a list, got {raw_jurisdictions!r}")
        self._jurisdictions: dict[tuple[str, str], _Jurisdiction] = {}
        for i, raw in enumerate(raw_jurisdictions):
            key, jurisdiction = _parse_jurisdiction(raw, f"jurisdictions[{i}]", default_class)
            if key in self._jurisdictions:
                raise _fail(f"jurisdictions[{i}] repeats country {key[0]!r} region {key[1]!r}")
            self._jurisdictions[key] = jurisdiction

    @classmethod
    def from_settings(cls, store_settings: Mapping[str, Any], currency: str) -> BuiltinTax:
        """The store's provider, parsed once per distinct configuration (a quote needs it every time)."""
        return _tax_for(msgspec.json.encode(store_settings.get("tax", DEFAULT_TAX_RULES)), currency)

    def quote(
        self,
        lines: Sequence[TaxableLine],
        *,
        country: str,
        region: str = "",
        prices_include_tax: bool,
        exempt: bool = False,
    ) -> TaxQuote:
        """Tax per line: exact country + region first, then the country alone, else no tax.

        A line of the class ``exempt`` (``EXEMPT_CLASS``) is never taxed, wherever it goes."""
        country, region = country.strip().upper(), region.strip().upper()
        jurisdiction = self._jurisdictions.get((country, region)) or self._jurisdictions.get((country, ""))
        taxed = []
        for line in lines:
            if line.amount.currency != self.currency:
                raise ValueError(f"line {line.key!r} is in {line.amount.currency}, tax is quoted in {self.currency}")
            if exempt or line.tax_class == EXEMPT_CLASS:
                name, bps = EXEMPT_NAME, 0
            elif jurisdiction is None:
                name, bps = NO_TAX_NAME, 0
            else:
                name, bps = jurisdiction.name, jurisdiction.rate_for(line.tax_class)
            taxable, tax = _split(line.amount.amount_minor, bps, prices_include_tax)
            money = Money(taxable, self.currency), Money(tax, self.currency)
            taxed.append(TaxLine(line.key, line.tax_class, bps, name, *money))
        return TaxQuote(tuple(taxed), prices_include_tax, self.currency)


def _split(amount: int, bps: int, prices_include_tax: bool) -> tuple[int, int]:
    """(taxable net, tax) for one line amount."""
    if prices_include_tax:
        tax = amount - round_half_up(amount * BPS, BPS + bps)
        return amount - tax, tax
    return amount, round_half_up(amount * bps, BPS)


@functools.lru_cache(maxsize=256)
def _tax_for(encoded_config: bytes, currency: str) -> BuiltinTax:
    return BuiltinTax(msgspec.json.decode(encoded_config), currency)
