"""A new store's starting tax table: its own country's VAT / GST rates, which the merchant then checks and
edits on the tax page. Rates as published for 2025-2026; only the rates we are sure of — a country we have
no table for starts with no jurisdictions, and the tax page asks the merchant to add theirs.

Only the store's own country is listed: selling into other countries (EU one-stop shop, US states) is for
the merchant to add. Canada's provinces with a separate PST (BC, MB, QC, SK) are charged GST alone until
the merchant adds them (one tax per line: a PST row would replace the GST, not add to it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["prices_include_tax_for", "tax_rules_for_country"]

DEFAULT_CLASS = "standard"

# country: (tax name, {class: basis points}) — the first class is the default.
_NATIONAL: dict[str, tuple[str, dict[str, int]]] = {
    "DE": ("MwSt", {"standard": 1900, "reduced": 700}),
    "AT": ("USt", {"standard": 2000, "reduced": 1000}),
    "FR": ("TVA", {"standard": 2000, "reduced": 1000, "reduced_2": 550}),
    "NL": ("BTW", {"standard": 2100, "reduced": 900}),
    "BE": ("BTW/TVA", {"standard": 2100, "reduced": 1200, "reduced_2": 600}),
    "LU": ("TVA", {"standard": 1700, "reduced": 800, "reduced_2": 300}),
    "GB": ("VAT", {"standard": 2000, "reduced": 500, "zero": 0}),
    "IE": ("VAT", {"standard": 2300, "reduced": 1350, "zero": 0}),
    "SE": ("Moms", {"standard": 2500, "reduced": 1200, "reduced_2": 600}),
    "DK": ("Moms", {"standard": 2500}),
    "NO": ("MVA", {"standard": 2500, "reduced": 1500}),
    "FI": ("ALV", {"standard": 2550, "reduced": 1400, "reduced_2": 1000}),
    "ES": ("IVA", {"standard": 2100, "reduced": 1000, "reduced_2": 400}),
    "PT": ("IVA", {"standard": 2300, "reduced": 1300, "reduced_2": 600}),
    "IT": ("IVA", {"standard": 2200, "reduced": 1000, "reduced_2": 400}),
    "PL": ("VAT", {"standard": 2300, "reduced": 800, "reduced_2": 500}),
    "CH": ("MWST", {"standard": 810, "reduced": 260}),
    "AU": ("GST", {"standard": 1000, "zero": 0}),
    "NZ": ("GST", {"standard": 1500}),
    "CA": ("GST", {"standard": 500}),
    "US": ("Sales tax", {}),  # no national sales tax: the merchant adds the states they collect in
}
# Canadian provinces whose harmonised sales tax replaces the GST.
_CA_HST: dict[str, int] = {"ON": 1300, "NS": 1400, "NB": 1500, "NL": 1500, "PE": 1500}
# Where shelf prices are shown before tax; everywhere else in the table they include it.
_PRICES_EXCLUDE_TAX = frozenset({"US", "CA"})


def tax_rules_for_country(country: str) -> dict[str, Any]:
    """A starting ``stores.settings["tax"]`` for a store in ``country`` (ISO alpha-2), in ``BuiltinTax``'s
    shape with its class list; for a country not in the table, no jurisdictions (nothing is taxed yet)."""
    country = country.strip().upper()
    name, rates = _NATIONAL.get(country, ("", {}))
    jurisdictions: list[dict[str, Any]] = []
    if rates:
        jurisdictions.append({"country": country, "region": "", "name": name, "rates": dict(rates)})
    if country == "CA":
        jurisdictions += [
            {"country": "CA", "region": region, "name": "HST", "rates": {DEFAULT_CLASS: bps}}
            for region, bps in _CA_HST.items()
        ]
    return {"default_class": DEFAULT_CLASS, "classes": list(rates) or [DEFAULT_CLASS], "jurisdictions": jurisdictions}


def prices_include_tax_for(country: str) -> bool:
    """Whether shoppers in ``country`` expect prices with tax included (all but the US and Canada)."""
    return country.strip().upper() not in _PRICES_EXCLUDE_TAX
