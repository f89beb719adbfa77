"""Points as a tender at checkout and at the POS: the ``loyalty`` instrument of the stored-value registry
(``app/stored_value/instruments.py`` imports this module). It only reads — the program and the customer's points
account, two indexed statements — and answers the points to hold and the money they pay at the program's rate;
the saga's and the POS's statements hold them under the account's row lock (which re-checks the balance)."""

from __future__ import annotations

from app.core import pg
from app.core.errors import ValidationFailed
from app.stored_value.instruments import SpendContext, Tender, TenderRequest, register
from app.stored_value.ledger import InsufficientBalance, account_of
from app.stored_value.loyalty.ledger import INSTRUMENT, KIND
from app.stored_value.loyalty.program import Program, program_of

_PROGRAM = """
    SELECT enabled, points_per_unit, tiers, expiry_days, redeem_points, redeem_value_minor, min_redeem_points
    FROM loyalty_programs WHERE store_id = $1
"""
_ACCOUNT = """
    SELECT id, kind, unit, customer_id, code_last4, status, expires_at, balance_minor, held_minor, issued_minor, note,
           created_at
    FROM stored_value_accounts WHERE store_id = $1 AND customer_id = $2 AND kind = $3
"""


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={"stored_value": message})


async def program_on(conn: pg.Connection, store_id: object) -> Program:
    row = await conn.fetchrow(_PROGRAM, store_id)
    return program_of(dict(row) if row is not None else None)


def points_wanted(program: Program, request: TenderRequest, spendable: int, due_minor: int) -> int:
    """The points a request asks for: as given; else what its amount needs; else as many as pay what is due."""
    if request.points is not None:
        return request.points
    if request.amount_minor is not None:
        if request.amount_minor <= 0:
            raise _bad("The amount to pay with points must be more than zero.")
        return program.points_to_cover(min(request.amount_minor, due_minor))
    return min(spendable, program.points_to_cover(due_minor))


class LoyaltyInstrument:
    name = INSTRUMENT

    async def resolve(self, conn: pg.Connection, request: TenderRequest, ctx: SpendContext) -> Tender:
        if ctx.customer_id is None:
            raise _bad(
                "Add the customer to the ticket to use their points."
                if ctx.channel == "pos"
                else "Sign in to use your points."
            )
        program = await program_on(conn, ctx.store_id)
        if not program.enabled:
            raise _bad("This shop has no loyalty program.")
        row = await conn.fetchrow(_ACCOUNT, ctx.store_id, ctx.customer_id, KIND)
        account = account_of(row) if row is not None else None
        if account is None or account.spendable_minor <= 0:
            raise InsufficientBalance("No points to spend yet.", fields={"stored_value": "No points."})
        if account.status != "active":
            raise _bad("These points cannot be spent.")
        points = points_wanted(program, request, account.spendable_minor, ctx.due_minor)
        try:
            redemption = program.redemption(points, spendable=account.spendable_minor, due_minor=ctx.due_minor)
        except ValidationFailed as exc:
            raise _bad(exc.detail) from exc
        if redemption.amount_minor <= 0:
            raise _bad("These points are worth less than the smallest coin.")
        return Tender(INSTRUMENT, account.id, redemption.points, redemption.amount_minor, f"{redemption.points} points")


register(LoyaltyInstrument())

__all__ = ["LoyaltyInstrument", "points_wanted", "program_on"]
