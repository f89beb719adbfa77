"""A store's tax settings: validate what a merchant sends, and preview what the checkout would charge.

Pure (no I/O), shared by the staff page (``app/tax/pages.py``, via ``app/tax/form.py``) and the JSON API.
The shape is the one the checkout reads from ``stores.settings``::

    {"prices_include_tax": True, "shipping_tax_class": "standard",
     "rules": {"default_class": "standard", "classes": ["standard", "reduced"],
               "jurisdictions": [{"country": "DE", "region": "", "name": "MwSt",
                                  "rates": {"standard": 1900, "reduced": 700}}]}}

``validate_tax_settings`` answers the settings keys to store: ``tax`` (the rules ``BuiltinTax`` reads),
``prices_include_tax`` and ``shipping_tax_class``. Rates are integer basis points (1900 = 19 %);
``parse_rate_percent`` turns a merchant's "7.5" into 750 without floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.core.errors import ValidationFailed
from app.core.money import Money, minor_digits
from app.tax.providers import BPS, DEFAULT_TAX_RULES, EXEMPT_CLASS, BuiltinTax, TaxableLine

__all__ = [
    "EXEMPT_CLASS",
    "MAX_CLASSES",
    "MAX_JURISDICTIONS",
    "PreviewLine",
    "TaxPreview",
    "default_tax_class",
    "format_rate_percent",
    "parse_rate_percent",
    "preview_tax",
    "sample_amounts",
    "store_tax_classes",
    "tax_classes_of",
    "validate_tax_settings",
]

CHECK_FIELDS = "Check the highlighted fields."
MAX_CLASSES = 20
MAX_JURISDICTIONS = 300
MAX_NAME = 40
CLASS_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_REGION = re.compile(r"[A-Z0-9-]{1,10}")
_PERCENT = re.compile(r"\s*(-)?\s*(\d{1,6})(?:[.,](\d*))?\s*%?\s*")

CLASS_NAME_HINT = "Use lowercase letters, digits, - and _ (up to 40), starting with a letter or digit."
SAMPLE_LINE = Decimal("10.00")
SAMPLE_SHIPPING = Decimal("4.90")
SHIPPING_KEY = "shipping"


# --- rates as text --------------------------------------------------------------------------------


def parse_rate_percent(text: str) -> int:
    """A percentage as typed ("19", "7.5", "7,5", "8.88 %") → basis points (1900, 750, 750, 888).

    Integer arithmetic only; raises ``ValueError`` with a message for the merchant when it is not a rate
    of 0 to 100 % with at most two decimals."""
    match = _PERCENT.fullmatch(text or "")
    if not match:
        raise ValueError("Enter a rate in percent, such as 19 or 7.5.")
    sign, whole, fraction = match.groups()
    fraction = fraction or ""
    if len(fraction) > 2 and fraction[2:].strip("0"):
        raise ValueError("Use at most two decimals, such as 8.88.")
    bps = int(whole) * 100 + int((fraction[:2] or "0").ljust(2, "0"))
    if sign and bps:
        raise ValueError("A rate can't be negative.")
    if bps > BPS:
        raise ValueError("A rate can't be over 100 %.")
    return bps


def format_rate_percent(bps: int) -> str:
    """Basis points as the merchant types them: 1900 → "19", 750 → "7.5", 888 → "8.88"."""
    whole, fraction = divmod(bps, 100)
    return f"{whole}.{fraction:02d}".rstrip("0").rstrip(".") if fraction else str(whole)


# --- classes ---------------------------------------------------------------------------------------


def tax_classes_of(rules: Mapping[str, Any]) -> list[str]:
    """The tax classes a rules table defines, in order: its ``classes`` list when it has one, else the
    default class and then every class some jurisdiction has a rate for."""
    explicit = rules.get("classes")
    if isinstance(explicit, list) and all(isinstance(c, str) for c in explicit):
        return list(dict.fromkeys(explicit))
    found: dict[str, None] = {}
    default = rules.get("default_class", "standard")
    if isinstance(default, str) and default:
        found[default] = None
    for jurisdiction in rules.get("jurisdictions", []) or []:
        rates = jurisdiction.get("rates") if isinstance(jurisdiction, Mapping) else None
        if isinstance(rates, Mapping):
            found.update(dict.fromkeys(str(c) for c in rates))
    return list(found)


def store_tax_classes(store_settings: Mapping[str, Any]) -> list[str]:
    """The classes a product of this store may have: the store's own, then ``exempt`` (never taxed)."""
    rules = store_settings.get("tax", DEFAULT_TAX_RULES)
    own = tax_classes_of(rules) if isinstance(rules, Mapping) else []
    return [*[c for c in own if c != EXEMPT_CLASS], EXEMPT_CLASS]


def default_tax_class(store_settings: Mapping[str, Any]) -> str:
    """The class a new product starts with: the store's default class."""
    rules = store_settings.get("tax", DEFAULT_TAX_RULES)
    default = rules.get("default_class") if isinstance(rules, Mapping) else None
    return default if isinstance(default, str) and default else "standard"


