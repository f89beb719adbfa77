"""Orders: placing one from a paid snapshot, and finding them for shoppers and staff."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.models import CheckoutSnapshot
from app.core.errors import NotFound
from app.core.outbox import emit
from app.core.tenancy import bind_store
from app.orders.models import Order, OrderLine

FULFILMENT_BY_SHIPPING = {
    "pickup": "pickup",
    "local_delivery": "local_delivery",
    "flat": "shipping",
    "table": "shipping",
}


class OrderService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def place(
        self, snapshot: CheckoutSnapshot, *, customer_id: uuid.UUID, payment_status: str, now: datetime
    ) -> Order:
        """Create the order and all its lines (one INSERT for the lines) and its order.placed event."""
        order = Order(
            id=uuid.uuid4(),
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
        self.session.add(order)
        await self.session.flush()
        await self.session.execute(
            insert(OrderLine),
            [
                {
                    "id": uuid.uuid4(),
                    "store_id": self.store_id,
                    "order_id": order.id,
                    "position": position,
                    "variant_id": uuid.UUID(line["variant_id"]),
                    "sku": line["sku"],
                    "name": f"{line['name']} ({line['variant_title']})" if line.get("variant_title") else line["name"],
                    "quantity": line["quantity"],
                    "unit_price_minor": line["unit_price_minor"],
                    "discount_minor": line["discount_minor"],
                    "tax_minor": line["tax_minor"],
                    "tax_rate_bps": line["tax_rate_bps"],
                    "total_minor": line["total_minor"],
                }
                for position, line in enumerate(snapshot.lines)
            ],
        )
        emit(
            self.session,
            "order.placed",
            aggregate_type="order",
            aggregate_id=order.id,
            payload={"number": order.number, "total_minor": order.total_minor, "currency": order.currency},
        )
        return order

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
