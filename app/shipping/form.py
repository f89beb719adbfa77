"""The shipping settings page's form ↔ ``validate_shipping_config``'s shape, and its errors back to the fields.

Pure. Amounts are typed in the store's currency ("4.90"; "500" for JPY) and read with ``parse_amount``.
Rows need no JavaScript: each zone shows its prices plus an empty one, and an empty zone follows the last.

- ``pickup_enabled`` ("on"), ``pickup_label``, ``pickup_instructions``;
- ``flat_enabled``, ``flat_label``, ``flat_amount``, ``flat_days``; ``free_over`` (store-wide);
- ``zones-I-code|label|countries|free_over|never_free|remove`` and the zone's prices
  ``zones-I-rates-J-code|label|max_weight_grams|amount|days|remove``;
- ``local_enabled``, ``local_label``, ``local_countries``, ``local_postal_codes``, ``local_amount``,
  ``local_free_over``, ``local_days``;
- the preview's ``preview_country``, ``preview_postal_code``, ``preview_weight``, ``preview_subtotal``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import ValidationFailed
from app.core.money import amount_text, parse_amount
from app.shipping.settings import CHECK_FIELDS, validate_shipping_config

__all__ = [
    "PreviewInput",
    "ShippingFormReading",
    "bracket_rows",
    "read_preview",
    "read_shipping_form",
    "shipping_form_values",
    "shipping_settings_from_form",
    "zone_rows",
]

_SPLIT = re.compile(r"[\s,;]+")
_SIMPLE = {"pickup": "pickup", "flat": "flat", "local_delivery": "local"}
_FIELD_NAMES = {"amount_minor": "amount", "free_over_minor": "free_over"}
_BRACKET_FIELDS = ("code", "label", "max_weight_grams", "amount", "days")
_ZONE_FIELDS = ("code", "label", "countries", "free_over")


def _text(form: Mapping[str, str], key: str) -> str:
    return (form.get(key) or "").strip()


def _indexes(form: Mapping[str, str], pattern: str) -> list[int]:
    compiled = re.compile(pattern)
    return sorted({int(m.group(1)) for key in form if (m := compiled.match(key))})


def _zone_indexes(form: Mapping[str, str]) -> list[int]:
    return _indexes(form, r"zones-(\d{1,3})-")


def _bracket_indexes(form: Mapping[str, str], zone: int) -> list[int]:
    return _indexes(form, rf"zones-{zone}-rates-(\d{{1,3}})-")


def _bracket_blank(form: Mapping[str, str], zone: int, j: int) -> bool:
    return not any(_text(form, f"zones-{zone}-rates-{j}-{name}") for name in _BRACKET_FIELDS)


def _zone_blank(form: Mapping[str, str], zone: int) -> bool:
    own = any(_text(form, f"zones-{zone}-{name}") for name in (*_ZONE_FIELDS, "never_free"))
    return not own and all(_bracket_blank(form, zone, j) for j in _bracket_indexes(form, zone))


@dataclass
class ShippingFormReading:
    payload: dict[str, Any]
    errors: dict[str, str]  # by form field name
    zone_rows: list[int] = field(default_factory=list)  # the payload's zone i is form row zone_rows[i]
    bracket_rows: dict[int, list[int]] = field(default_factory=dict)  # form zone row → its payload rates' rows

    def field_for(self, path: str) -> str:
        """The form field showing a ``validate_shipping_config`` error at ``path``."""
        parts = path.split(".")
        if parts[0] in _SIMPLE and len(parts) >= 2:
            return f"{_SIMPLE[parts[0]]}_{_FIELD_NAMES.get(parts[1], parts[1])}"
        if path == "free_over_minor":
            return "free_over"
        if parts[0] == "zones" and len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(self.zone_rows):
            row = self.zone_rows[int(parts[1])]
            if len(parts) == 2:
                return f"zones-{row}-code"
            if parts[2] == "rates":
                rows = self.bracket_rows.get(row, [])
                if len(parts) >= 4 and parts[3].isdigit() and int(parts[3]) < len(rows):
                    name = _FIELD_NAMES.get(parts[4], parts[4]) if len(parts) >= 5 else "code"
                    return f"zones-{row}-rates-{rows[int(parts[3])]}-{name}"
                return f"zones-{row}-rates"
            return f"zones-{row}-{_FIELD_NAMES.get(parts[2], parts[2])}"
        return "zones" if parts[0] == "zones" else "form"

    def form_errors(self, fields: Mapping[str, str]) -> dict[str, str]:
        mapped = dict(self.errors)
        for path, message in fields.items():
            mapped.setdefault(self.field_for(path), message)
        return mapped


def read_shipping_form(form: Mapping[str, str], currency: str) -> ShippingFormReading:
    """The form's values in ``validate_shipping_config``'s shape; amounts read in ``currency``."""
    errors: dict[str, str] = {}
    example = amount_text(490, currency)

    def amount(key: str) -> int | None:
        text = _text(form, key)
        if not text:
            return None
        value = parse_amount(text, currency)
        if value is None:
            errors[key] = f"Enter an amount such as {example}."
        return value

    def whole(key: str, message: str) -> int | None:
        text = _text(form, key)
        if not text:
            return None
        if not re.fullmatch(r"-?\d{1,9}", text):
            errors[key] = message
            return None
        return int(text)

    def words(key: str) -> list[str]:
        return [w for w in _SPLIT.split(_text(form, key)) if w]

    def days(key: str) -> int | None:
        return whole(key, "Enter whole days, such as 2.")

    def optional(section: dict[str, Any], key: str, value: int | None) -> None:
        if value is not None:
            section[key] = value

    pickup = {
        "enabled": bool(form.get("pickup_enabled")),
        "label": _text(form, "pickup_label"),
        "instructions": _text(form, "pickup_instructions"),
    }
    flat: dict[str, Any] = {"enabled": bool(form.get("flat_enabled")), "label": _text(form, "flat_label")}
    optional(flat, "amount_minor", amount("flat_amount"))
    optional(flat, "days", days("flat_days"))
    local: dict[str, Any] = {
        "enabled": bool(form.get("local_enabled")),
        "label": _text(form, "local_label"),
        "countries": words("local_countries"),
        "postal_codes": words("local_postal_codes"),
        "free_over_minor": amount("local_free_over"),
    }
    optional(local, "amount_minor", amount("local_amount"))
    optional(local, "days", days("local_days"))

    zones: list[dict[str, Any]] = []
    zone_rows: list[int] = []
    bracket_rows: dict[int, list[int]] = {}
    for i in _zone_indexes(form):
        if form.get(f"zones-{i}-remove") or _zone_blank(form, i):
            continue
        pre = f"zones-{i}-"
        rates: list[dict[str, Any]] = []
        bracket_rows[i] = []
        for j in _bracket_indexes(form, i):
            at = f"{pre}rates-{j}-"
            if form.get(f"{at}remove") or _bracket_blank(form, i, j):
                continue
            rate: dict[str, Any] = {"code": _text(form, f"{at}code") or "standard", "label": _text(form, f"{at}label")}
            optional(rate, "max_weight_grams", whole(f"{at}max_weight_grams", "Enter whole grams, such as 1000."))
            optional(rate, "amount_minor", amount(f"{at}amount"))
            optional(rate, "days", days(f"{at}days"))
            if not rate["label"]:
                rate["label"] = rate["code"].replace("_", " ").capitalize()
            rates.append(rate)
            bracket_rows[i].append(j)
        zone: dict[str, Any] = {
            "code": _text(form, f"{pre}code").lower(),
            "label": _text(form, f"{pre}label"),
            "countries": words(f"{pre}countries"),
            "rates": rates,
        }
        free_over = amount(f"{pre}free_over")
        if form.get(f"{pre}never_free"):
            if free_over is not None:
                errors[f"{pre}free_over"] = "Leave this empty when the zone is never free."
            zone["free_over_minor"] = None
        elif free_over is not None:
            zone["free_over_minor"] = free_over
        zones.append(zone)
        zone_rows.append(i)
    payload = {
        "pickup": pickup,
        "flat": flat,
        "free_over_minor": amount("free_over"),
        "zones": zones,
        "local_delivery": local,
    }
    return ShippingFormReading(payload, errors, zone_rows, bracket_rows)


def shipping_settings_from_form(form: Mapping[str, str], currency: str) -> dict[str, Any]:
    """The config to save from a submitted form, or ``ValidationFailed`` keyed by form field names."""
    reading = read_shipping_form(form, currency)
    try:
        config = validate_shipping_config(reading.payload, currency)
    except ValidationFailed as exc:
        raise ValidationFailed(CHECK_FIELDS, fields=reading.form_errors(exc.fields)) from exc
    if reading.errors:
        raise ValidationFailed(CHECK_FIELDS, fields=reading.errors)
    return config


def shipping_form_values(config: Mapping[str, Any], currency: str) -> dict[str, str]:
    """The form's values for a stored config (``DEFAULT_SHIPPING_CONFIG``'s shape)."""

    def money(value: object) -> str:
        return amount_text(value, currency) if isinstance(value, int) and not isinstance(value, bool) else ""

    def number(value: object) -> str:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""

    def section(key: str) -> Mapping[str, Any]:
        value = config.get(key)
        return value if isinstance(value, Mapping) else {}

    pickup, flat, local = section("pickup"), section("flat"), section("local_delivery")
    values = {
        "pickup_enabled": "on" if pickup.get("enabled") else "",
        "pickup_label": str(pickup.get("label") or "Pickup in store"),
        "pickup_instructions": str(pickup.get("instructions") or ""),
        "flat_enabled": "on" if flat.get("enabled") else "",
        "flat_label": str(flat.get("label") or "Standard shipping"),
        "flat_amount": money(flat.get("amount_minor")),
        "flat_days": number(flat.get("days")),
        "free_over": money(config.get("free_over_minor")),
        "local_enabled": "on" if local.get("enabled") else "",
        "local_label": str(local.get("label") or "Local delivery"),
        "local_countries": ", ".join(local.get("countries") or []),
        "local_postal_codes": ", ".join(local.get("postal_codes") or []),
        "local_amount": money(local.get("amount_minor")),
        "local_free_over": money(local.get("free_over_minor")),
        "local_days": number(local.get("days")),
    }
    zones = config.get("zones")
    for i, zone in enumerate(zones if isinstance(zones, list) else []):
        pre = f"zones-{i}-"
        values |= {
            f"{pre}code": str(zone.get("code") or ""),
            f"{pre}label": str(zone.get("label") or ""),
            f"{pre}countries": ", ".join(zone.get("countries") or []),
            f"{pre}free_over": money(zone.get("free_over_minor")),
            f"{pre}never_free": "on" if "free_over_minor" in zone and zone["free_over_minor"] is None else "",
        }
        for j, rate in enumerate(zone.get("rates") or []):
            at = f"{pre}rates-{j}-"
            values |= {
                f"{at}code": str(rate.get("code") or ""),
                f"{at}label": str(rate.get("label") or ""),
                f"{at}max_weight_grams": number(rate.get("max_weight_grams")),
                f"{at}amount": money(rate.get("amount_minor")),
                f"{at}days": number(rate.get("days")),
            }
    return values


def zone_rows(values: Mapping[str, str]) -> list[int]:
    """The zone rows to show: every zone with something in it, then an empty one to add a zone."""
    present = _zone_indexes(values)
    return [*[i for i in present if not _zone_blank(values, i)], (max(present) + 1) if present else 0]


def bracket_rows(values: Mapping[str, str], zone: int) -> list[int]:
    """A zone's price rows to show: each filled one, then an empty one (two for a new zone)."""
    present = _bracket_indexes(values, zone)
    used = [j for j in present if not _bracket_blank(values, zone, j)]
    start = (max(present) + 1) if present else 0
    return [*used, start] if used else [start, start + 1]


