"""Pages: the sandbox's reader (``/pos/reader``, public: it plays the terminal on a phone or another tab) and a
register's card reader page for managers (``/staff/registers/{id}/reader``: pair by code, remove)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from app.core.errors import ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.pos.readers import clock_of
from app.pos.readers.api import reader_payments
from app.pos.readers.device import Screen, SimulatedReaderDevice
from app.pos.readers.sandbox import DEVICE_COOKIE, Outcome, new_device_secret, reader_ref_for

__all__ = ["RegisterReaderPageController", "SandboxReaderPageController"]

FormData = URLEncodedBody[dict[str, str]]
_OUTCOMES: dict[str, Outcome] = {"approve": "approve", "decline": "decline", "timeout": "timeout", "cancel": "cancel"}
_DEVICE_MAX_AGE = 365 * 86400


def _device(request: Request[Any, Any, Any]) -> SimulatedReaderDevice:
    state = request.app.state
    return SimulatedReaderDevice(state.sessions, state.redis, state.settings, clock=clock_of(state))


def _screen(screen: Screen, *, status_code: int = 200) -> Template:
    return Template("pos/_reader_screen.html", context={"screen": screen}, status_code=status_code)


class SandboxReaderPageController(Controller):
    """The simulated terminal. Its cookie holds the device's secret; the reader's id is derived from it."""

    path = "/pos/reader"
    include_in_schema = False

    @get("/")
    async def page(self, request: Request[Any, Any, Any]) -> Template:
        secret = request.cookies.get(DEVICE_COOKIE) or new_device_secret()
        screen = await _device(request).screen(reader_ref_for(secret))
        cookie = Cookie(
            key=DEVICE_COOKIE, value=secret, path="/pos/reader", httponly=True, samesite="lax", max_age=_DEVICE_MAX_AGE
        )
        return Template("pos/reader.html", context={"screen": screen}, cookies=[cookie])

    @get("/screen")
    async def screen(self, request: Request[Any, Any, Any]) -> Template:
        """The screen alone: the page polls it (htmx, every second)."""
        secret = request.cookies.get(DEVICE_COOKIE)
        if not secret:
            return _screen(Screen("pairing"))
        return _screen(await _device(request).screen(reader_ref_for(secret)))

    @post("/press", status_code=200, media_type=MediaType.HTML)
    async def press(self, request: HTMXRequest, data: FormData) -> Response[Any]:
        """A button on the reader: approve, decline, time out or cancel the payment waiting on it."""
        secret = request.cookies.get(DEVICE_COOKIE)
        outcome = _OUTCOMES.get(data.get("outcome", ""))
        if not secret or outcome is None:
            raise ValidationFailed("Press Approve, Decline, Time out or Cancel.", fields={"outcome": "Unknown."})
        screen = await _device(request).press(reader_ref_for(secret), outcome)
        if not request.htmx:
            return Redirect("/pos/reader", status_code=303)
        return _screen(screen)


class RegisterReaderPageController(Controller):
    """A register's card reader: who it is, pair one by the code it shows, or remove it (managers)."""

    path = "/staff/registers/{register_id:uuid}/reader"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        register_id: uuid.UUID,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        payments = await reader_payments(request)
        register, reader = await payments.register_and_reader(register_id)
        return Template(
            "pos/register_reader.html",
            context={
                "me": principal_of(request),
                "register": register,
                "reader": reader,
                "kind": payments.reader.name,
                "errors": errors or {},
                "values": values or {},
            },
            status_code=status_code,
        )

    @get("/")
    async def show(self, request: Request[Any, Any, Any], register_id: FromPath[uuid.UUID]) -> Template:
        return await self._page(request, register_id)

    @post("/", status_code=303, media_type=MediaType.HTML)
    async def pair(
        self, request: Request[Any, Any, Any], register_id: FromPath[uuid.UUID], data: FormData
    ) -> Template | Redirect:
        values = {k: data.get(k, "") for k in ("code", "label", "location")}
        try:
            reader = await (await reader_payments(request)).pair(
                register_id, code=values["code"], label=values["label"], location=values["location"]
            )
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(request, register_id, errors=errors, values=values, status_code=422)
        flash(request, f"{reader.label} is paired with this register.", category="success")
        return Redirect(f"/staff/registers/{register_id}/reader", status_code=303)

    @post("/remove", status_code=303, media_type=MediaType.HTML)
    async def remove(self, request: Request[Any, Any, Any], register_id: FromPath[uuid.UUID]) -> Redirect:
        removed = await (await reader_payments(request)).unpair(register_id)
        flash(request, "The reader was removed." if removed else "This register had no reader.", category="info")
        return Redirect(f"/staff/registers/{register_id}/reader", status_code=303)
