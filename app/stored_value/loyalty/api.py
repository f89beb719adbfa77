"""/api/v1/admin/loyalty: the store's loyalty program for integrations (managers' tokens): read it, replace it.
Errors are problem+json naming each field by its path (``tiers.1.threshold``)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.rbac import Role, principal_of, require_role
from app.customers.models import Customer
from app.stored_value.loyalty.ledger import points_of
from app.stored_value.loyalty.program import Program
from app.stored_value.loyalty.services import LoyaltyProgramService

DbSession = NamedDependency[AsyncSession]


class TierOut(msgspec.Struct):
    name: str
    threshold: int
    multiplier_bps: int


class ProgramOut(msgspec.Struct):
    enabled: bool
    points_per_unit: int
    tiers: list[TierOut]
    expiry_days: int | None
    redeem_points: int
    redeem_value_minor: int
    min_redeem_points: int
    currency: str

    @classmethod
    def of(cls, program: Program, currency: str) -> ProgramOut:
        data = program.as_dict()
        data["tiers"] = [TierOut(**t) for t in data["tiers"]]
        return cls(**data, currency=currency)


class MemberOut(msgspec.Struct):
    customer_id: uuid.UUID
    tier: str
    qualifying_points: int
    next_tier: str | None
    points_to_next: int | None
    balance_points: int
    spendable_points: int


class LoyaltyAdminApiController(Controller):
    path = "/api/v1/admin/loyalty"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["loyalty"]

    @get("/program", summary="The store's loyalty program")
    async def get_program(self, request: Request[Any, Any, Any], db_session: DbSession) -> ProgramOut:
        me = principal_of(request)
        return ProgramOut.of(await LoyaltyProgramService(db_session, me.store_id).get(), me.currency)

    @put(
        "/program",
        summary="Replace the store's loyalty program",
        description="Every field is required but expiry_days (null: points never expire). points_per_unit: points per "
        "whole currency unit of the items after discounts; tiers: from threshold 0 upwards, each with a "
        "multiplier in basis points (15000 = ×1.5); redeem_points points are worth redeem_value_minor; "
        "min_redeem_points is the fewest a customer spends at a time. 422 names every wrong field. "
        "Accepts Idempotency-Key.",
    )
    async def put_program(
        self, request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]], db_session: DbSession
    ) -> ProgramOut:
        me = principal_of(request)
        program = await LoyaltyProgramService(db_session, me.store_id).save(data, actor=me)
        return ProgramOut.of(program, me.currency)

    @get("/members/{customer_id:uuid}", summary="One customer's tier and points (404 for a customer not of this store)")
    async def get_member(
        self, request: Request[Any, Any, Any], customer_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> MemberOut:
        me = principal_of(request)
        service = LoyaltyProgramService(db_session, me.store_id)  # binds the session to the store
        if await db_session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
            raise NotFound("No such customer.")
        view = await service.member_view(await service.get(), customer_id)
        balance, spendable = await points_of(db_session, me.store_id, customer_id)
        return MemberOut(
            customer_id=customer_id,
            tier=view.tier,
            qualifying_points=view.qualifying_points,
            next_tier=view.next_tier,
            points_to_next=view.points_to_next,
            balance_points=balance,
            spendable_points=spendable,
        )


__all__ = ["LoyaltyAdminApiController"]
