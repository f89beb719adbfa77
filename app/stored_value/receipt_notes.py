"""What a sale's receipt says about the gift cards it sold (issue 15): each activated card by its last 4 and its
value, never its code (Till keeps no code; the tablet or the order page shows it once). Registered as a note source
of the receipts' sale document (app/receipts/builders.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.templating import money_filter
from app.orders.models import Order
from app.stored_value.models import StoredValueAccount


async def gift_card_notes(session: AsyncSession, order: Order) -> list[str]:
    rows = await session.execute(
        select(StoredValueAccount.code_last4, StoredValueAccount.issued_minor, StoredValueAccount.unit)
        .where(StoredValueAccount.store_id == order.store_id, StoredValueAccount.source_order_id == order.id)
        .order_by(StoredValueAccount.created_at)
    )
    return [f"Gift card •••• {last4} activated: {money_filter(value, unit)}" for last4, value, unit in rows.all()]


__all__ = ["gift_card_notes"]
