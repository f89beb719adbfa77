"""Gift cards and store credit at the POS (issue 15): the sale's stored-value tenders resolved to accounts (spent
in the sale's own statement, app/stored_value/fragments.py), and the tablet's gift card lookup
``GET /pos/api/gift-cards/lookup`` (cashiers; the lookup limiter per register address and per store).

Online, an unknown code or a customer without store credit is a 422 naming the tender; at sync the sale was made
already, so it is recorded with a conflict for the managers' review and nothing is spent from that tender.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.errors import NotFound, ValidationFailed
from app.core.rbac import principal_of, require_role
from app.stored_value import codes
from app.stored_value.instruments import Tender, find_gift_card
from app.stored_value.ledger import Account, account_of
from app.stored_value.lookup import lookup
from app.stored_value.loyalty.pos import pos_points_tender

DbSession = NamedDependency[AsyncSession]
_CREDIT = """
    SELECT id, kind, unit, customer_id, code_last4, status, expires_at, balance_minor, held_minor, issued_minor, note,
           created_at
    FROM stored_value_accounts WHERE store_id = $1 AND customer_id = $2 AND kind = 'store_credit'
"""


class _Till(Protocol):
    @property
    def store_id(self) -> uuid.UUID: ...
    @property
    def currency(self) -> str: ...
    @property
    def register_id(self) -> uuid.UUID: ...


class _Sale(Protocol):
    customer_id: uuid.UUID | None

    @property
    def tenders(self) -> Sequence[Any]: ...


async def pos_tenders(
    conn: pg.Connection,
    redis: Redis,
    till: _Till,
    sale: _Sale,
    settled: Sequence[Any],
    conflict: Callable[..., None],
    *,
    online: bool,
) -> list[Tender]:
    """The sale's gift card / store credit tenders as accounts to spend (``settled``: its tenders as they pay)."""
    out: list[Tender] = []
    for i, (given, paid) in enumerate(zip(sale.tenders, settled, strict=True)):
        if paid.kind not in ("gift_card", "store_credit", "loyalty"):
            continue
        if paid.kind == "loyalty":  # the customer's points (app/stored_value/loyalty/pos.py)
            points = await pos_points_tender(conn, till.store_id, sale.customer_id, paid.amount_minor)
            if isinstance(points, str):
                conflict(f"tenders.{i}.kind", points, kind="stored_value_unknown", instrument="loyalty",
                         wanted_minor=paid.amount_minor)  # fmt: skip
            else:
                out.append(points)
            continue
        account: Account | None = None
        if paid.kind == "gift_card":
            code = given.code or ""
            if not codes.normalise(code):
                conflict(f"tenders.{i}.code", "Enter the gift card's 16-symbol code.", kind="stored_value_unknown",
                         instrument="gift_card", wanted_minor=paid.amount_minor)  # fmt: skip
                continue
            if online:
                account = await lookup(conn, redis, till.store_id, code, client=f"register:{till.register_id}",
                                       channel="pos")  # fmt: skip
            else:  # the sale happened: no limiter, it is recorded whatever the code
                account = await find_gift_card(conn, till.store_id, code)
            missing = "No gift card has this code."
        else:
            row = await conn.fetchrow(_CREDIT, till.store_id, sale.customer_id) if sale.customer_id else None
            account = account_of(row) if row is not None else None
            missing = "Choose the customer whose store credit pays." if sale.customer_id is None else (
                "This customer has no store credit.")  # fmt: skip
        if account is None:
            conflict(f"tenders.{i}.code" if paid.kind == "gift_card" else f"tenders.{i}.kind", missing,
                     kind="stored_value_unknown", instrument=paid.kind, wanted_minor=paid.amount_minor)  # fmt: skip
            continue
        if account.unit != till.currency:
            conflict(f"tenders.{i}.kind", f"It holds {account.unit}.", kind="stored_value_unknown",
                     instrument=paid.kind, wanted_minor=paid.amount_minor)  # fmt: skip
            continue
        if any(t.account_id == account.id for t in out):
            raise ValidationFailed("The same gift card twice on one sale.", fields={f"tenders.{i}.code": "Twice."})
        label = f"Gift card •••• {account.code_last4}" if paid.kind == "gift_card" else "Store credit"
        out.append(Tender(paid.kind, account.id, paid.amount_minor, paid.amount_minor, label))
    return out


class GiftCardPosApiController(Controller):
    """The tablet's gift card lookup: what a card has to spend, before it is taken as a tender."""

    path = "/pos/api/gift-cards"
    guards = [require_role]
    include_in_schema = False

    @get("/lookup")
    async def lookup_card(
        self, request: Request[Any, Any, Any], db_session: DbSession, code: FromQuery[str] = ""
    ) -> dict[str, Any]:
        me = principal_of(request)
        if not codes.normalise(code):
            raise ValidationFailed("Enter the gift card's 16-symbol code.", fields={"code": "16 letters and digits."})
        client = request.client.host if request.client else "unknown"
        card = await lookup(await pg.reader(db_session), request.app.state.redis, me.store_id, code, client=client,
                            channel="pos")  # fmt: skip
        if card is None:
            raise NotFound("No gift card has this code.", fields={"code": "No gift card has this code."})
        return {
            "last4": card.code_last4,
            "status": card.status,
            "usable": card.usable(),
            "currency": card.unit,
            "balance_minor": card.balance_minor,
            "spendable_minor": card.spendable_minor if card.usable() else 0,
            "expires_at": card.expires_at.isoformat() if card.expires_at else None,
        }


__all__ = ["GiftCardPosApiController", "pos_tenders"]
