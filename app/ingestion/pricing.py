"""An ingested order against the catalog and the store's tax rules: which lines differ, and the order Till
writes (lines taxed like a checkout's, totals that must match what the channel sent)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.catalog.models import Variant
from app.core.errors import ValidationFailed
from app.core.money import Money
from app.ingestion.schemas import MAX_MINOR, IngestOrder
from app.orders.models import Order
from app.promotions.engine import Applied
from app.stores.commerce import CommerceSettings
from app.stores.models import Store
from app.tax.providers import BuiltinTax, TaxableLine

SHIPPING_TAX_KEY = "shipping"
_METHOD_LABELS = {"pickup": "Pickup", "shipping": "Shipping", "local_delivery": "Local delivery"}


def _line_name(variant: Variant) -> str:
    title = " / ".join(str(v) for v in variant.options.values())
    return f"{variant.product.name} ({title})" if title else variant.product.name


@dataclass(frozen=True)
class Priced:
    """An ingested order checked against the catalog and the tax rules: the order and its line rows."""

    order: Order
    lines: list[dict[str, Any]]
    quantities: dict[uuid.UUID, int]
    skus: dict[uuid.UUID, str]


def price_differences(order: IngestOrder, variants: dict[str, Variant]) -> list[dict[str, Any]]:
    """The lines whose SKU is not for sale or whose unit price is not the catalog's."""
    differ = []
    for position, item in enumerate(order.items):
        variant = variants.get(item.sku)
        if variant is None or not variant.is_active or not variant.product.is_active:
            reason, catalog = ("unknown sku" if variant is None else "not for sale"), None
        elif variant.price_minor != item.unit_price_minor:
            reason, catalog = "price differs", variant.price_minor
        else:
            continue
        differ.append(
            {
                "line": position,
                "sku": item.sku,
                "unit_price_minor": item.unit_price_minor,
                "catalog_unit_price_minor": catalog,
                "reason": reason,
            }
        )
    return differ


def price_order(
    order: IngestOrder, store: Store, variants: dict[str, Variant], now: datetime, applied: Applied | None = None
) -> Priced:
    """The order Till will write, taxed by the store's rules after the named code's discount (``applied``, from
    app.promotions); ValidationFailed naming each total that differs."""
    settings = CommerceSettings.of(store.settings)
    currency = store.currency
    applied = applied or Applied(currency)
    taxable = [
        TaxableLine(
            key=str(position),
            amount=Money(item.quantity * item.unit_price_minor - applied.line_discount(str(position)), currency),
            tax_class=variants[item.sku].product.tax_class,
        )
        for position, item in enumerate(order.items)
    ]
    shipping = order.totals.shipping_minor
    if shipping - applied.shipping_minor:
        taxable.append(
            TaxableLine(
                SHIPPING_TAX_KEY, Money(shipping - applied.shipping_minor, currency), settings.shipping_tax_class
            )
        )
    address = order.address
    tax = BuiltinTax.from_settings(store.settings, currency).quote(
        taxable,
        country=address.country if address else settings.country,
        region=address.region if address else "",
        prices_include_tax=settings.prices_include_tax,
    )
    tax_by_key = {t.key: t for t in tax.lines}
    subtotal = sum(item.quantity * item.unit_price_minor for item in order.items)
    tax_minor = tax.total_tax.amount_minor
    discount = applied.total_minor
    total = subtotal - discount + shipping + (0 if settings.prices_include_tax else tax_minor)
    fields: dict[str, str] = {}
    if order.totals.subtotal_minor != subtotal:
        fields["totals.subtotal_minor"] = f"The items add up to {subtotal}."
    if order.totals.discount_minor is not None and order.totals.discount_minor != discount:
        fields["totals.discount_minor"] = (
            f"The code {order.promotion_code} gives {discount}." if order.promotion_code else "No code is named: 0."
        )
    if order.totals.tax_minor != tax_minor:
        included = "included in the prices" if settings.prices_include_tax else "on top of the prices"
        fields["totals.tax_minor"] = f"The store's tax rules give {tax_minor} ({included})."
    if order.totals.total_minor != total:
        less = " less the discount" if discount else ""
        fields["totals.total_minor"] = f"Subtotal{less}, shipping and tax add up to {total}."
    elif total > MAX_MINOR:
        fields["totals.total_minor"] = "Too large for one order."
    if fields:
        raise ValidationFailed("The totals do not add up; nothing was placed.", fields=fields)
    lines: list[dict[str, Any]] = []
    quantities: dict[uuid.UUID, int] = {}
    skus: dict[uuid.UUID, str] = {}
    for position, item in enumerate(order.items):
        variant = variants[item.sku]
        tax_line = tax_by_key[str(position)]
        quantities[variant.id] = quantities.get(variant.id, 0) + item.quantity
        skus[variant.id] = item.sku
        lines.append(
            {
                "position": position,
                "variant_id": str(variant.id),
                "sku": item.sku,
                "name": _line_name(variant),
                "quantity": item.quantity,
                "unit_price_minor": item.unit_price_minor,
                "discount_minor": applied.line_discount(str(position)),
                "tax_minor": tax_line.tax.amount_minor,
                "tax_rate_bps": tax_line.rate_bps,
                "total_minor": item.quantity * item.unit_price_minor,
            }
        )
    method = order.fulfilment_method
    placed = Order(
        id=uuid.uuid4(),
        store_id=store.id,
        channel="ingested",
        status="placed",
        payment_status=order.payment_status,
        fulfilment_status="unfulfilled",
        fulfilment_method=method,
        email=order.customer.email,
        phone=order.customer.phone,
        currency=currency,
        subtotal_minor=subtotal,
        discount_minor=discount,
        discounts=[d.as_dict() for d in applied.discounts],
        shipping_minor=shipping,
        tax_minor=tax_minor,
        total_minor=total,
        prices_include_tax=settings.prices_include_tax,
        shipping={"code": "channel", "label": _METHOD_LABELS[method], "method": method, "amount_minor": shipping},
        address=address.as_dict() if address else None,
        snapshot_id=None,
        access_token=secrets.token_urlsafe(24),
        placed_at=now,
    )
    return Priced(placed, lines, quantities, skus)
