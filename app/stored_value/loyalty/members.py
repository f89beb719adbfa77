"""Loyalty members for the staff: find a customer by e-mail, one member's points, tier, earnings and ledger, and a
manual adjustment with a reason (on the ledger as an ``adjust`` entry; audited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.audit import actor_label
from app.core.errors import NotFound, ValidationFailed
from app.core.rbac import Principal
from app.customers.models import Customer
from app.orders.models import Order
from app.stored_value.ledger import Entry, InsufficientBalance, Ledger
from app.stored_value.loyalty.ledger import points_account
from app.stored_value.loyalty.models import LoyaltyAccrual
from app.stored_value.loyalty.services import LoyaltyProgramService, MemberView

ADJUSTED = "loyalty: adjusted by staff"
MAX_ADJUST = 10_000_000
SEARCH_LIMIT = 20


@dataclass(frozen=True)
class MemberRow:
    customer: Customer
    balance: int
    tier: str


@dataclass(frozen=True)
class MemberDetail:
    customer: Customer
    balance: int
    spendable: int
    view: MemberView
    accruals: list[LoyaltyAccrual]
    order_numbers: dict[uuid.UUID, int]
    entries: list[Entry]


class LoyaltyMembers:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        self.programs = LoyaltyProgramService(session, store_id)  # binds the session to the store

    async def search(self, q: str) -> list[MemberRow]:
        """Customers whose e-mail starts with ``q`` (case-insensitive), with their points and tier."""
        q = q.strip().lower()
        if not q:
            return []
        like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        customers = list(
            await self.session.scalars(
                select(Customer).where(Customer.email.ilike(like)).order_by(Customer.email).limit(SEARCH_LIMIT)
            )
        )
        program = await self.programs.get()
        rows = []
        for customer in customers:
            account = await points_account(self.session, self.store_id, customer.id, create=False)
            view = await self.programs.member_view(program, customer.id)
            rows.append(MemberRow(customer, account.balance_minor if account else 0, view.tier))
        return rows

    async def detail(self, customer_id: uuid.UUID) -> MemberDetail:
        customer = await self.session.scalar(select(Customer).where(Customer.id == customer_id))
        if customer is None:
            raise NotFound("No such customer.")
        account = await points_account(self.session, self.store_id, customer_id, create=False)
        entries = await Ledger(self.session, self.store_id).entries(account.id, limit=100) if account else []
        accruals = await self.programs.accruals(customer_id, limit=100)
        numbers = await self.session.execute(
            select(Order.id, Order.number).where(Order.id.in_([a.order_id for a in accruals]))
        )
        return MemberDetail(
            customer=customer,
            balance=account.balance_minor if account else 0,
            spendable=account.spendable_minor if account else 0,
            view=await self.programs.member_view(await self.programs.get(), customer_id),
            accruals=accruals,
            order_numbers={order_id: int(number) for order_id, number in numbers},
            entries=[e for e in entries if e.delta_minor != 0],
        )

    async def adjust(self, customer_id: uuid.UUID, points_text: str, reason: str, *, actor: Principal) -> Entry:
        """Add (or with a minus, take) points with a reason; never below what the member has free to spend."""
        fields: dict[str, str] = {}
        text = points_text.strip().replace(" ", "")
        try:
            points = int(text)
        except ValueError:
            points = 0
            fields["points"] = "A whole number of points, such as 50 or -20."
        if "points" not in fields and (points == 0 or abs(points) > MAX_ADJUST):
            fields["points"] = f"From -{MAX_ADJUST:,} to {MAX_ADJUST:,}, not 0."
        if not reason.strip():
            fields["reason"] = "Say why: the customer sees the change in their history."
        elif len(reason.strip()) > 150:
            fields["reason"] = "At most 150 characters."
        if fields:
            raise ValidationFailed("Check the adjustment.", fields=fields)
        if await self.session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
            raise NotFound("No such customer.")
        account = await points_account(self.session, self.store_id, customer_id)
        assert account is not None
        try:
            entry = await Ledger(self.session, self.store_id).post(
                account.id, "adjust", points, reason=f"{ADJUSTED}: {reason.strip()}", actor=actor_label(actor)
            )
        except InsufficientBalance as exc:
            raise ValidationFailed(
                "That takes more points than the member has free.",
                fields={"points": f"At most {account.spendable_minor} can be taken."},
            ) from exc
        audit.record(
            self.session,
            actor,
            "loyalty.adjust",
            target_type="customer",
            target_id=customer_id,
            details={"points": points, "reason": reason.strip(), "account_id": str(account.id)},
        )
        return entry


__all__ = ["ADJUSTED", "LoyaltyMembers", "MemberDetail", "MemberRow"]
