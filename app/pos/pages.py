"""The POS's staff pages: registers (``/staff/registers``), the review list (``/staff/pos/review``) and a manager's
PIN (``/staff/pos/pin``) for managers; a shift's printable report and its CSV (``/pos/shifts/{id}/report``) for
anyone at the till."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import FromPath
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template

from app.core.errors import TillError
from app.core.rbac import Role, principal_of, require_role
from app.pos.pins import PinService
from app.pos.registers import RegisterService
from app.pos.reports import report_csv
from app.pos.review import ReviewService
from app.pos.settings import TENDER_CHOICES, TENDER_NAMES, PosSettings, form_values, parse_form
from app.pos.shifts import ShiftService
from app.stores.controllers import DbSession, FormData
from app.stores.services import StoreService

__all__ = ["PosPagesController", "RegisterPagesController", "ShiftReportPagesController"]


class RegisterPagesController(Controller):
    """Managers: the store's registers, their open shifts and readers; create, rename, deactivate."""

    path = "/staff/registers"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        row_errors: dict[str, str] | None = None,
        till_values: dict[str, Any] | None = None,
        till_errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        me = principal_of(request)
        rows = await RegisterService(db_session, me.store_id).rows(include_inactive=True)
        store = await StoreService(db_session, me.store_id).get()
        context = {
            "me": me,
            "rows": rows,
            "errors": errors or {},
            "values": values or {},
            "row_errors": row_errors or {},
            "till": till_values or form_values(PosSettings.of(store.settings), store.currency),
            "till_errors": till_errors or {},
            "tender_choices": TENDER_CHOICES,
            "tender_names": TENDER_NAMES,
        }
        return Template("pos/registers.html", context=context, status_code=status_code)

    @get("/", name="pos_registers")
    async def registers(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await self._page(request, db_session)

    @post("/", status_code=303, media_type=MediaType.HTML)
    async def create(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            register = await RegisterService(db_session, me.store_id).create(data.get("name", ""), actor=me)
        except TillError as exc:
            errors = {"form": exc.detail, **exc.fields}
            values = {"name": data.get("name", "")}
            return await self._page(request, db_session, errors=errors, values=values, status_code=exc.status_code)
        flash(request, f"{register.name} is ready: open a shift on it at /pos.", category="success")
        return Redirect("/staff/registers", status_code=303)

    @post("/settings", status_code=303, media_type=MediaType.HTML)
    async def till_settings(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template | Redirect:
        """The store's POS settings: the cashiers' discount limit and the offline limits (audited)."""
        me = principal_of(request)
        form = await request.form()
        text = {k: str(form.get(k, "")) for k in ("discount_limit_percent", "max_offline_sale", "max_offline_total",
                                                  "max_offline_hours")}  # fmt: skip
        tenders = [str(t) for t in form.getall("offline_tenders", [])]
        stores = StoreService(db_session, me.store_id)
        try:
            pos = parse_form(text, tenders, (await stores.get()).currency)
        except TillError as exc:
            values = {**text, "offline_tenders": tenders}
            return await self._page(request, db_session, till_values=values,
                                    till_errors={"form": exc.detail, **exc.fields}, status_code=422)  # fmt: skip
        await stores.set_settings({"pos": pos}, actor=me, action="settings.pos")
        flash(request, "Till settings saved: tablets take them with their next catalog.", category="success")
        return Redirect("/staff/registers", status_code=303)

    @post("/{register_id:uuid}/rename", status_code=303, media_type=MediaType.HTML)
    async def rename(
        self, request: Request[Any, Any, Any], register_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            register = await RegisterService(db_session, me.store_id).rename(
                register_id, data.get("name", ""), actor=me
            )
        except TillError as exc:
            if exc.status_code == 404:
                raise
            await db_session.rollback()
            return await self._page(
                request, db_session, row_errors={str(register_id): exc.fields.get("name", exc.detail)}, status_code=422
            )
        flash(request, f"Renamed to {register.name}.", category="success")
        return Redirect("/staff/registers", status_code=303)

    @post("/{register_id:uuid}/active", status_code=303, media_type=MediaType.HTML)
    async def set_active(
        self, request: Request[Any, Any, Any], register_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        active = data.get("active") == "true"
        try:
            register = await RegisterService(db_session, me.store_id).set_active(register_id, active, actor=me)
        except TillError as exc:
            if exc.status_code == 404:
                raise
            return await self._page(request, db_session, row_errors={str(register_id): exc.detail}, status_code=409)
        word = "is back on the tablets" if active else "is deactivated: the tablets no longer offer it"
        flash(request, f"{register.name} {word}.", category="success")
        return Redirect("/staff/registers", status_code=303)


class PosPagesController(Controller):
    """Managers: sales that synced with conflicts, and their own PIN for approvals at the till."""

    path = "/staff/pos"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    async def _review(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        *,
        errors: dict[str, dict[str, str]] | None = None,
        status_code: int = 200,
    ) -> Template:
        me = principal_of(request)
        review = ReviewService(db_session, me.store_id)
        context = {
            "me": me,
            "items": await review.items(),
            "resolved": await review.items(status="resolved", limit=20),
            "errors": errors or {},
        }
        return Template("pos/review.html", context=context, status_code=status_code)

    @get("/review", name="pos_review")
    async def review(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await self._review(request, db_session)

    @post("/review/{sale_id:uuid}/resolve", status_code=303, media_type=MediaType.HTML)
    async def resolve(
        self, request: Request[Any, Any, Any], sale_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            await ReviewService(db_session, me.store_id).resolve(sale_id, data.get("note", ""), actor=me)
        except TillError as exc:
            if exc.status_code == 404:
                raise
            await db_session.rollback()
            errors = {str(sale_id): {"note": exc.fields.get("note", exc.detail)}}
            return await self._review(request, db_session, errors=errors, status_code=exc.status_code)
        flash(request, "Resolved.", category="success")
        return Redirect("/staff/pos/review", status_code=303)

    async def _pin(
        self, request: Request[Any, Any, Any], db_session: DbSession, *, errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:  # fmt: skip
        me = principal_of(request)
        has_pin = await PinService(db_session, me.store_id).has_pin(me.user_id)
        context = {"me": me, "has_pin": has_pin, "errors": errors or {}, "values": {}}
        return Template("pos/pin.html", context=context, status_code=status_code)

    @get("/pin", name="pos_pin")
    async def pin(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await self._pin(request, db_session)

    @post("/pin", status_code=303, media_type=MediaType.HTML)
    async def set_pin(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        pins = PinService(db_session, me.store_id)
        try:
            if data.get("action") == "clear":
                await pins.clear_pin(me)
                message = "Your PIN is removed: you approve at the till by signing in there."
            else:
                await pins.set_pin(me, data.get("pin", ""), data.get("confirm", ""))
                message = "Your PIN is set: enter it on a tablet to approve a discount or a refund."
        except TillError as exc:
            return await self._pin(request, db_session, errors={"form": exc.detail, **exc.fields}, status_code=422)
        flash(request, message, category="success")
        return Redirect("/staff/pos/pin", status_code=303)


class ShiftReportPagesController(Controller):
    """A shift's report for the till: printable, and as CSV."""

    path = "/pos/shifts"
    guards = [require_role]
    include_in_schema = False

    @get("/{shift_id:uuid}/report", name="pos_shift_report")
    async def report(
        self, request: Request[Any, Any, Any], shift_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        me = principal_of(request)
        report = await ShiftService(db_session, me.store_id).report(shift_id)
        return Template("pos/shift_report.html", context={"me": me, "report": report})

    @get("/{shift_id:uuid}/report.csv", name="pos_shift_report_csv")
    async def report_csv(
        self, request: Request[Any, Any, Any], shift_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Response[str]:
        report = await ShiftService(db_session, principal_of(request).store_id).report(shift_id)
        opened = report.shift.opened_at.strftime("%Y-%m-%d")
        name = f"shift-{report.register_name or 'register'}-{opened}.csv".replace(" ", "-").replace('"', "")
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )
