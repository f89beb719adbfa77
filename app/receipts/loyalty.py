"""Loyalty rows on sale receipts: "Points earned" and "Points balance", counted in points (``Row.unit``), never
money. The data is the loyalty domain's (app/stored_value/loyalty/receipt.py); this module registers the
:func:`app.receipts.builders.register_loyalty_source` hook when the builders are imported."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import Order
from app.receipts.document import POINTS, Row


async def loyalty_rows(session: AsyncSession, order: Order) -> list[Row]:
    from app.stored_value.loyalty.receipt import order_points

    points = await order_points(session, order.store_id, order)
    if points is None or (points.earned == 0 and points.balance == 0):
        return []
    rows = [Row("Points earned", points.earned, unit=POINTS)] if points.earned else []
    return [*rows, Row("Points balance", points.balance, unit=POINTS)]
