"""A register's receipt printer (managers): host, port (TCP 9100) and paper width, and a test print."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.core.tenancy import bind_store
from app.pos.models import Register
from app.receipts.channels import ChannelError
from app.receipts.channels.thermal import print_bytes
from app.receipts.document import Line, ReceiptDocument, Row
from app.receipts.services import ReceiptService
from app.receipts.thermal import render_escpos

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]


def test_document(register: Register, currency: str) -> ReceiptDocument:
    return ReceiptDocument(
        kind="sale", title="Test print", reference=register.name, issued_at="", currency=currency,
        store_name="Till", lines=[Line("Test line", 2, 100, 0, 200)], totals=[Row("Total", 200, strong=True)],
        footer="If you can read this, the printer works.",
    )  # fmt: skip


class PrinterPagesController(Controller):
    path = "/staff/registers/{register_id:uuid}/printer"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    async def _register(self, session: AsyncSession, store_id: uuid.UUID, register_id: uuid.UUID) -> Register:
        bind_store(session, store_id)
        register = await session.scalar(select(Register).where(Register.id == register_id))
        if register is None:
            raise NotFound("We could not find that register.")
        return register

    async def _page(
        self, request: Request[Any, Any, Any], session: AsyncSession, register_id: uuid.UUID, *,
        values: dict[str, str] | None = None, errors: dict[str, str] | None = None, status_code: int = 200,
    ) -> Template:  # fmt: skip
        me = principal_of(request)
        register = await self._register(session, me.store_id, register_id)
        printer = await ReceiptService(session, me.store_id).printer_of(register_id)
        current = {"host": printer.host, "port": str(printer.port), "paper": str(printer.paper_mm)} if printer else {}
        context = {
            "me": me,
            "register": register,
            "printer": printer,
            "values": values or current or {"host": "", "port": "9100", "paper": "80"},
            "errors": errors or {},
        }
        return Template("receipts/printer.html", context=context, status_code=status_code)

    @get("/")
    async def show(
        self, request: Request[Any, Any, Any], register_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        return await self._page(request, db_session, register_id)

    @post("/", status_code=303)
    async def save(
        self, request: Request[Any, Any, Any], register_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        await self._register(db_session, me.store_id, register_id)
        values = {k: data.get(k, "").strip() for k in ("host", "port", "paper")}
        try:
            saved = await ReceiptService(db_session, me.store_id).set_printer(register_id, **values)
        except ValidationFailed as exc:
            await db_session.rollback()
            return await self._page(request, db_session, register_id, values=values, errors=exc.fields, status_code=422)
        flash(request, "Receipt printer saved." if saved else "Receipt printer removed.", category="success")
        return Redirect(f"/staff/registers/{register_id}/printer", status_code=303)

    @post("/test", status_code=303)
    async def test_print(
        self, request: Request[Any, Any, Any], register_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Redirect:
        me = principal_of(request)
        register = await self._register(db_session, me.store_id, register_id)
        printer = await ReceiptService(db_session, me.store_id).printer_of(register_id)
        if printer is None:
            flash(request, "Save a printer first.", category="error")
        else:
            host, port = printer.host, printer.port
            data = render_escpos(test_document(register, "EUR"), paper_mm=printer.paper_mm)
            # The call may take 10 s (connect 3 + status 2 + write 5): hold no pooled connection meanwhile. Nothing
            # was written, so closing (rolling back) loses nothing; the request's commit then has nothing to do.
            await db_session.close()
            try:
                await print_bytes(host, port, data)
                flash(request, "A test receipt was printed.", category="success")
            except ChannelError as exc:
                flash(request, str(exc), category="error")
        return Redirect(f"/staff/registers/{register_id}/printer", status_code=303)
