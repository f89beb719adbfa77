"""/api/v1/admin/promotions: promotions for integrations (managers' tokens): list, create, read, change (pause or
resume with ``status``), soft delete, and one promotion's usage. Errors are problem+json naming each field."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.rbac import Principal, Role, principal_of, require_role
from app.promotions.models import KINDS, Promotion
from app.promotions.schemas import PromotionIn, PromotionOut, PromotionPatch, UsageReportOut
from app.promotions.services import STATES, ListFilter, PromotionRow, PromotionService, PromotionSpec, state_of

DbSession = NamedDependency[AsyncSession]


async def _out(service: PromotionService, promotion: Promotion, me: Principal) -> PromotionOut:
    row = PromotionRow(promotion, state_of(promotion, datetime.now(UTC)), await service.usage_of(promotion.id))
    return PromotionOut.of(row, me.timezone, me.currency)


class PromotionsAdminApiController(Controller):
    path = "/api/v1/admin/promotions"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["promotions"]

    @get(
        "/",
        summary="Promotions, newest first, with their state and usage",
        description="Filters combine; status is the state the list shows. Deleted promotions only with status=deleted.",
    )
    async def list_promotions(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        status: Annotated[str, QueryParameter(description=" | ".join(STATES))] = "",
        kind: Annotated[str, QueryParameter(description=" | ".join(KINDS))] = "",
        q: Annotated[str, QueryParameter(description="Part of the name or the code")] = "",
    ) -> list[PromotionOut]:
        me = principal_of(request)
        filters = ListFilter(state=status if status in STATES else "", kind=kind if kind in KINDS else "", search=q)
        rows = await PromotionService(db_session, me.store_id).rows(filters)
        return [PromotionOut.of(row, me.timezone, me.currency) for row in rows]

    @post(
        "/",
        summary="Create a promotion",
        description="422 names every field that is wrong (a code already in use, a percentage over 100, a last day "
        "before the first, products that are not the store's...). Accepts Idempotency-Key.",
        status_code=201,
    )
    async def create_promotion(
        self, request: Request[Any, Any, Any], data: JSONBody[PromotionIn], db_session: DbSession
    ) -> PromotionOut:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        promotion = await service.create(data.spec(), timezone=me.timezone, actor=me)
        return await _out(service, promotion, me)

    @get("/{promotion_id:uuid}", summary="One promotion, with its usage")
    async def get_promotion(
        self, request: Request[Any, Any, Any], promotion_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> PromotionOut:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        return await _out(service, await service.get(promotion_id), me)

    @patch(
        "/{promotion_id:uuid}",
        summary="Change a promotion; pause or resume it (status)",
        description="Only the fields sent change; the result is checked like a new one (422 names the fields). "
        "Setting a usage limit counts the uses so far. A deleted promotion cannot change (422).",
    )
    async def change_promotion(
        self,
        request: Request[Any, Any, Any],
        promotion_id: FromPath[uuid.UUID],
        data: JSONBody[PromotionPatch],
        db_session: DbSession,
    ) -> PromotionOut:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        promotion = await service.get(promotion_id)
        changes = data.changes()
        if changes:
            spec = replace(PromotionSpec.of(promotion, me.timezone), **changes)
            promotion = await service.update(promotion_id, spec, timezone=me.timezone, actor=me)
        if isinstance(data.status, str):
            promotion = await service.set_status(promotion_id, data.status, actor=me)
        return await _out(service, promotion, me)

    @delete(
        "/{promotion_id:uuid}",
        summary="Delete a promotion (soft)",
        description="It stops applying at once and its code is free again; its usage history stays. Twice is fine.",
        status_code=200,
    )
    async def delete_promotion(
        self, request: Request[Any, Any, Any], promotion_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> PromotionOut:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        return await _out(service, await service.delete(promotion_id, actor=me), me)

    @get(
        "/{promotion_id:uuid}/usage",
        summary="A promotion's usage: totals, per day and every use",
        description="Orders, discount given and revenue count the uses on orders not given back; each use says "
        "whether it is held by a checkout paying now, used, released (the checkout failed) or returned (refunded).",
    )
    async def usage(
        self, request: Request[Any, Any, Any], promotion_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> UsageReportOut:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        promotion = await service.get(promotion_id)
        report = await service.report(promotion.id, me.timezone)
        return UsageReportOut.of(promotion.id, report, await service.history(promotion.id))
