"""Quotes: freeze the cart's lines, discounts, tax, shipping and totals into a snapshot with an expiry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.cart.services import CartView, cart_view, content_hash, open_cart_token
from app.checkout.models import CheckoutSnapshot
from app.core import pg
from app.core.db import detached
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.money import Money
from app.customers.services import EMAIL, normalise_email
from app.promotions.claims import OfferContext, ensure_customer_uses
from app.promotions.engine import Applied
from app.promotions.pricing import cart_with_offers, price_cart
from app.shipping.addresses import Address, parse_address
from app.shipping.providers import BuiltinShipping, ShipmentItem, ShippingRate
from app.stores.commerce import CommerceSettings
from app.stores.hours import choose_pickup_time, hours_of
from app.stores.models import Store
from app.tax.providers import BuiltinTax, TaxableLine

SHIPPING_TAX_KEY = "shipping"


@dataclass(frozen=True)
class QuoteRequest:
    cart_token: str
    email: str
    phone: str = ""
    shipping_code: str = "pickup"
    address: Mapping[str, str] | None = None
    customer_id: uuid.UUID | None = None
    pickup_at: str | None = None  # ISO 8601; none: the first free slot (only stores with opening hours have slots)
    codes: tuple[str, ...] = ()  # promotion codes the shopper gave; a code that does not apply refuses the quote


class QuoteService:
    """Quotes in raw SQL (ADR 0003) on ``conn``: ``pg.writer(session)`` inside a page's request transaction,
    a pooled connection in autocommit for the API (a quote is one read and one insert)."""

    def __init__(self, conn: pg.Connection, store: Store) -> None:
        self.conn = conn
        self.store = store
        self.settings = CommerceSettings.of(store.settings)

    def shipping(self) -> BuiltinShipping:
        return BuiltinShipping.from_settings(self.store.settings, self.store.currency)

    def rates(self, cart: CartView, destination: Address | None) -> list[ShippingRate]:
        items = [ShipmentItem(weight_grams=line.weight_grams, quantity=line.quantity) for line in cart.lines]
        return self.shipping().quote_rates(destination=destination, items=items, subtotal=cart.subtotal)

    async def create(self, request: QuoteRequest, *, now: datetime | None = None) -> CheckoutSnapshot:
        now = now or datetime.now(UTC)
        if not self.settings.live:
            raise Conflict(f"{self.store.name} is not open yet: it takes orders once it goes live.")
        email = normalise_email(request.email)
        # The cart and the offers it may get: one statement (the engine prices it below, once shipping is known).
        cart, offers = await cart_with_offers(
            self.conn, self.store, request.cart_token, codes=request.codes, email=email, customer_id=request.customer_id
        )
        if cart.cart is None or not cart.lines:
            raise ValidationFailed("Your cart is empty.", fields={"cart": "Your cart is empty."})
        if cart.has_problems:
            problems = {str(line.variant_id): line.problem for line in cart.lines if line.problem}
            raise ValidationFailed(
                "Some items in your cart are not available any more.",
                fields={"cart": "; ".join(f"{line.name}: {line.problem}" for line in cart.lines if line.problem)}
                | problems,
            )
        fields: dict[str, str] = {}
        if not EMAIL.match(email):
            fields["email"] = "Enter a valid e-mail address."
        if len(request.phone) > 40:
            fields["phone"] = "Enter a phone number of up to 40 characters."
        address: Address | None = None
        rate_code = request.shipping_code or "pickup"
        needs_address = rate_code != "pickup"
        if needs_address:
            try:
                address = parse_address(request.address or {})
            except ValidationFailed as exc:
                fields.update({f"address.{k}": v for k, v in exc.fields.items()})
        # Pickup at a store with opening hours is at a time it is open (app/stores/hours.py), frozen below.
        hours = None if needs_address else hours_of(self.store.settings)
        pickup_at: datetime | None = None
        if hours is not None:
            try:
                pickup_at = choose_pickup_time(hours, request.pickup_at, now, self.store.timezone)
            except ValidationFailed as exc:
                fields.update(exc.fields)
        if fields:
            only = fields["pickup_at"] if set(fields) == {"pickup_at"} else "Check the highlighted fields."
            raise ValidationFailed(only, fields=fields)
        items = [ShipmentItem(weight_grams=line.weight_grams, quantity=line.quantity) for line in cart.lines]
        if rate_code == "delivery":  # "deliver it": the cheapest rate for this address
            offered = [r for r in self.rates(cart, address) if r.requires_address]
            if not offered:
                raise ValidationFailed(
                    "We cannot deliver to this address.", fields={"address.country": "We do not deliver there yet."}
                )
            rate = offered[0]
        else:
            rate = self.shipping().rate(rate_code, destination=address, items=items, subtotal=cart.subtotal)

        applied = await self.promotions(cart, request, email, rate.amount.amount_minor, now, offers)
        country = address.country if address else self.settings.country
        region = address.region if address else ""
        # Tax is on what the shopper pays: each line after its discounts (app/promotions), shipping after free shipping.
        taxable = [
            TaxableLine(
                key=str(line.variant_id),
                amount=Money(line.total - applied.line_discount(str(position)), self.store.currency),
                tax_class=line.tax_class,
            )
            for position, line in enumerate(cart.lines)
        ]
        shipping_due = rate.amount.amount_minor - applied.shipping_minor
        if shipping_due:
            # Shipping is taxed like a line of the store's shipping tax class (standard unless configured).
            taxable.append(
                TaxableLine(
                    key=SHIPPING_TAX_KEY,
                    amount=Money(shipping_due, self.store.currency),
                    tax_class=self.settings.shipping_tax_class,
                )
            )
        tax = BuiltinTax.from_settings(self.store.settings, self.store.currency).quote(
            taxable, country=country, region=region, prices_include_tax=self.settings.prices_include_tax
        )
        tax_by_key = {t.key: t for t in tax.lines}
        lines: list[dict[str, Any]] = []
        for position, line in enumerate(cart.lines):
            tax_line = tax_by_key[str(line.variant_id)]
            lines.append(
                {
                    "variant_id": str(line.variant_id),
                    "sku": line.sku,
                    "name": line.name,
                    "variant_title": line.variant_title,
                    "quantity": line.quantity,
                    "unit_price_minor": line.unit_price,
                    "discount_minor": applied.line_discount(str(position)),
                    "discounts": applied.line_labels(str(position)),
                    "total_minor": line.total,
                    "tax_class": tax_line.tax_class,
                    "tax_rate_bps": tax_line.rate_bps,
                    "tax_minor": tax_line.tax.amount_minor,
                }
            )
        subtotal = cart.subtotal.amount_minor
        tax_minor = tax.total_tax.amount_minor
        total = (
            subtotal
            - applied.total_minor
            + rate.amount.amount_minor
            + (0 if self.settings.prices_include_tax else tax_minor)
        )
        snapshot = detached(
            CheckoutSnapshot,
            dict(
                id=uuid.uuid4(),
                store_id=self.store.id,
                cart_id=cart.cart.id,
                customer_id=request.customer_id,
                email=email,
                phone=request.phone.strip(),
                currency=self.store.currency,
                prices_include_tax=self.settings.prices_include_tax,
                lines=lines,
                discounts=[d.as_dict() for d in applied.discounts],
                tax_lines=[
                    {
                        "key": t.key,
                        "name": t.name,
                        "rate_bps": t.rate_bps,
                        "taxable_minor": t.taxable.amount_minor,
                        "tax_minor": t.tax.amount_minor,
                    }
                    for t in tax.lines
                ],
                shipping={
                    "code": rate.code,
                    "label": rate.label,
                    "method": rate.method,
                    "amount_minor": rate.amount.amount_minor,
                    **({"pickup_at": pickup_at.isoformat()} if pickup_at else {}),
                },
                address=address.as_dict() if address else None,
                subtotal_minor=subtotal,
                discount_minor=applied.total_minor,
                shipping_minor=rate.amount.amount_minor,
                tax_minor=tax_minor,
                total_minor=total,
                content_hash=content_hash([(line.variant_id, line.quantity, line.unit_price) for line in cart.lines]),
                expires_at=now + self.settings.quote_ttl,
                status="open",
                created_at=now,
                updated_at=now,
            ),
        )
        await self.conn.execute(_INSERT_SNAPSHOT, *_snapshot_row(snapshot))
        return snapshot

    async def promotions(
        self,
        cart: CartView,
        request: QuoteRequest,
        email: str,
        shipping_minor: int,
        now: datetime,
        offers: OfferContext,
    ) -> Applied:
        """The promotions on this cart (app/promotions): automatic ones that qualify and the codes given. A code
        that does not apply refuses the quote with its reason (field ``code``): nothing is written. Makes the
        shopper's use-count rows of per-customer-limited promotions, for the claim at payment to lock. ``offers``:
        what ``cart_with_offers`` read with the cart."""
        applied, context = await price_cart(
            self.conn,
            self.store,
            cart,
            codes=request.codes,
            email=email,
            customer_id=request.customer_id,
            shipping_minor=shipping_minor,
            now=now,
            context=offers,
        )
        if applied.rejected:
            code, reason = next(iter(applied.rejected.items()))
            raise ValidationFailed(f"The code {code} can't be used: {reason}", fields={"code": reason})
        await ensure_customer_uses(
            self.conn, self.store.id, context.offers, [d.promotion_id for d in applied.discounts], email
        )
        return applied

    async def delivery_choices(self, snapshot: CheckoutSnapshot) -> list[ShippingRate]:
        """The other delivery rates for a delivery quote's address and cart (empty for pickup)."""
        if not snapshot.address:
            return []
        token = await open_cart_token(self.conn, self.store.id, snapshot.cart_id)
        if token is None:
            return []
        view = await cart_view(self.conn, self.store.id, self.store.currency, token)
        destination = Address(**snapshot.address)
        return [rate for rate in self.rates(view, destination) if rate.requires_address]

    async def get(self, snapshot_id: uuid.UUID) -> CheckoutSnapshot:
        snapshot = await snapshot_by_id(self.conn, self.store.id, snapshot_id)
        if snapshot is None:
            raise NotFound("No such checkout.")
        return snapshot