# --- validation ------------------------------------------------------------------------------------


def _class_name(value: object) -> str | None:
    return value if isinstance(value, str) and CLASS_NAME.fullmatch(value) and value != EXEMPT_CLASS else None


def _class_problem(value: object) -> str:
    if value == EXEMPT_CLASS:
        return f"“{EXEMPT_CLASS}” is built in (never taxed); choose another name."
    if not isinstance(value, str) or not value.strip():
        return "Enter a name for this tax class."
    return CLASS_NAME_HINT


def _classes(rules: Mapping[str, Any], errors: dict[str, str]) -> list[str]:
    raw = rules.get("classes")
    if raw is None:
        return [c for c in tax_classes_of(rules) if _class_name(c)]
    if not isinstance(raw, list):
        errors["rules.classes"] = "Give the tax classes as a list of names."
        return []
    if len(raw) > MAX_CLASSES:
        errors["rules.classes"] = f"Keep it to {MAX_CLASSES} tax classes."
    classes: list[str] = []
    for i, name in enumerate(raw):
        if _class_name(name) is None:
            errors[f"rules.classes.{i}"] = _class_problem(name)
        elif name in classes:
            errors[f"rules.classes.{i}"] = f"“{name}” is listed twice."
        else:
            classes.append(name)
    if not raw:
        errors["rules.classes"] = "Add at least one tax class."
    return classes


def _jurisdiction(
    raw: object, at: str, classes: Sequence[str], default_class: str | None, errors: dict[str, str]
) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        errors[at] = "Give each jurisdiction as an object with country, region, name and rates."
        return None
    country = raw.get("country")
    country = country.strip().upper() if isinstance(country, str) else ""
    if not _COUNTRY.fullmatch(country):
        errors[f"{at}.country"] = "Enter a two-letter country code such as DE."
    region = raw.get("region") or ""
    region = region.strip().upper() if isinstance(region, str) else None
    if region is None or (region and not _REGION.fullmatch(region)):
        errors[f"{at}.region"] = "Leave empty, or enter a region code such as NY (letters, digits, -; up to 10)."
    name = raw.get("name")
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        errors[f"{at}.name"] = "Enter the tax's name as receipts show it, such as VAT or MwSt."
    elif len(name) > MAX_NAME:
        errors[f"{at}.name"] = f"Keep the name under {MAX_NAME + 1} characters."
    rates_raw = raw.get("rates")
    rates: dict[str, int] = {}
    if not isinstance(rates_raw, Mapping):
        errors[f"{at}.rates"] = "Give the rates as an object of tax class → basis points."
    else:
        for tax_class, bps in rates_raw.items():
            where = f"{at}.rates.{tax_class}"
            if _class_name(tax_class) is None:
                errors[where] = _class_problem(tax_class)
            elif tax_class not in classes:
                errors[where] = f"“{tax_class}” is not one of the tax classes ({', '.join(classes)})."
            elif isinstance(bps, bool) or not isinstance(bps, int):
                errors[where] = "Give the rate as whole basis points (1900 = 19 %)."
            elif bps < 0:
                errors[where] = "A rate can't be negative."
            elif bps > BPS:
                errors[where] = "A rate can't be over 100 %."
            else:
                rates[tax_class] = bps
        if default_class and default_class not in rates_raw:
            errors[f"{at}.rates.{default_class}"] = f"Enter the rate of the default class “{default_class}”."
    jurisdiction: dict[str, Any] = {"country": country, "region": region or "", "name": name, "rates": rates}
    own_default = raw.get("default_class")
    if own_default is not None:
        if own_default not in rates:
            errors[f"{at}.default_class"] = "Choose a class this jurisdiction has a rate for."
        jurisdiction["default_class"] = own_default
    return jurisdiction


