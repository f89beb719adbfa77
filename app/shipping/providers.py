"""Built-in shipping: pickup, flat rate, zone + weight tables, local delivery by postal code.

Pure: the store's settings dict in, ``ShippingRate`` values out. All amounts are integer
minor units in the provider's currency.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

from app.core.errors import ValidationFailed
from app.core.money import Money
from app.shipping.addresses import SUPPORTED_COUNTRIES, Address

__all__ = [
    "DEFAULT_SHIPPING_CONFIG",
    "BuiltinShipping",
    "ShipmentItem",
    "ShippingProvider",
    "ShippingRate",
]

ShippingMethod = Literal["pickup", "flat", "table", "local_delivery"]

# A demo café in Berlin selling beans and merch, EUR.
DEFAULT_SHIPPING_CONFIG: dict[str, Any] = {
    "pickup": {"enabled": True, "label": "Pickup in store"},
    "flat": {"enabled": False, "label": "Standard shipping", "amount_minor": 490},
    "free_over_minor": 5000,
    "zones": [
        {
            "code": "de",
            "label": "Germany",
            "countries": ["DE"],
            "rates": [
                {"code": "standard", "label": "Standard", "max_weight_grams": 1000, "amount_minor": 490, "days": 2},
                {"code": "standard", "label": "Standard", "max_weight_grams": 5000, "amount_minor": 690, "days": 2},
                {"code": "standard", "label": "Standard", "max_weight_grams": 31500, "amount_minor": 1090, "days": 3},
                {"code": "express", "label": "Express", "max_weight_grams": 5000, "amount_minor": 1290, "days": 1},
            ],
        },
        {
            "code": "eu",
            "label": "EU",
            "countries": ["AT", "FR", "NL", "BE", "IT", "ES", "IE", "DK", "SE", "LU", "PT"],
            "rates": [
                {"code": "standard", "label": "Standard", "max_weight_grams": 1000, "amount_minor": 990, "days": 5},
                {"code": "standard", "label": "Standard", "max_weight_grams": 5000, "amount_minor": 1490, "days": 5},
                {"code": "standard", "label": "Standard", "max_weight_grams": 20000, "amount_minor": 2490, "days": 6},
            ],
        },
        {
            "code": "world",
            "label": "International",
            "countries": ["GB", "CH", "US", "CA", "AU"],
            "free_over_minor": None,
            "rates": [
                {"code": "standard", "label": "Standard", "max_weight_grams": 1000, "amount_minor": 1690, "days": 8},
                {"code": "standard", "label": "Standard", "max_weight_grams": 5000, "amount_minor": 3490, "days": 10},
            ],
        },
    ],
    "local_delivery": {
        "enabled": True,
        "label": "Bike courier",
        "countries": ["DE"],
        "postal_codes": ["10115", "10117", "10119", "104*", "10997", "10999"],
        "amount_minor": 350,
        "free_over_minor": 3000,
        "days": 0,
    },
}


@dataclass(frozen=True)
class ShipmentItem:
    weight_grams: int
    quantity: int


@dataclass(frozen=True)
class ShippingRate:
    code: str  # stable id: "pickup", "flat", "zone:<zone>:<rate>", "local"
    label: str  # shown to shoppers
    method: ShippingMethod
    amount: Money
    requires_address: bool
    estimated_days: int | None = None


class ShippingProvider(Protocol):
    def quote_rates(
        self, *, destination: Address | None, items: Sequence[ShipmentItem], subtotal: Money
    ) -> list[ShippingRate]: ...

    def rate(
        self, code: str, *, destination: Address | None, items: Sequence[ShipmentItem], subtotal: Money
    ) -> ShippingRate: ...


# --- config parsing ------------------------------------------------------------------------------

_CODE = re.compile(r"[a-z0-9_-]+")


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = config.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"shipping config: {key!r} must be an object, got {value!r}")
    return value


def _int(value: object, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"shipping config: {where} must be an integer >= {minimum}, got {value!r}")
    return value


def _opt_int(value: object, where: str) -> int | None:
    return None if value is None else _int(value, where)


def _str(value: object, where: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value.strip() or (pattern and not pattern.fullmatch(value)):
        rule = f" matching {pattern.pattern}" if pattern else ""
        raise ValueError(f"shipping config: {where} must be a non-empty string{rule}, got {value!r}")
    return value.strip()


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"shipping config: {where} must be true or false, got {value!r}")
    return value


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"shipping config: {where} must be a list, got {value!r}")
    return tuple(_str(item, f"{where}[{i}]") for i, item in enumerate(value))


@dataclass(frozen=True)
class _Simple:
    """Pickup and flat rate."""

    enabled: bool
    label: str
    amount_minor: int
    days: int | None


@dataclass(frozen=True)
class _Bracket:
    code: str
    label: str
    max_weight_grams: int
    amount_minor: int
    days: int | None


@dataclass(frozen=True)
class _Zone:
    code: str
    label: str
    countries: frozenset[str]
    brackets: tuple[_Bracket, ...]  # sorted by weight
    free_over_minor: int | None


@dataclass(frozen=True)
class _Local:
    enabled: bool
    label: str
    countries: frozenset[str]  # empty = any country
    postal_codes: tuple[str, ...]  # compact (upper case, no spaces); "101*" is a prefix
    amount_minor: int
    free_over_minor: int | None
    days: int | None

    def covers(self, destination: Address) -> bool:
        """True if the postal code is listed exactly or matches a ``prefix*`` pattern (in a listed country)."""
        if self.countries and destination.country not in self.countries:
            return False
        code = _compact(destination.postal_code)
        return any(code.startswith(p[:-1]) if p.endswith("*") else code == p for p in self.postal_codes)


def _compact(postal_code: str) -> str:
    return "".join(postal_code.upper().split())


def _countries(value: object, where: str) -> frozenset[str]:
    codes = _str_list(value, where)
    for code in codes:
        if code not in SUPPORTED_COUNTRIES:
            raise ValueError(f"shipping config: {where} has {code!r}, not a supported country")
    return frozenset(codes)


def _simple(config: Mapping[str, Any], key: str, default_label: str, *, priced: bool) -> _Simple:
    raw = _section(config, key)
    enabled = _bool(raw.get("enabled", False), f"{key}.enabled")
    return _Simple(
        enabled=enabled,
        label=_str(raw.get("label", default_label), f"{key}.label"),
        amount_minor=_required_amount(raw, key, enabled) if priced else 0,
        days=_opt_int(raw.get("days"), f"{key}.days"),
    )


def _required_amount(raw: Mapping[str, Any], key: str, enabled: bool) -> int:
    """An enabled method must state its price: a missing amount must not silently mean free."""
    return _int(raw.get("amount_minor", None if enabled else 0), f"{key}.amount_minor")


def _zone(raw: object, where: str, global_free_over: int | None) -> _Zone:
    if not isinstance(raw, Mapping):
        raise ValueError(f"shipping config: {where} must be an object, got {raw!r}")
    code = _str(raw.get("code"), f"{where}.code", _CODE)
    rates = raw.get("rates")
    if not isinstance(rates, list) or not rates:
        raise ValueError(f"shipping config: {where}.rates must be a non-empty list")
    brackets: list[_Bracket] = []
    for i, rate in enumerate(rates):
        at = f"{where}.rates[{i}]"
        if not isinstance(rate, Mapping):
            raise ValueError(f"shipping config: {at} must be an object, got {rate!r}")
        rate_code = _str(rate.get("code", "standard"), f"{at}.code", _CODE)
        bracket = _Bracket(
            code=rate_code,
            label=_str(rate.get("label", rate_code.replace("_", " ").capitalize()), f"{at}.label"),
            max_weight_grams=_int(rate.get("max_weight_grams"), f"{at}.max_weight_grams", minimum=1),
            amount_minor=_int(rate.get("amount_minor"), f"{at}.amount_minor"),
            days=_opt_int(rate.get("days"), f"{at}.days"),
        )
        if any((b.code, b.max_weight_grams) == (bracket.code, bracket.max_weight_grams) for b in brackets):
            raise ValueError(f"shipping config: {at} repeats max_weight_grams for rate {rate_code!r}")
        brackets.append(bracket)
    return _Zone(
        code=code,
        label=_str(raw.get("label", code.upper()), f"{where}.label"),
        countries=_countries(raw.get("countries"), f"{where}.countries"),
        brackets=tuple(sorted(brackets, key=lambda b: b.max_weight_grams)),
        free_over_minor=_opt_int(raw["free_over_minor"], f"{where}.free_over_minor")
        if "free_over_minor" in raw
        else global_free_over,
    )


def _zones(config: Mapping[str, Any], free_over: int | None) -> tuple[_Zone, ...]:
    raw = config.get("zones", [])
    if not isinstance(raw, list):
        raise ValueError(f"shipping config: 'zones' must be a list, got {raw!r}")
    zones = tuple(_zone(zone, f"zones[{i}]", free_over) for i, zone in enumerate(raw))
    seen_codes: set[str] = set()
    seen_countries: set[str] = set()
    for zone in zones:
        if zone.code in seen_codes:
            raise ValueError(f"shipping config: zone code {zone.code!r} is used twice")
        if overlap := seen_countries & zone.countries:
            raise ValueError(f"shipping config: {sorted(overlap)} are in more than one zone")
        seen_codes.add(zone.code)
        seen_countries |= zone.countries
    return zones


def _local(config: Mapping[str, Any]) -> _Local:
    raw = _section(config, "local_delivery")
    enabled = _bool(raw.get("enabled", False), "local_delivery.enabled")
    return _Local(
        enabled=enabled,
        label=_str(raw.get("label", "Local delivery"), "local_delivery.label"),
        countries=_countries(raw.get("countries", []), "local_delivery.countries"),
        postal_codes=tuple(_compact(c) for c in _str_list(raw.get("postal_codes", []), "local_delivery.postal_codes")),
        amount_minor=_required_amount(raw, "local_delivery", enabled),
        free_over_minor=_opt_int(raw.get("free_over_minor"), "local_delivery.free_over_minor"),
        days=_opt_int(raw.get("days"), "local_delivery.days"),
    )


# --- the provider --------------------------------------------------------------------------------


class BuiltinShipping:
    """Implements ``ShippingProvider`` from a JSON-able config (see ``DEFAULT_SHIPPING_CONFIG``)."""

    def __init__(self, config: Mapping[str, Any], currency: str) -> None:
        if not isinstance(config, Mapping):
            raise ValueError(f"shipping config must be an object, got {config!r}")
        self.currency = Money.zero(currency).currency
        self._pickup = _simple(config, "pickup", "Pickup in store", priced=False)  # pickup is always free
        self._flat = _simple(config, "flat", "Standard shipping", priced=True)
        self._free_over = _opt_int(config.get("free_over_minor"), "free_over_minor")
        self._zones = _zones(config, self._free_over)
        self._local = _local(config)

    @classmethod
    def from_settings(cls, store_settings: Mapping[str, Any], currency: str) -> BuiltinShipping:
        """The store's provider, parsed once per distinct configuration (a quote needs it every time)."""
        return _shipping_for(msgspec.json.encode(store_settings.get("shipping", DEFAULT_SHIPPING_CONFIG)), currency)

    @property
    def offers_delivery(self) -> bool:
        """Whether any method brings the order to the shopper (flat rate, a zone, local delivery)."""
        return self._flat.enabled or bool(self._zones) or self._local.enabled

    @property
    def offers_pickup(self) -> bool:
        return self._pickup.enabled

    def quote_rates(
        self, *, destination: Address | None, items: Sequence[ShipmentItem], subtotal: Money
    ) -> list[ShippingRate]:
        """Every rate offered for this destination and cart, cheapest first (then by label)."""
        if subtotal.currency != self.currency:
            raise ValueError(f"subtotal is in {subtotal.currency}, shipping is quoted in {self.currency}")
        rates: list[ShippingRate] = []
        if self._pickup.enabled:
            pickup = self._pickup
            rates.append(self._make("pickup", pickup.label, "pickup", pickup.amount_minor, False, pickup.days))
        if destination is not None and destination.country in SUPPORTED_COUNTRIES:
            rates += self._delivery_rates(destination, _total_weight(items), subtotal.amount_minor)
        return sorted(rates, key=lambda r: (r.amount.amount_minor, r.label, r.code))

    def rate(
        self, code: str, *, destination: Address | None, items: Sequence[ShipmentItem], subtotal: Money
    ) -> ShippingRate:
        """The rate ``code`` if it is offered for this destination and cart, else ``ValidationFailed``."""
        for offered in self.quote_rates(destination=destination, items=items, subtotal=subtotal):
            if offered.code == code:
                return offered
        raise ValidationFailed(
            "That shipping option isn't available.",
            fields={"shipping": "This shipping option isn't available for this address and cart. Choose another."},
        )

    def _delivery_rates(self, destination: Address, weight: int, subtotal: int) -> list[ShippingRate]:
        rates: list[ShippingRate] = []
        if self._flat.enabled:
            amount = _free_if_over(self._flat.amount_minor, subtotal, self._free_over)
            rates.append(self._make("flat", self._flat.label, "flat", amount, True, self._flat.days))
        zone = next((z for z in self._zones if destination.country in z.countries), None)
        if zone is not None:
            rates += self._zone_rates(zone, weight, subtotal)
        local = self._local
        if local.enabled and local.covers(destination):
            amount = _free_if_over(local.amount_minor, subtotal, local.free_over_minor)
            rates.append(self._make("local", local.label, "local_delivery", amount, True, local.days))
        return rates

    def _zone_rates(self, zone: _Zone, weight: int, subtotal: int) -> list[ShippingRate]:
        """Per rate code, the lightest bracket the cart fits in; a code with none that fits is not offered."""
        chosen: dict[str, _Bracket] = {}
        for bracket in zone.brackets:  # sorted by weight
            if weight <= bracket.max_weight_grams:
                chosen.setdefault(bracket.code, bracket)
        return [
            self._make(
                f"zone:{zone.code}:{b.code}",
                f"{b.label} ({zone.label})",
                "table",
                _free_if_over(b.amount_minor, subtotal, zone.free_over_minor),
                True,
                b.days,
            )
            for b in chosen.values()
        ]

    def _make(
        self, code: str, label: str, method: ShippingMethod, amount: int, requires_address: bool, days: int | None
    ) -> ShippingRate:
        return ShippingRate(code, label, method, Money(amount, self.currency), requires_address, days)


def _total_weight(items: Sequence[ShipmentItem]) -> int:
    for item in items:
        if item.weight_grams < 0 or item.quantity < 0:
            raise ValueError(f"shipment item has a negative weight or quantity: {item!r}")
    return sum(item.weight_grams * item.quantity for item in items)


def _free_if_over(amount: int, subtotal: int, threshold: int | None) -> int:
    return 0 if threshold is not None and subtotal >= threshold else amount


@functools.lru_cache(maxsize=256)
def _shipping_for(encoded_config: bytes, currency: str) -> BuiltinShipping:
    return BuiltinShipping(msgspec.json.decode(encoded_config), currency)
