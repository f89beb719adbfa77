"""A store's shipping settings: validate what a merchant sends, and preview the rates an address gets.

Pure (no I/O), shared by the staff page (``app/shipping/pages.py``, via ``app/shipping/form.py``) and the
JSON API. The shape is ``DEFAULT_SHIPPING_CONFIG``'s (``app/shipping/providers.py``), which the checkout's
``BuiltinShipping`` reads from ``stores.settings["shipping"]``; amounts are integer minor units of the
store's currency. ``BuiltinShipping`` stops at the first problem; ``validate_shipping_config`` names every
one, by dotted path (``zones.0.rates.1.amount_minor``), in words for the merchant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.core.errors import ValidationFailed
from app.core.money import Money, amount_text
from app.shipping.addresses import SUPPORTED_COUNTRIES, Address, normalise_postal_code
from app.shipping.providers import DEFAULT_SHIPPING_CONFIG, BuiltinShipping, ShipmentItem, ShippingRate

__all__ = [
    "KNOWN_KEYS",
    "MAX_AMOUNT_MINOR",
    "preview_shipping",
    "shipping_config_of",
    "validate_shipping_config",
]

CHECK_FIELDS = "Check the highlighted fields."
CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
POSTAL_PATTERN = re.compile(r"[A-Z0-9-]{1,10}\*?")
MAX_AMOUNT_MINOR = 100_000_000
MAX_GRAMS = 1_000_000
MAX_DAYS = 365
MAX_LABEL = 80
MAX_INSTRUCTIONS = 500
MAX_ZONES = 50
MAX_RATES = 50
MAX_POSTAL_CODES = 500
# The top-level keys (and pickup's) this module owns; the page keeps any other key a store has as it is.
KNOWN_KEYS = frozenset({"pickup", "flat", "free_over_minor", "zones", "local_delivery"})
KNOWN_PICKUP_KEYS = frozenset({"enabled", "label", "instructions", "days"})
SUPPORTED_TEXT = ", ".join(sorted(SUPPORTED_COUNTRIES))


class _Check:
    """Collects problems by path while reading a payload."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.errors: dict[str, str] = {}

    def fail(self, path: str, message: str) -> None:
        known = self.errors.get(path)
        self.errors[path] = message if known is None or message in known else f"{known} {message}"

    def section(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(key, "Give this section as an object.")
            return {}
        return value

    def flag(self, raw: Mapping[str, Any], key: str, path: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            self.fail(path, "Choose on or off (true or false).")
            return False
        return value

    def label(self, value: object, path: str, default: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "Enter the name shoppers see for this option.")
            return default
        if len(value.strip()) > MAX_LABEL:
            self.fail(path, f"Keep it under {MAX_LABEL + 1} characters.")
        return value.strip()

    def code(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not CODE.fullmatch(value.strip()):
            self.fail(path, "Use lowercase letters, digits, - and _ (up to 40), such as eu or express.")
            return ""
        return value.strip()

    def amount(self, value: object, path: str, *, required: str | None = None) -> int | None:
        """Minor units ≥ 0; ``required`` is the message when it is missing (else None is allowed)."""
        if value is None:
            if required:
                self.fail(path, required)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(
                path, f"Give the amount in minor units of {self.currency} (490 = {amount_text(490, self.currency)})."
            )
            return None
        if value < 0:
            self.fail(path, "An amount can't be negative.")
            return None
        if value > MAX_AMOUNT_MINOR:
            self.fail(path, f"Enter at most {amount_text(MAX_AMOUNT_MINOR, self.currency)}.")
            return None
        return value

    def whole(self, value: object, path: str, *, minimum: int, maximum: int, what: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.fail(path, f"Enter {what} from {minimum} to {maximum}.")
            return None
        return value

    def days(self, raw: Mapping[str, Any], path: str) -> int | None:
        return self.whole(raw.get("days"), path, minimum=0, maximum=MAX_DAYS, what="whole days")

    def countries(self, value: object, path: str, *, required: bool) -> list[str]:
        if value is None:
            value = []
        if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
            self.fail(path, "Give the countries as a list of two-letter codes.")
            return []
        codes = list(dict.fromkeys(c.strip().upper() for c in value if c.strip()))
        unknown = [c for c in codes if c not in SUPPORTED_COUNTRIES]
        if unknown:
            names = ", ".join(unknown)
            self.fail(path, f"We can't deliver to {names} yet. Use two-letter codes of: {SUPPORTED_TEXT}.")
        elif required and not codes:
            self.fail(path, "Enter at least one country code, such as DE.")
        return [c for c in codes if c in SUPPORTED_COUNTRIES]


def _pickup(check: _Check, config: Mapping[str, Any]) -> dict[str, Any]:
    raw = check.section(config, "pickup")
    instructions = raw.get("instructions", "")
    if not isinstance(instructions, str):
        check.fail("pickup.instructions", "Enter the instructions as text.")
        instructions = ""
    elif len(instructions.strip()) > MAX_INSTRUCTIONS:
        check.fail("pickup.instructions", f"Keep the instructions under {MAX_INSTRUCTIONS + 1} characters.")
    pickup = {
        "enabled": check.flag(raw, "enabled", "pickup.enabled"),
        "label": check.label(raw.get("label"), "pickup.label", "Pickup in store"),
        "instructions": instructions.strip(),
    }
    if raw.get("days") is not None:
        pickup["days"] = check.days(raw, "pickup.days")
    return pickup


def _flat(check: _Check, config: Mapping[str, Any]) -> dict[str, Any]:
    raw = check.section(config, "flat")
    enabled = check.flag(raw, "enabled", "flat.enabled")
    required = "Enter the price of flat-rate shipping." if enabled else None
    return {
        "enabled": enabled,
        "label": check.label(raw.get("label"), "flat.label", "Standard shipping"),
        "amount_minor": check.amount(raw.get("amount_minor"), "flat.amount_minor", required=required) or 0,
        "days": check.days(raw, "flat.days"),
    }


def _bracket(check: _Check, raw: object, at: str) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        check.fail(at, "Give each rate as an object with code, label, max_weight_grams and amount_minor.")
        return None
    code = check.code(raw.get("code", "standard"), f"{at}.code")
    grams = raw.get("max_weight_grams")
    if grams is None:
        check.fail(f"{at}.max_weight_grams", "Enter the heaviest parcel this price is for, in grams.")
    max_weight = check.whole(grams, f"{at}.max_weight_grams", minimum=1, maximum=MAX_GRAMS, what="grams")
    return {
        "code": code,
        "label": check.label(raw.get("label"), f"{at}.label", code.replace("_", " ").capitalize() or "Standard"),
        "max_weight_grams": max_weight,
        "amount_minor": check.amount(raw.get("amount_minor"), f"{at}.amount_minor", required="Enter the price."),
        "days": check.days(raw, f"{at}.days"),
    }


def _zone(check: _Check, raw: object, at: str, taken: dict[str, str]) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        check.fail(at, "Give each zone as an object with code, label, countries and rates.")
        return None
    code = check.code(raw.get("code"), f"{at}.code")
    label = check.label(raw.get("label"), f"{at}.label", code.upper())
    countries = check.countries(raw.get("countries"), f"{at}.countries", required=True)
    for country in countries:
        if country in taken:
            check.fail(
                f"{at}.countries", f"{country} is in the zone “{taken[country]}” already; a country has one zone."
            )
    for country in countries:
        taken.setdefault(country, label)
    rates = raw.get("rates")
    brackets: list[dict[str, Any]] = []
    if not isinstance(rates, list) or not rates:
        check.fail(f"{at}.rates", "Add at least one price: a rate with a weight limit and an amount.")
        rates = []
    elif len(rates) > MAX_RATES:
        check.fail(f"{at}.rates", f"Keep it to {MAX_RATES} prices per zone.")
    seen: set[tuple[str, int]] = set()
    for j, rate in enumerate(rates):
        bracket = _bracket(check, rate, f"{at}.rates.{j}")
        if bracket is None:
            continue
        key = (bracket["code"], bracket["max_weight_grams"])
        if bracket["max_weight_grams"] is not None and key in seen:
            check.fail(
                f"{at}.rates.{j}.max_weight_grams",
                f"The “{bracket['code']}” rate has a price up to {bracket['max_weight_grams']} g already.",
            )
        seen.add(key)
        brackets.append(bracket)
    zone: dict[str, Any] = {"code": code, "label": label, "countries": countries, "rates": brackets}
    if "free_over_minor" in raw:  # absent: the store-wide threshold; null: never free in this zone
        zone["free_over_minor"] = check.amount(raw["free_over_minor"], f"{at}.free_over_minor")
    return zone


def _zones(check: _Check, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = config.get("zones", [])
    if not isinstance(raw, list):
        check.fail("zones", "Give the zones as a list.")
        return []
    if len(raw) > MAX_ZONES:
        check.fail("zones", f"Keep it to {MAX_ZONES} zones.")
    taken: dict[str, str] = {}
    codes: set[str] = set()
    zones: list[dict[str, Any]] = []
    for i, raw_zone in enumerate(raw):
        zone = _zone(check, raw_zone, f"zones.{i}", taken)
        if zone is None:
            continue
        if zone["code"] and zone["code"] in codes:
            check.fail(f"zones.{i}.code", f"Another zone has the code “{zone['code']}”.")
        codes.add(zone["code"])
        zones.append(zone)
    return zones


def _local(check: _Check, config: Mapping[str, Any]) -> dict[str, Any]:
    raw = check.section(config, "local_delivery")
    enabled = check.flag(raw, "enabled", "local_delivery.enabled")
    codes = raw.get("postal_codes", [])
    postal_codes: list[str] = []
    if not isinstance(codes, list | tuple) or not all(isinstance(c, str) for c in codes):
        check.fail("local_delivery.postal_codes", "Give the postal codes as a list.")
    else:
        compact = list(dict.fromkeys("".join(c.upper().split()) for c in codes if c.strip()))
        bad = [c for c in compact if not POSTAL_PATTERN.fullmatch(c)]
        if bad:
            check.fail(
                "local_delivery.postal_codes",
                f"Not a postal code or prefix: {', '.join(bad[:5])}. Enter codes such as 10115, or 104* for all "
                "that start with 104.",
            )
        elif len(compact) > MAX_POSTAL_CODES:
            check.fail("local_delivery.postal_codes", f"Keep it to {MAX_POSTAL_CODES} codes; use prefixes like 104*.")
        elif enabled and not compact:
            check.fail("local_delivery.postal_codes", "List the postal codes you deliver to.")
        postal_codes = compact
    required = "Enter the price of local delivery (0 for free)." if enabled else None
    return {
        "enabled": enabled,
        "label": check.label(raw.get("label"), "local_delivery.label", "Local delivery"),
        "countries": check.countries(raw.get("countries"), "local_delivery.countries", required=enabled),
        "postal_codes": postal_codes,
        "amount_minor": check.amount(raw.get("amount_minor"), "local_delivery.amount_minor", required=required) or 0,
        "free_over_minor": check.amount(raw.get("free_over_minor"), "local_delivery.free_over_minor"),
        "days": check.days(raw, "local_delivery.days"),
    }


def validate_shipping_config(payload: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """Check a store's shipping config (``DEFAULT_SHIPPING_CONFIG``'s shape, amounts in minor units of
    ``currency``); every problem at once. Answers the config to store as ``stores.settings["shipping"]``,
    normalised (every key present, codes upper case); raises ``ValidationFailed`` with dotted paths."""
    if not isinstance(payload, Mapping):
        raise ValidationFailed(CHECK_FIELDS, fields={"form": "Send the shipping settings as an object."})
    check = _Check(Money.zero(currency).currency)
    config: dict[str, Any] = {
        "pickup": _pickup(check, payload),
        "flat": _flat(check, payload),
        "free_over_minor": check.amount(payload.get("free_over_minor"), "free_over_minor"),
        "zones": _zones(check, payload),
        "local_delivery": _local(check, payload),
    }
    offered = (
        config["pickup"]["enabled"]
        or config["flat"]["enabled"]
        or config["zones"]
        or config["local_delivery"]["enabled"]
    )
    if not offered:
        check.fail(
            "pickup.enabled", "Offer at least one way to get an order: pickup, flat rate, a zone or local delivery."
        )
    if check.errors:
        raise ValidationFailed(CHECK_FIELDS, fields=check.errors)
    try:
        BuiltinShipping(config, currency)  # what the checkout will parse; the checks above leave nothing for it
    except ValueError as exc:
        raise ValidationFailed(CHECK_FIELDS, fields={"form": str(exc)}) from exc
    return config


def shipping_config_of(store_settings: Mapping[str, Any]) -> dict[str, Any]:
    """The store's shipping config as the checkout reads it (the built-in default when none is saved)."""
    config = store_settings.get("shipping", DEFAULT_SHIPPING_CONFIG)
    return dict(config) if isinstance(config, Mapping) else {}


def merged_shipping_config(current: Mapping[str, Any], validated: Mapping[str, Any]) -> dict[str, Any]:
    """``validated`` over the stored config: keys this module doesn't own (another feature's) are kept."""
    merged = {key: value for key, value in current.items() if key not in KNOWN_KEYS} | dict(validated)
    old_pickup = current.get("pickup")
    if isinstance(old_pickup, Mapping):
        kept = {key: value for key, value in old_pickup.items() if key not in KNOWN_PICKUP_KEYS}
        merged["pickup"] = kept | dict(validated["pickup"])
    return merged


def preview_shipping(
    config: Mapping[str, Any], currency: str, *, country: str, postal_code: str, weight_grams: int, subtotal_minor: int
) -> list[ShippingRate]:
    """The rates the checkout's ``BuiltinShipping`` offers for a parcel of ``weight_grams`` and a basket of
    ``subtotal_minor`` going to ``country`` / ``postal_code`` (pickup included), cheapest first."""
    country = country.strip().upper()
    destination = Address(
        name="",
        line1="",
        line2="",
        city="",
        region="",
        postal_code=normalise_postal_code(country, postal_code) or postal_code.strip(),
        country=country,
    )
    return BuiltinShipping(config, currency).quote_rates(
        destination=destination,
        items=[ShipmentItem(weight_grams=weight_grams, quantity=1)],
        subtotal=Money(subtotal_minor, currency),
    )
