"""Points as a tender at the POS: the tablet asks what the sale's customer has (``GET /pos/api/loyalty/{customer}``)
and takes an amount of money paid with points; the sale's statement spends the points that cover it (at the
program's rate, rounded up for the store) with the gift cards and store credit (app/stored_value/pos.py,
fragments.py): online a short balance is a 409 and nothing is written, offline the shortfall goes to review."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.errors import NotFound
from app.core.rbac import principal_of, require_role
from app.stored_value.instruments import Tender
from app.stored_value.ledger import account_of
from app.stored_value.loyalty.instrument import program_on
from app.stored_value.loyalty.ledger import INSTRUMENT, KIND

DbSession = NamedDependency[AsyncSession]
_ACCOUNT = """
    SELECT id, kind, unit, customer_id, code_last4, status, expires_at, balance_minor, held_minor, issued_minor, note,
           created_at
    FROM stored_value_accounts WHERE store_id = $1 AND customer_id = $2 AND kind = $3
"""
_CUSTOMER = "SELECT 1 FROM customers WHERE store_id = $1 AND id = $2"


async def pos_points_tender(
    conn: pg.Connection, store_id: uuid.UUID, customer_id: uuid.UUID | None, amount_minor: int
) -> Tender | str:
    """The points tender paying ``amount_minor`` of a sale, or why it cannot (a sentence for the cashier). The
    balance itself is checked by the sale's statement under the account's row lock."""
    if customer_id is None:
        return "Choose the customer whose points pay."
    program = await program_on(conn, store_id)
    if not program.enabled:
        return "This store has no loyalty program."
    row = await conn.fetchrow(_ACCOUNT, store_id, customer_id, KIND)
    if row is None:
        return "This customer has no points yet."
    account = account_of(row)
    points = program.points_to_cover(amount_minor)
    if points < program.min_redeem_points:
        return f"Points pay from {program.min_redeem_points} points at a time."
    return Tender(INSTRUMENT, account.id, points, amount_minor, f"{points} points")


class LoyaltyPosApiController(Controller):
    """What the sale's customer can pay with points, for the tablet's Points button."""

    path = "/pos/api/loyalty"
    guards = [require_role]
    include_in_schema = False

    @get("/{customer_id:uuid}")
    async def customer_points(
        self, request: Request[Any, Any, Any], customer_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> dict[str, Any]:
        me = principal_of(request)
        conn = await pg.reader(db_session)
        if await conn.fetchval(_CUSTOMER, me.store_id, customer_id) is None:
            raise NotFound("No such customer.")
        program = await program_on(conn, me.store_id)
        row = await conn.fetchrow(_ACCOUNT, me.store_id, customer_id, KIND)
        spendable = account_of(row).spendable_minor if row is not None else 0
        usable = program.enabled and spendable >= program.min_redeem_points
        return {
            "enabled": program.enabled,
            "points": spendable,
            "min_points": program.min_redeem_points,
            "worth_minor": program.value_of(spendable) if usable else 0,
        }


__all__ = ["LoyaltyPosApiController", "pos_points_tender"]
