"""/staff/loyalty (managers and owners): the store's loyalty program — points per currency unit, tiers with
thresholds and multipliers, point expiry, redemption rate and minimum. A plain form: saved → 303; refused → the
form again with each message next to its field (422) and nothing written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.stored_value.loyalty.form import form_values, tier_rows
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

    def _page(
        self,
        request: Request[Any, Any, Any],
        program: Program,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        status_code: int = 200,
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
            },
            status_code=status_code,
        )

    @get("/")
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        me = principal_of(request)
        program = await LoyaltyProgramService(db_session, me.store_id).get()
        return self._page(request, program, form_values(program, me.currency), {})

    @post("/", status_code=303, media_type=MediaType.HTML)
    async def save(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Template | Redirect:
        me = principal_of(request)
        service = LoyaltyProgramService(db_session, me.store_id)
        try:
            program = await service.save_form(data, me.currency, actor=me)
        except ValidationFailed as exc:
            return self._page(request, await service.get(), data, {"form": exc.detail, **exc.fields}, 422)
        flash(
            request,
            "Loyalty program saved." + (" Paid orders earn points from now on." if program.enabled else " It is off."),
            category="success",
        )
        return Redirect(PAGE, status_code=303)


__all__ = ["LoyaltyPagesController"]
