"""The managers' review list: POS sales that synced with conflicts (price changed, stock short, a discount not
approved, over an offline limit…). The sale stands; a manager looks at each and resolves it with a note
(audited). Refunding or correcting stock is done where it always is (the refund, the product's stock)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.pos.models import PosSale, Register
from app.pos.sales import describe
from app.stores.models import User

__all__ = ["MAX_NOTE", "ReviewItem", "ReviewService"]

MAX_NOTE = 500


@dataclass(frozen=True)
class ReviewItem:
    sale: PosSale
    order: Order
    register_name: str
    cashier: str
    reasons: list[str]
    reviewed_by: str = ""


class ReviewService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def items(self, *, status: str = "open", limit: int = 100) -> list[ReviewItem]:
        """Sales waiting for review (oldest first), or the latest resolved ones."""
        query = (
            select(PosSale, Order, Register.name, User.name)
            .join(Order, Order.id == PosSale.order_id)
            .join(Register, Register.id == PosSale.register_id)
            .outerjoin(User, User.id == PosSale.cashier_id)
            .where(PosSale.review_status == status)
            .limit(limit)
        )
        query = query.order_by(PosSale.created_at if status == "open" else PosSale.reviewed_at.desc())
        rows = (await self.session.execute(query)).all()
        reviewers = {
            user.id: user.name
            for user in await self.session.scalars(
                select(User).where(User.id.in_({s.reviewed_by_id for s, *_ in rows if s.reviewed_by_id}))
            )
        }
        return [
            ReviewItem(
                sale=sale,
                order=order,
                register_name=register_name,
                cashier=cashier or "",
                reasons=[describe(c, order.currency) for c in sale.conflicts],
                reviewed_by=reviewers.get(sale.reviewed_by_id, "") if sale.reviewed_by_id else "",
            )
            for sale, order, register_name, cashier in rows
        ]

    async def resolve(self, sale_id: uuid.UUID, note: str, *, actor: Principal) -> PosSale:
        note = " ".join(note.split())
        if not note:
            raise ValidationFailed("Say what was done about it.", fields={"note": "Required to resolve."})
        if len(note) > MAX_NOTE:
            raise ValidationFailed("The note is too long.", fields={"note": f"At most {MAX_NOTE} characters."})
        sale = await self.session.scalar(select(PosSale).where(PosSale.id == sale_id).with_for_update())
        if sale is None:
            raise NotFound("No such sale.")
        if sale.review_status != "open":
            raise Conflict("This sale was resolved already.")
        sale.review_status = "resolved"
        sale.reviewed_by_id = actor.user_id
        sale.reviewed_at = datetime.now(UTC)
        sale.review_note = note
        order_number = await self.session.scalar(select(Order.number).where(Order.id == sale.order_id))
        audit.record(self.session, actor, "pos.review_resolved", target_type="pos_sale", target_id=sale.id,
                     details={"order_number": order_number, "note": note, "conflicts": sale.conflicts})  # fmt: skip
        await self.session.flush()
        return sale
