"""The loyalty program's service: read and save a store's program (audited), and its members' tiers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.stored_value.loyalty.form import program_from_form
from app.stored_value.loyalty.models import LoyaltyAccrual, LoyaltyMember, LoyaltyProgram
from app.stored_value.loyalty.program import Program, program_of, validate_program

AUDIT_ACTION = "loyalty.program"


def _row_dict(row: LoyaltyProgram | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "enabled": row.enabled,
        "points_per_unit": row.points_per_unit,
        "tiers": row.tiers,
        "expiry_days": row.expiry_days,
        "redeem_points": row.redeem_points,
        "redeem_value_minor": row.redeem_value_minor,
        "min_redeem_points": row.min_redeem_points,
    }


@dataclass(frozen=True)
class MemberView:
    """What a shopper (or the member page) sees: tier, qualifying points and what the next tier needs."""

    tier: str
    qualifying_points: int
    next_tier: str | None
    points_to_next: int | None
    tier_computed_at: datetime | None


class LoyaltyProgramService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        bind_store(session, store_id)
        self.session = session
        self.store_id = store_id

    async def _row(self, *, for_update: bool = False) -> LoyaltyProgram | None:
        query = select(LoyaltyProgram).where(LoyaltyProgram.store_id == self.store_id)
        if for_update:
            query = query.with_for_update()
        row: LoyaltyProgram | None = await self.session.scalar(query)
        return row

    async def get(self) -> Program:
        return program_of(_row_dict(await self._row()))

    async def save(self, payload: Mapping[str, Any], *, actor: Principal | None) -> Program:
        """Check and store the program (``Program.as_dict``'s shape); ValidationFailed names each wrong field."""
        return await self._store(validate_program(payload), actor=actor)

    async def save_form(self, form: Mapping[str, str], currency: str, *, actor: Principal | None) -> Program:
        return await self._store(program_from_form(form, currency), actor=actor)

    async def _store(self, program: Program, *, actor: Principal | None) -> Program:
        row = await self._row(for_update=True)
        before = _row_dict(row)
        if row is None:
            row = LoyaltyProgram(store_id=self.store_id)
            self.session.add(row)
        data = program.as_dict()
        for key, value in data.items():
            setattr(row, key, value)
        changed = {k: v for k, v in data.items() if before is None or before.get(k) != v}
        if changed:
            audit.record(
                self.session, actor, AUDIT_ACTION, target_type="store", target_id=self.store_id, details=changed
            )
        await self.session.flush()
        return program

    async def member(self, customer_id: uuid.UUID) -> LoyaltyMember | None:
        member: LoyaltyMember | None = await self.session.scalar(
            select(LoyaltyMember).where(LoyaltyMember.customer_id == customer_id)
        )
        return member

    async def member_view(self, program: Program, customer_id: uuid.UUID) -> MemberView:
        member = await self.member(customer_id)
        qualifying = member.qualifying_points if member else 0
        tier = program.tier_named(member.tier) if member else program.tiers[0]
        nxt = next((t for t in program.tiers if t.threshold > tier.threshold), None)
        return MemberView(
            tier=tier.name,
            qualifying_points=qualifying,
            next_tier=nxt.name if nxt else None,
            points_to_next=max(nxt.threshold - qualifying, 0) if nxt else None,
            tier_computed_at=member.tier_computed_at if member else None,
        )

    async def accruals(self, customer_id: uuid.UUID, limit: int = 50) -> list[LoyaltyAccrual]:
        return list(
            await self.session.scalars(
                select(LoyaltyAccrual)
                .where(LoyaltyAccrual.customer_id == customer_id)
                .order_by(LoyaltyAccrual.earned_at.desc())
                .limit(limit)
            )
        )


__all__ = ["AUDIT_ACTION", "LoyaltyProgramService", "MemberView"]
