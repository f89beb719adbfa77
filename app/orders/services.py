"""Orders: placing one from a paid snapshot, and finding them for shoppers and staff."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.models import CheckoutSnapshot
from app.core import pg
from app.core.errors import NotFound
from app.core.outbox import emit_raw
from app.core.tenancy import bind_store
from app.orders.models import Order

FULFILMENT_BY_SHIPPING = {
    "pickup": "pickup",
    "local_delivery": "local_delivery",
    "flat": "shipping",
    "table": "shipping",
}


_PLACE = """
    WITH placed AS (
        INSERT INTO orders (id, store_id, channel, status, payment_status, fulfilment_status, fulfilment_method,
                            customer_id, email, phone, currency, subtotal_minor, discount_minor, shipping_minor,
                            tax_minor, total_minor, prices_include_tax, shipping, address, snapshot_id, access_token,
                            placed_at, created_at, updated_at)
        VALUES ($1, $2, 'web', 'placed', $3, 'unfulfilled', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                $16, $17, $18, $19, $19, $19)
        RETURNING id, number
    ), lines AS (
        INSERT INTO order_lines (id, store_id, order_id, position, variant_id, sku, name, quantity, unit_price_minor,
                                 discount_minor, tax_minor, tax_rate_bps, total_minor, created_at, updated_at)
        SELECT gen_random_uuid(), $2, $1, l.position, l.variant_id, l.sku, l.name, l.quantity, l.unit_price_minor,
               l.discount_minor, l.tax_minor, l.tax_rate_bps, l.total_minor, $19, $19
        FROM jsonb_to_recordset($20::jsonb) AS l(position int, variant_id uuid, sku text, name text, quantity int,
             unit_price_minor int, discount_minor int, tax_minor int, tax_rate_bps int, total_minor int)
    )
    SELECT number FROM placed
"""


def _line_name(line: dict[str, Any]) -> str:
    return f"{line['name']} ({line['variant_title']})" if line.get("variant_title") else str(line["name"])


async def place_order(
    conn: pg.Connection,
    snapshot: CheckoutSnapshot,
    *,
    customer_id: uuid.UUID,
    payment_status: str,
    now: datetime,
) -> Order:
    """Create the order and its lines from a paid snapshot (one statement) and its order.placed event.

    Raw SQL in the caller's transaction (ADR 0003); returns the order as a detached model.
    """
    order = Order(
        id=uuid.uuid4(),
        store_id=snapshot.store_id,
        channel="web",
        status="placed",
        payment_status=payment_status,
        fulfilment_status="unfulfilled",
        fulfilment_method=FULFILMENT_BY_SHIPPING.get(snapshot.shipping.get("method", ""), "shipping"),
        customer_id=customer_id,
        email=snapshot.email,
        phone=snapshot.phone,
        currency=snapshot.currency,
        subtotal_minor=snapshot.subtotal_minor,
        discount_minor=snapshot.discount_minor,
        shipping_minor=snapshot.shipping_minor,
        tax_minor=snapshot.tax_minor,
        total_minor=snapshot.total_minor,
        prices_include_tax=snapshot.prices_include_tax,
        shipping=snapshot.shipping,
        address=snapshot.address,
        snapshot_id=snapshot.id,
        access_token=secrets.token_urlsafe(24),
        placed_at=now,
    )
    lines = [
        {
            "position": position,
            "variant_id": line["variant_id"],
            "sku": line["sku"],
            "name": _line_name(line),
            "quantity": line["quantity"],
            "unit_price_minor": line["unit_price_minor"],
            "discount_minor": line["discount_minor"],
            "tax_minor": line["tax_minor"],
            "tax_rate_bps": line["tax_rate_bps"],
            "total_minor": line["total_minor"],
        }
        for position, line in enumerate(snapshot.lines)
    ]
    order.number = await conn.fetchval(
        _PLACE,
        order.id,
        order.store_id,
        order.payment_status,
        order.fulfilment_method,
        order.customer_id,
        order.email,
        order.phone,
        order.currency,
        order.subtotal_minor,
        order.discount_minor,
        order.shipping_minor,
        order.tax_minor,
        order.total_minor,
        order.prices_include_tax,
        pg.jsonb(order.shipping),
        pg.jsonb(order.address) if order.address is not None else None,
        order.snapshot_id,
        order.access_token,
        now,
        pg.jsonb(lines),
    )
    await emit_raw(
        conn,
        order.store_id,
        "order.placed",
        aggregate_type="order",
        aggregate_id=order.id,
        payload={"number": order.number, "total_minor": order.total_minor, "currency": order.currency},
    )
    return order


class OrderService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def get(self, order_id: uuid.UUID) -> Order:
        order = await self.session.get(Order, order_id)
        if order is None:
            raise NotFound("No such order.")
        return order

    async def for_shopper(self, order_id: uuid.UUID, *, token: str | None, customer_id: uuid.UUID | None) -> Order:
        """A shopper sees an order by its signed link, or as the signed-in customer who placed it."""
        order = await self.session.get(Order, order_id)
        allowed = order is not None and (
            (token is not None and secrets.compare_digest(order.access_token, token))
            or (customer_id is not None and order.customer_id == customer_id)
        )
        if order is None or not allowed:
            raise NotFound("We could not find that order.")
        return order

    async def of_customer(self, customer_id: uuid.UUID) -> list[Order]:
        rows = await self.session.scalars(
            select(Order).where(Order.customer_id == customer_id).order_by(Order.placed_at.desc()).limit(50)
        )
        return list(rows)
