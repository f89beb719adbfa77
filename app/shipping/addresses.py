"""Postal addresses: parse shopper input into a normalised, validated ``Address``.

Pure: no database, no I/O. Every problem is reported at once, per field, in words a
shopper understands (``ValidationFailed.fields``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from app.core.errors import ValidationFailed

__all__ = ["SUPPORTED_COUNTRIES", "Address", "normalise_postal_code", "parse_address"]

SUPPORTED_COUNTRIES: frozenset[str] = frozenset(
    {"DE", "AT", "FR", "NL", "BE", "IT", "ES", "GB", "IE", "US", "CA", "AU", "CH", "DK", "SE", "LU", "PT"}
)

MAX_FIELD_LENGTH = 200

# Countries where the state / province / territory is part of the address.
_REGION_LABEL: dict[str, str] = {"US": "state", "CA": "province", "AU": "state or territory"}


@dataclass(frozen=True)
class _PostalRule:
    """``pattern`` is matched against the code upper-cased with all spaces removed;
    the normalised code is its groups joined by one space."""

    pattern: re.Pattern[str]
    message: str


def _rule(pattern: str, message: str) -> _PostalRule:
    return _PostalRule(re.compile(pattern), message)


_POSTAL_RULES: dict[str, _PostalRule] = {
    "DE": _rule(r"(\d{5})", "Enter a German postal code such as 10115."),
    "AT": _rule(r"(\d{4})", "Enter an Austrian postal code such as 1010."),
    "FR": _rule(r"(\d{5})", "Enter a French postal code such as 75001."),
    "NL": _rule(r"([1-9]\d{3})([A-Z]{2})", "Enter a Dutch postal code such as 1012 AB."),
    "BE": _rule(r"(\d{4})", "Enter a Belgian postal code such as 1000."),
    "IT": _rule(r"(\d{5})", "Enter an Italian postal code such as 00184."),
    "ES": _rule(r"(\d{5})", "Enter a Spanish postal code such as 28001."),
    "CH": _rule(r"(\d{4})", "Enter a Swiss postal code such as 8001."),
    "DK": _rule(r"(\d{4})", "Enter a Danish postal code such as 1050."),
    "SE": _rule(r"(\d{3})(\d{2})", "Enter a Swedish postal code such as 111 22."),
    "LU": _rule(r"(\d{4})", "Enter a Luxembourg postal code such as 1009."),
    "PT": _rule(r"(\d{4}-\d{3})", "Enter a Portuguese postal code such as 1100-148."),
    "GB": _rule(r"([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})", "Enter a UK postcode such as SW1A 1AA."),
    "US": _rule(r"(\d{5}(?:-\d{4})?)", "Enter a ZIP code such as 10001 or 10001-1234."),
    "CA": _rule(r"([A-Z]\d[A-Z])(\d[A-Z]\d)", "Enter a Canadian postal code such as K1A 0B1."),
    "AU": _rule(r"(\d{4})", "Enter an Australian postcode such as 2000."),
}
_GENERIC_POSTAL = re.compile(r"[A-Z0-9][A-Z0-9 \-]{0,9}")
_PHONE = re.compile(r"\+?[0-9 ()\-/.]{3,30}")

_REQUIRED_MESSAGES: dict[str, str] = {
    "name": "Enter the recipient's name.",
    "line1": "Enter the street and house number.",
    "city": "Enter the town or city.",
    "postal_code": "Enter the postal code.",
    "country": "Choose a country.",
}


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    line2: str
    city: str
    region: str
    postal_code: str
    country: str  # ISO-3166 alpha-2, upper case
    phone: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def normalise_postal_code(country: str, postal_code: str) -> str | None:
    """The canonical form of ``postal_code`` for ``country``, or None if it is not valid there."""
    rule = _POSTAL_RULES.get(country)
    if rule is None:
        collapsed = " ".join(postal_code.upper().split())
        return collapsed if _GENERIC_POSTAL.fullmatch(collapsed) else None
    match = rule.pattern.fullmatch("".join(postal_code.upper().split()))
    return " ".join(match.groups()) if match else None


def parse_address(raw: Mapping[str, str]) -> Address:
    """Strip, normalise and validate ``raw``; raise ``ValidationFailed`` naming every bad field."""
    names = ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
    values = {key: (raw.get(key) or "").strip() for key in names}
    values["country"] = values["country"].upper()
    country = values["country"]
    errors: dict[str, str] = {}

    for key, message in _REQUIRED_MESSAGES.items():
        if not values[key]:
            errors[key] = message
    for key in names:
        if len(values[key]) > MAX_FIELD_LENGTH:
            errors[key] = f"Keep this under {MAX_FIELD_LENGTH} characters."

    if country and country not in SUPPORTED_COUNTRIES:
        errors["country"] = "We can't deliver to this country yet. Choose another country."
    elif country in _REGION_LABEL and not values["region"]:
        errors["region"] = f"Enter the {_REGION_LABEL[country]}."

    if values["postal_code"] and country in SUPPORTED_COUNTRIES and "postal_code" not in errors:
        normalised = normalise_postal_code(country, values["postal_code"])
        if normalised is None:
            rule = _POSTAL_RULES.get(country)
            errors["postal_code"] = rule.message if rule else "Enter a valid postal code."
        else:
            values["postal_code"] = normalised

    if values["phone"] and "phone" not in errors and not _PHONE.fullmatch(values["phone"]):
        errors["phone"] = "Enter a phone number using digits, such as +49 30 1234567."

    if errors:
        raise ValidationFailed("Check the address.", fields=errors)
    return Address(**values)
