"""Shipping: addresses and the built-in shipping provider (pure, no I/O)."""

from app.shipping.addresses import SUPPORTED_COUNTRIES, Address, normalise_postal_code, parse_address
from app.shipping.providers import (
    DEFAULT_SHIPPING_CONFIG,
    BuiltinShipping,
    ShipmentItem,
    ShippingProvider,
    ShippingRate,
)

__all__ = [
    "DEFAULT_SHIPPING_CONFIG",
    "SUPPORTED_COUNTRIES",
    "Address",
    "BuiltinShipping",
    "ShipmentItem",
    "ShippingProvider",
    "ShippingRate",
    "normalise_postal_code",
    "parse_address",
]
