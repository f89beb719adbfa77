"""Staff promotion pages (managers): the list with status, usage and discount given (filters, live search), the
store's refund setting, create and edit with inline validation (the code's uniqueness checked as you type), pause,
resume, soft delete, and one promotion's usage report, history and CSV export.

Plain forms (they work without JavaScript): a success answers 303; a refusal re-renders the form with each
message next to its field and status 422, and nothing is written.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.services import CatalogService
from app.core.csv_export import csv_response
from app.core.errors import ValidationFailed
from app.core.rbac import Principal, Role, principal_of, require_role
from app.promotions.models import KINDS, Promotion
from app.promotions.schemas import form_errors, form_values, spec_from_form
from app.promotions.services import (
    KIND_LABELS,
    STATES,
    ListFilter,
    PromotionService,
    PromotionSettings,
    PromotionSpec,
    describe,
    state_of,
    window_text,
)

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]
BASE = "/staff/promotions"


class PromotionPagesController(Controller):
    path = BASE
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get("/")
    async def list_promotions(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        status: FromQuery[str] = "",
        kind: FromQuery[str] = "",
        q: FromQuery[str] = "",
    ) -> Template:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        filters = ListFilter(state=status if status in STATES else "", kind=kind if kind in KINDS else "", search=q)
        context = {
            "me": me,
            "rows": await service.rows(filters),
            "filters": filters,
            "states": STATES,
            "kinds": KIND_LABELS,
            "describe": describe,
            "window_text": window_text,
            "settings": await service.settings(),
        }
        partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "promotion-rows"
        return Template("promotions/_rows.html" if partial else "promotions/list.html", context=context)

    @post("/settings", status_code=303)
    async def save_settings(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Redirect:
        me = principal_of(request)
        chosen = PromotionSettings(return_use_on_refund=bool(data.get("return_use_on_refund")))
        await PromotionService(db_session, me.store_id).set_settings(chosen, actor=me)
        flash(request, "Promotion settings saved.", category="success")
        return Redirect(BASE, status_code=303)

    @get("/code-check")
    async def code_check(
        self, request: Request[Any, Any, Any], db_session: DbSession, code: FromQuery[str] = "", id: FromQuery[str] = ""
    ) -> Template:
        """The code's availability as the manager types it (HTMX)."""
        me = principal_of(request)
        try:
            exclude = uuid.UUID(id) if id else None
        except ValueError:
            exclude = None
        problem = await PromotionService(db_session, me.store_id).code_problem(code, exclude=exclude)
        return Template("promotions/_code_check.html", context={"code": code.strip().upper(), "problem": problem})

    @get("/new")
    async def new_promotion(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        values = {"mode": "code", "kind": "percentage", "applies_to": "all", "priority": "0"}
        return await _form(request, db_session, None, values, {})

    @post("/new", status_code=303, media_type=MediaType.HTML)
    async def create_promotion(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            spec = spec_from_form(data, me.currency)
            promotion = await PromotionService(db_session, me.store_id).create(spec, timezone=me.timezone, actor=me)
        except ValidationFailed as exc:
            return await _form(request, db_session, None, data, {"form": exc.detail, **form_errors(exc.fields)}, 422)
        flash(request, f"Promotion “{promotion.name}” created.", category="success")
        return Redirect(f"{BASE}/{promotion.id}", status_code=303)

    @get("/{promotion_id:uuid}")
    async def promotion(
        self, request: Request[Any, Any, Any], promotion_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        promotion = await service.get(promotion_id)
        context = {
            "me": me,
            "promotion": promotion,
            "state": state_of(promotion, datetime.now(UTC)),
            "summary": describe(promotion, me.currency),
            "window": window_text(promotion, me.timezone),
            "spec": PromotionSpec.of(promotion, me.timezone),
            "report": await service.report(promotion.id, me.timezone),
            "history": await service.history(promotion.id),
            "targets": await _target_names(db_session, me, promotion),
        }
        return Template("promotions/detail.html", context=context)

    @get("/{promotion_id:uuid}/edit")
    async def edit_promotion(
        self, request: Request[Any, Any, Any], promotion_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        me = principal_of(request)
        promotion = await PromotionService(db_session, me.store_id).get(promotion_id)
        values = form_values(PromotionSpec.of(promotion, me.timezone), me.currency)
        return await _form(request, db_session, promotion, values, {})

    @post("/{promotion_id:uuid}/edit", status_code=303, media_type=MediaType.HTML)
    async def update_promotion(
        self, request: Request[Any, Any, Any], promotion_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        try:
            spec = spec_from_form(data, me.currency)
            promotion = await service.update(promotion_id, spec, timezone=me.timezone, actor=me)
        except ValidationFailed as exc:
            current = await service.get(promotion_id)
            errors = {"form": exc.detail, **form_errors(exc.fields)}
            return await _form(request, db_session, current, data, errors, 422)
        flash(request, f"Promotion “{promotion.name}” saved.", category="success")
        return Redirect(f"{BASE}/{promotion.id}", status_code=303)

    @post("/{promotion_id:uuid}/{action:str}", status_code=303)
    async def act(
        self,
        request: Request[Any, Any, Any],
        promotion_id: FromPath[uuid.UUID],
        action: FromPath[str],
        db_session: DbSession,
    ) -> Redirect:
        """pause | resume | delete."""
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        if action == "delete":
            promotion = await service.delete(promotion_id, actor=me)
            flash(request, f"“{promotion.name}” deleted: it no longer applies and its code is free.", "success")
            return Redirect(BASE, status_code=303)
        if action not in ("pause", "resume"):
            flash(request, "That is not something a promotion can do.", category="error")
            return Redirect(f"{BASE}/{promotion_id}", status_code=303)
        promotion = await service.set_status(promotion_id, "paused" if action == "pause" else "active", actor=me)
        flash(request, f"“{promotion.name}” {'paused' if action == 'pause' else 'resumed'}.", category="success")
        return Redirect(f"{BASE}/{promotion_id}", status_code=303)

    @get("/{promotion_id:uuid}/usage.csv")
    async def usage_csv(
        self, request: Request[Any, Any, Any], promotion_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Response[str]:
        me = principal_of(request)
        service = PromotionService(db_session, me.store_id)
        promotion = await service.get(promotion_id)
        name = (promotion.code or "automatic").lower()
        return csv_response(
            await service.csv_rows(promotion.id, me.timezone), f"promotion-{name}-{str(promotion.id)[:8]}.csv"
        )


async def _form(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    promotion: Promotion | None,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    me = principal_of(request)
    catalog = CatalogService(db_session, me.store_id)
    context = {
        "me": me,
        "promotion": promotion,
        "values": values,
        "errors": errors,
        "kinds": KIND_LABELS,
        "products": await catalog.browse(include_inactive=True),
        "categories": await catalog.categories(),
    }
    return Template("promotions/form.html", context=context, status_code=status_code)


async def _target_names(db_session: AsyncSession, me: Principal, promotion: Promotion) -> list[str]:
    """The names of the products or categories a promotion covers, for its page."""
    if promotion.applies_to == "all":
        return []
    catalog = CatalogService(db_session, me.store_id)
    if promotion.applies_to == "products":
        wanted = set(promotion.product_ids)
        return [p.product.name for p in await catalog.browse(include_inactive=True) if str(p.product.id) in wanted]
    wanted = set(promotion.category_ids)
    return [c.name for c in await catalog.categories() if str(c.id) in wanted]
