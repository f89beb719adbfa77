"""A shopper's points as the storefront shows them (read only, per shopper, never cached): one statement for the
program and one for the account and tier, on the request's reader connection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.stored_value.ledger import Entry
from app.stored_value.loyalty.instrument import program_on
from app.stored_value.loyalty.ledger import EARNED, EXPIRED, KIND, REVERSED
from app.stored_value.loyalty.program import Program
from app.stores.models import Store

_MEMBER = """
    SELECT a.id AS account_id, a.balance_minor, a.held_minor, m.tier, m.qualifying_points
    FROM (SELECT $2::uuid AS customer_id) c
    LEFT JOIN stored_value_accounts a ON a.store_id = $1 AND a.customer_id = c.customer_id AND a.kind = $3
    LEFT JOIN loyalty_members m ON m.store_id = $1 AND m.customer_id = c.customer_id
"""


@dataclass(frozen=True)
class Points:
    """A shopper's points as the pages show them."""

    program: Program
    account_id: uuid.UUID | None
    balance: int
    spendable: int
    tier: str
    qualifying_points: int

    @property
    def worth_minor(self) -> int:
        return self.program.value_of(self.spendable)

    @property
    def next_tier(self) -> tuple[str, int] | None:
        """The next tier's name and the points still to earn for it."""
        current = self.program.tier_named(self.tier)
        upper = next((t for t in self.program.tiers if t.threshold > current.threshold), None)
        return (upper.name, max(upper.threshold - self.qualifying_points, 0)) if upper else None

    @property
    def multiplier_bps(self) -> int:
        return self.program.tier_named(self.tier).multiplier_bps


async def shopper_points(session: AsyncSession, store_id: uuid.UUID, customer_id: uuid.UUID | None) -> Points | None:
    """The shopper's points under an enabled program (zero without any yet); None when the store has none."""
    conn = await pg.reader(session)
    program = await program_on(conn, store_id)
    if not program.enabled:
        return None
    row = await conn.fetchrow(_MEMBER, store_id, customer_id, KIND) if customer_id else None
    balance = int(row["balance_minor"] or 0) if row else 0
    held = int(row["held_minor"] or 0) if row else 0
    return Points(
        program=program,
        account_id=row["account_id"] if row else None,
        balance=balance,
        spendable=balance - held,
        tier=(row["tier"] if row and row["tier"] else program.tiers[0].name),
        qualifying_points=int(row["qualifying_points"] or 0) if row else 0,
    )


async def cart_points(
    session: AsyncSession, store: Store, customer_id: uuid.UUID | None, goods_minor: int
) -> dict[str, Any]:
    """For the cart summary: ``loyalty`` (the shopper's points, or None without a program) and ``earn_points``
    (what the goods after discounts would earn at the shopper's tier; the order's own total decides)."""
    points = await shopper_points(session, store.id, customer_id)
    if points is None:
        return {"loyalty": None, "earn_points": 0}
    return {"loyalty": points, "earn_points": points.program.earn(goods_minor, store.currency, points.multiplier_bps)}


def describe(entry: Entry) -> str:
    """An entry of a points account in a shopper's words."""
    order = entry.reason.rsplit("#", 1)[1] if "#" in entry.reason else ""
    if entry.reason.startswith(EARNED):
        return f"Earned on order #{order}"
    if entry.reason.startswith(REVERSED):
        return f"Taken back: refund of order #{order}"
    if entry.reason.startswith(EXPIRED) or entry.kind == "expire":
        return "Expired"
    if entry.kind == "capture":
        return "Spent"
    if entry.kind == "refund":
        return "Given back with a refund"
    return "Adjusted by the shop" if entry.kind == "adjust" else "Added by the shop"


__all__ = ["Points", "cart_points", "describe", "shopper_points"]
