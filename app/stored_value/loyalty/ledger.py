"""Loyalty on the stored-value ledger: a customer's points are one ``loyalty_points`` account (unit ``PTS``) per
store. Loyalty writes only through ``app.stored_value.ledger.Ledger``; these helpers name its entries."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.stored_value.ledger import Account, Ledger
from app.stored_value.models import POINTS

KIND = "loyalty_points"
INSTRUMENT = "loyalty"
# Entry reasons loyalty writes (the integrity job tells its own entries by them).
EARNED = "loyalty: earned on order"
REVERSED = "loyalty: refund of order"
EXPIRED = "loyalty: points expired"


async def points_account(
    session: AsyncSession, store_id: uuid.UUID, customer_id: uuid.UUID, *, create: bool = True
) -> Account | None:
    return await Ledger(session, store_id).customer_account(customer_id, KIND, POINTS, create=create)


async def points_of(session: AsyncSession, store_id: uuid.UUID, customer_id: uuid.UUID) -> tuple[int, int]:
    """(balance, spendable) in points; (0, 0) for a customer without an account."""
    account = await points_account(session, store_id, customer_id, create=False)
    if account is None:
        return 0, 0
    return account.balance_minor, account.spendable_minor


__all__ = ["EARNED", "EXPIRED", "INSTRUMENT", "KIND", "REVERSED", "points_account", "points_of"]