_SNAPSHOT_COLUMNS = (
    "id", "store_id", "cart_id", "customer_id", "email", "phone", "currency", "prices_include_tax",
    "lines", "discounts", "tax_lines", "shipping", "address",
    "subtotal_minor", "discount_minor", "shipping_minor", "tax_minor", "total_minor",
    "content_hash", "expires_at", "status", "created_at", "updated_at",
)  # fmt: skip
_JSON_COLUMNS = frozenset({"lines", "discounts", "tax_lines", "shipping", "address"})
_INSERT_SNAPSHOT = """
    INSERT INTO checkout_snapshots (
        id, store_id, cart_id, customer_id, email, phone, currency, prices_include_tax,
        lines, discounts, tax_lines, shipping, address,
        subtotal_minor, discount_minor, shipping_minor, tax_minor, total_minor,
        content_hash, expires_at, status, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
"""
_SELECT_SNAPSHOT = """
    SELECT id, store_id, cart_id, customer_id, email, phone, currency, prices_include_tax,
           lines, discounts, tax_lines, shipping, address,
           subtotal_minor, discount_minor, shipping_minor, tax_minor, total_minor,
           content_hash, expires_at, status, created_at, updated_at
    FROM checkout_snapshots WHERE id = $1 AND store_id = $2
"""


def _snapshot_row(snapshot: CheckoutSnapshot) -> list[Any]:
    values = []
    for column in _SNAPSHOT_COLUMNS:
        value = getattr(snapshot, column)
        values.append(pg.jsonb(value) if column in _JSON_COLUMNS and value is not None else value)
    return values


async def snapshot_by_id(conn: pg.Connection, store_id: uuid.UUID, snapshot_id: uuid.UUID) -> CheckoutSnapshot | None:
    """A snapshot as a detached model (read-only here: a snapshot never changes but for its status)."""
    row = await conn.fetchrow(_SELECT_SNAPSHOT, snapshot_id, store_id)
    return detached(CheckoutSnapshot, row) if row is not None else None