@dataclass(frozen=True)
class PreviewInput:
    country: str
    postal_code: str
    weight_grams: int
    subtotal_minor: int


def read_preview(form: Mapping[str, str], currency: str, default_country: str) -> tuple[PreviewInput, dict[str, str]]:
    """The preview's sample address and basket (defaults: the store's country, 500 g, 20.00), and what's wrong."""
    errors: dict[str, str] = {}
    country = _text(form, "preview_country").upper() or default_country
    if not re.fullmatch(r"[A-Z]{2}", country):
        errors["preview_country"] = "Enter a two-letter country code, such as DE."
    weight_text = _text(form, "preview_weight") or "500"
    if not weight_text.isdigit() or int(weight_text) > 10_000_000:
        errors["preview_weight"] = "Enter the basket's weight in whole grams, such as 500."
    subtotal_text = _text(form, "preview_subtotal") or amount_text(2000, currency)
    subtotal = parse_amount(subtotal_text, currency)
    if subtotal is None or subtotal < 0:
        errors["preview_subtotal"] = f"Enter the basket's value, such as {amount_text(2000, currency)}."
    inputs = PreviewInput(
        country=country,
        postal_code=_text(form, "preview_postal_code"),
        weight_grams=int(weight_text) if not errors.get("preview_weight") else 0,
        subtotal_minor=subtotal if subtotal is not None and subtotal >= 0 else 0,
    )
    return inputs, errors
