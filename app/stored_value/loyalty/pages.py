"""/staff/loyalty (managers and owners): the store's loyalty program — points per currency unit, tiers with
thresholds and multipliers, point expiry, redemption rate and minimum — the last integrity check, and members:
found by e-mail, one member's points, tier, earnings and ledger, adjusted with a reason. Plain forms: saved → 303;
refused → the form again with each message next to its field (422) and nothing written."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.stored_value.loyalty.form import form_values, tier_rows
from app.stored_value.loyalty.maintenance import LoyaltyMaintenance
from app.stored_value.loyalty.members import LoyaltyMembers
from app.stored_value.loyalty.metrics import refresh as _refresh_metrics  # noqa: F401 (its /metrics hook)
from app.stored_value.loyalty.program import MAX_TIERS, QUALIFYING_DAYS, Program
from app.stored_value.loyalty.services import LoyaltyProgramService

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]
PAGE = "/staff/loyalty"


class LoyaltyPagesController(Controller):
    path = PAGE
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        program: Program,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        status_code: int = 200,
        q: str = "",
    ) -> Template:
        me = principal_of(request)
        return Template(
            "stored_value/loyalty_settings.html",
            context={
                "me": me,
                "program": program,
                "values": values,
                "errors": errors,
                "tier_rows": tier_rows(values),
                "max_tiers": MAX_TIERS,
                "qualifying_days": QUALIFYING_DAYS,
                "q": q,
                "members": await LoyaltyMembers(db_session, me.store_id).search(q) if q.strip() else None,
                "last_check": await LoyaltyMaintenance(db_session, me.store_id).last_run(),
            },
            status_code=status_code,
        )

    @get("/")
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession, q: FromQuery[str] = "") -> Template:
        me = principal_of(request)
        program = await LoyaltyProgramService(db_session, me.store_id).get()
        return await self._page(request, db_session, program, form_values(program, me.currency), {}, q=q[:254])

    @post("/", status_code=303, media_type=MediaType.HTML)
    async def save(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Template | Redirect:
        me = principal_of(request)
        service = LoyaltyProgramService(db_session, me.store_id)
        try:
            program = await service.save_form(data, me.currency, actor=me)
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(request, db_session, await service.get(), data, errors, 422)
        flash(
            request,
            "Loyalty program saved." + (" Paid orders earn points from now on." if program.enabled else " It is off."),
            category="success",
        )
        return Redirect(PAGE, status_code=303)

    async def _member_page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        customer_id: uuid.UUID,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        me = principal_of(request)
        member = await LoyaltyMembers(db_session, me.store_id).detail(customer_id)
        return Template(
            "stored_value/loyalty_member.html",
            context={"me": me, "member": member, "values": values or {}, "errors": errors or {}},
            status_code=status_code,
        )

    @get("/members/{customer_id:uuid}")
    async def member(
        self, request: Request[Any, Any, Any], customer_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        return await self._member_page(request, db_session, customer_id)

    @post("/members/{customer_id:uuid}/adjust", status_code=303, media_type=MediaType.HTML)
    async def adjust(
        self,
        request: Request[Any, Any, Any],
        customer_id: FromPath[uuid.UUID],
        data: FormData,
        db_session: DbSession,
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            entry = await LoyaltyMembers(db_session, me.store_id).adjust(
                customer_id, data.get("points", ""), data.get("reason", ""), actor=me
            )
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._member_page(request, db_session, customer_id, data, errors, 422)
        flash(request, f"{entry.delta_minor:+,} points recorded.", category="success")
        return Redirect(f"{PAGE}/members/{customer_id}", status_code=303)


__all__ = ["LoyaltyPagesController"]
