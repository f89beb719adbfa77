"""What a receipt says about an order's points (read only; app/receipts/loyalty.py puts it on the receipt).

The receipt is often made before the ``loyalty_points`` consumer has handled the same ``order.placed`` event (two
consumers of one event, in no set order). So when the order's accrual is not there yet, the points are worked out
exactly as :meth:`app.stored_value.loyalty.accrual.LoyaltyAccruals.accrue` will (program, the member's tier, what the
order earns on) and the balance is the account's plus those points.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import Order
from app.stored_value.loyalty.accrual import PAID_ONCE, order_eligible
from app.stored_value.loyalty.ledger import points_of
from app.stored_value.loyalty.models import LoyaltyAccrual
from app.stored_value.loyalty.services import LoyaltyProgramService


@dataclass(frozen=True)
class OrderPoints:
    earned: int  # what the order earned (or will earn)
    balance: int  # the customer's points with them
    recorded: bool  # False: worked out ahead of the accrual


async def order_points(session: AsyncSession, store_id: uuid.UUID, order: Order) -> OrderPoints | None:
    """The order's points and the customer's balance; None when it has no customer or earns under no program."""
    if order.customer_id is None:
        return None
    programs = LoyaltyProgramService(session, store_id)
    accrual = await session.scalar(select(LoyaltyAccrual).where(LoyaltyAccrual.order_id == order.id))
    balance, _ = await points_of(session, store_id, order.customer_id)
    if accrual is not None:
        return OrderPoints(accrual.points, balance, recorded=True)
    program = await programs.get()
    if not program.enabled or order.payment_status not in PAID_ONCE:
        return None
    member = await programs.member(order.customer_id)
    tier = program.tier_named(member.tier) if member else program.tiers[0]
    earned = program.earn(await order_eligible(session, store_id, order.id), order.currency, tier.multiplier_bps)
    return OrderPoints(earned, balance + earned, recorded=False)


__all__ = ["OrderPoints", "order_points"]