def validate_tax_settings(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Check a store's tax settings (see the module's docstring for the shape); every problem at once.

    Answers the ``stores.settings`` keys ``{"tax": rules, "prices_include_tax": bool, "shipping_tax_class":
    str}``, normalised (codes upper case, names stripped, the class list explicit). Raises
    ``ValidationFailed`` whose ``fields`` are dotted paths: ``rules.jurisdictions.0.rates.reduced``."""
    errors: dict[str, str] = {}
    if not isinstance(payload, Mapping):
        raise ValidationFailed(CHECK_FIELDS, fields={"rules": "Send the tax settings as an object."})
    include = payload.get("prices_include_tax")
    if not isinstance(include, bool):
        errors["prices_include_tax"] = "Say whether your prices include tax (true or false)."
    rules = payload.get("rules")
    if not isinstance(rules, Mapping):
        errors["rules"] = "Send the rules as an object with default_class and jurisdictions."
        raise ValidationFailed(CHECK_FIELDS, fields=errors)
    classes = _classes(rules, errors)
    default_class = rules.get("default_class")
    if not isinstance(default_class, str) or default_class not in classes:
        errors["rules.default_class"] = f"Choose the default class among the tax classes ({', '.join(classes)})."
        default_class = None
    raw_jurisdictions = rules.get("jurisdictions", [])
    jurisdictions: list[dict[str, Any]] = []
    if not isinstance(raw_jurisdictions, list):
        errors["rules.jurisdictions"] = "Give the jurisdictions as a list."
        raw_jurisdictions = []
    elif len(raw_jurisdictions) > MAX_JURISDICTIONS:
        errors["rules.jurisdictions"] = f"Keep it to {MAX_JURISDICTIONS} jurisdictions."
    seen: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(raw_jurisdictions):
        at = f"rules.jurisdictions.{i}"
        jurisdiction = _jurisdiction(raw, at, classes, default_class, errors)
        if jurisdiction is None:
            continue
        key = (jurisdiction["country"], jurisdiction["region"])
        if key in seen and f"{at}.country" not in errors:
            place = f"{key[0]} {key[1]}".strip()
            errors[f"{at}.country"] = f"{place} is listed twice (also row {seen[key] + 1}); keep one."
        seen.setdefault(key, i)
        jurisdictions.append(jurisdiction)
    shipping = payload.get("shipping_tax_class")
    if not isinstance(shipping, str) or (shipping not in classes and shipping != EXEMPT_CLASS):
        errors["shipping_tax_class"] = (
            f"Choose the class shipping is taxed as: one of the tax classes ({', '.join(classes)}) or exempt."
        )
    if errors:
        raise ValidationFailed(CHECK_FIELDS, fields=errors)
    assert default_class is not None and isinstance(shipping, str) and isinstance(include, bool)
    tax = {"default_class": default_class, "classes": classes, "jurisdictions": jurisdictions}
    try:
        BuiltinTax(tax, "EUR")  # what the checkout will parse; the checks above should leave nothing for it
    except ValueError as exc:
        raise ValidationFailed(CHECK_FIELDS, fields={"rules": str(exc)}) from exc
    return {"tax": tax, "prices_include_tax": include, "shipping_tax_class": shipping}


def tax_payload_of(store_settings: Mapping[str, Any]) -> dict[str, Any]:
    """The store's current tax settings in ``validate_tax_settings``'s shape (defaults where none are saved)."""
    rules = store_settings.get("tax", DEFAULT_TAX_RULES)
    return {
        "prices_include_tax": bool(store_settings.get("prices_include_tax", True)),
        "shipping_tax_class": str(store_settings.get("shipping_tax_class", "standard")),
        "rules": {**rules, "classes": tax_classes_of(rules)} if isinstance(rules, Mapping) else {},
    }


# --- preview ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewLine:
    label: str
    tax_class: str
    price: Money  # as the shopper sees it: with tax when prices include tax
    net: Money
    tax: Money
    rate_bps: int
    tax_name: str

    @property
    def rate_text(self) -> str:
        return format_rate_percent(self.rate_bps)


@dataclass(frozen=True)
class TaxPreview:
    country: str
    prices_include_tax: bool
    lines: tuple[PreviewLine, ...]
    net_total: Money
    tax_total: Money
    total: Money  # what the shopper pays


def _sample(amount: Decimal, currency: str) -> Money:
    digits = minor_digits(currency)
    return Money(int(amount.scaleb(digits).quantize(Decimal(1), rounding=ROUND_HALF_UP)), currency)


def sample_amounts(currency: str) -> tuple[Money, Money]:
    """The preview's item price and shipping cost in ``currency`` (10.00 and 4.90, rounded to its digits)."""
    return _sample(SAMPLE_LINE, currency), _sample(SAMPLE_SHIPPING, currency)


def preview_tax(settings: Mapping[str, Any], currency: str, country: str, region: str = "") -> TaxPreview:
    """A sample basket quoted by the real ``BuiltinTax``: one 10.00 line per tax class and 4.90 shipping in
    the shipping class, delivered to ``country``. ``settings`` is ``validate_tax_settings``'s answer."""
    rules = settings["tax"]
    include = bool(settings["prices_include_tax"])
    shipping_class = str(settings["shipping_tax_class"])
    classes = tax_classes_of(rules)
    item, shipping = sample_amounts(currency)
    lines = [TaxableLine(f"class:{c}", item, c) for c in classes]
    lines.append(TaxableLine(SHIPPING_KEY, shipping, shipping_class))
    quote = BuiltinTax(rules, currency).quote(lines, country=country, region=region, prices_include_tax=include)
    shown = tuple(
        PreviewLine(
            label="Shipping" if taxed.key == SHIPPING_KEY else f"Item in “{taxed.tax_class}”",
            tax_class=taxed.tax_class,
            price=line.amount,
            net=taxed.taxable,
            tax=taxed.tax,
            rate_bps=taxed.rate_bps,
            tax_name=taxed.name,
        )
        for line, taxed in zip(lines, quote.lines, strict=True)
    )
    return TaxPreview(
        country=country.strip().upper(),
        prices_include_tax=include,
        lines=shown,
        net_total=quote.net_total,
        tax_total=quote.total_tax,
        total=quote.gross_total,
    )
