from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from app.cart.services import CartView
from app.checkout.models import CheckoutSnapshot
from app.orders.models import Order
from app.stores.hours import pickup_at_of


class CartLineOut(msgspec.Struct):
    variant_id: uuid.UUID
    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    total_minor: int
    problem: str


class CartOut(msgspec.Struct):
    token: str
    currency: str
    lines: list[CartLineOut]
    subtotal_minor: int

    @classmethod
    def of(cls, view: CartView) -> CartOut:
        assert view.cart is not None
        return cls(
            token=view.cart.token,
            currency=view.currency,
            subtotal_minor=view.subtotal.amount_minor,
            lines=[
                CartLineOut(
                    variant_id=line.variant_id,
                    sku=line.sku,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price,
                    total_minor=line.total,
                    problem=line.problem,
                )
                for line in view.lines
            ],
        )


class CartLineIn(msgspec.Struct, forbid_unknown_fields=True):
    variant_id: uuid.UUID
    quantity: int = 1


class QuantityIn(msgspec.Struct, forbid_unknown_fields=True):
    quantity: int


class AddressIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    phone: str = ""


PICKUP_AT = (
    "Pickup only, at a store with opening hours: when the shopper collects, ISO 8601 with an offset "
    "(2026-03-30T07:30:00Z), one of GET /api/v1/checkout/pickup-times. Left out: the first available pickup "
    "time. Refused (422, field pickup_at) when the store is closed then, on a closed date, in the past or "
    "sooner than the preparation time, or not on the slot grid. Ignored for delivery and for stores without "
    "opening hours (pickup as soon as it is ready)."
)


CODE = (
    "A promotion code (case-insensitive). The quote applies it with the store's automatic promotions; one that "
    "does not apply is refused (422, field code, the reason in the shopper's words: \"Spend €5.00 more to use "
    'this code.") and nothing is quoted. Its use is claimed when the checkout completes; a code used up since '
    "the quote answers 409 promotion_unavailable there."
)


class QuoteIn(msgspec.Struct, forbid_unknown_fields=True):
    cart_token: str
    email: str
    phone: str = ""
    shipping: str = "pickup"
    address: AddressIn | None = None
    pickup_at: Annotated[str | None, msgspec.Meta(description=PICKUP_AT)] = None
    code: Annotated[str | None, msgspec.Meta(description=CODE)] = None


class QuoteOut(msgspec.Struct):
    id: uuid.UUID
    currency: str
    lines: list[dict[str, Any]]
    tax_lines: list[dict[str, Any]]
    shipping: dict[str, Any]
    subtotal_minor: int
    discount_minor: Annotated[
        int,
        msgspec.Meta(description="Every promotion's discount: on the lines (each line's discount_minor) and shipping"),
    ]
    discounts: Annotated[
        list[dict[str, Any]],
        msgspec.Meta(
            description='The promotions applied: promotion_id, name, code ("" automatic), kind, amount_minor, '
            "shipping_minor, and lines (each line's part by its position)"
        ),
    ]
    shipping_minor: int
    tax_minor: int
    total_minor: int
    prices_include_tax: bool
    expires_at: datetime
    pickup_at: Annotated[
        datetime | None, msgspec.Meta(description="The frozen pickup time (UTC); null: delivery, or as soon as ready")
    ] = None

    @classmethod
    def of(cls, s: CheckoutSnapshot) -> QuoteOut:
        return cls(
            id=s.id,
            currency=s.currency,
            lines=s.lines,
            tax_lines=s.tax_lines,
            shipping=s.shipping,
            subtotal_minor=s.subtotal_minor,
            discount_minor=s.discount_minor,
            discounts=s.discounts,
            shipping_minor=s.shipping_minor,
            tax_minor=s.tax_minor,
            total_minor=s.total_minor,
            prices_include_tax=s.prices_include_tax,
            expires_at=s.expires_at,
            pickup_at=pickup_at_of(s.shipping),
        )


class PickupTimesOut(msgspec.Struct):
    timezone: Annotated[str, msgspec.Meta(description="The store's time zone: show the times on its clock")]
    has_hours: Annotated[bool, msgspec.Meta(description="False: no opening hours; pickup is as soon as ready")]
    pickup_times: Annotated[list[datetime], msgspec.Meta(description="Every pickup time a quote accepts now (UTC)")]


class CardIn(msgspec.Struct, forbid_unknown_fields=True):
    number: str
    exp_month: int
    exp_year: int
    cvc: str
    holder: str = ""

    def __repr__(self) -> str:  # never print a card number
        return "CardIn(****)"


class TenderIn(msgspec.Struct, forbid_unknown_fields=True):
    """Stored value to pay with: ``gift_card`` (with its ``code``), ``store_credit`` (the signed-in shopper's),
    ``loyalty`` (``points``). ``amount_minor``: how much of the order it pays (default: as much as it covers)."""

    instrument: str
    code: str = ""
    amount_minor: int | None = None
    points: int | None = None

    def __repr__(self) -> str:  # never print a gift card code
        return f"TenderIn({self.instrument})"


class CompleteIn(msgspec.Struct, forbid_unknown_fields=True):
    """Pay with ``card`` (sandbox test cards; Stripe test mode) or ``payment_method_token`` (Stripe.js's pm_...,
    or a sandbox ``pm_card_*``): exactly one of the two, unless ``stored_value`` pays the whole total. Stored value
    (gift cards, store credit, points) is held before the card is charged; the card pays the rest."""

    snapshot_id: uuid.UUID
    amount_minor: int
    card: CardIn | None = None
    payment_method_token: str | None = None
    return_url: str = ""
    stored_value: list[TenderIn] = msgspec.field(default_factory=list)


class OrderOut(msgspec.Struct):
    id: uuid.UUID
    number: int
    status: str
    payment_status: str
    fulfilment_status: str
    currency: str
    total_minor: int
    email: str

    @classmethod
    def of(cls, o: Order) -> OrderOut:
        return cls(
            id=o.id,
            number=o.number,
            status=o.status,
            payment_status=o.payment_status,
            fulfilment_status=o.fulfilment_status,
            currency=o.currency,
            total_minor=o.total_minor,
            email=o.email,
        )


class AttemptOut(msgspec.Struct):
    attempt_id: uuid.UUID
    state: str
    order: OrderOut | None = None
    action_url: str = ""
    error_code: str = ""
    message: str = ""
