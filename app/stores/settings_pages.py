"""The store settings page: details shoppers see (address, contact, colour, logo), operations (name, time zone,
board delay, refund approvals), currency and country, and whether the storefront is live."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, MediaType, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template

from app.core.errors import TillError, ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.shipping.addresses import SUPPORTED_COUNTRIES
from app.stores.commerce import CommerceSettings
from app.stores.controllers import DbSession, FormData, _major
from app.stores.details import PROFILE_FIELDS, Profile, StoreDetailsService, is_live
from app.stores.services import StoreService

LogoUpload = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
FORMS = ("general", "details", "currency", "logo")


class StoreSettingsController(Controller):
    path = "/staff/settings"
    guards = [require_role]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        *,
        form: str = "",
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        """The page; the form named ``form`` shows ``values`` and ``errors``, the others what is saved."""
        me = principal_of(request)
        details = StoreDetailsService(db_session, me.store_id)
        store = await details.stores.get()
        commerce = CommerceSettings.of(store.settings)
        profile = Profile.of(store.settings)
        saved = {
            "general": {
                "name": store.name,
                "timezone": store.timezone,
                "board_delay_minutes": str(commerce.board_delay_minutes),
                "refund_approval_threshold": _major(commerce.refund_approval_threshold_minor),
            },
            "details": {**{k: getattr(profile, k) for k in PROFILE_FIELDS}, "brand_colour": profile.brand_colour},
            "currency": {"currency": store.currency, "country": commerce.country},
            "logo": {},
        }
        context: dict[str, Any] = {
            "me": me,
            "store": store,
            "profile": profile,
            "live": is_live(store),
            "locked": await details.locked_reason(),
            "countries": sorted(SUPPORTED_COUNTRIES),
        }
        for name in FORMS:
            context[f"{name}_values"] = values if name == form and values is not None else saved[name]
            context[f"{name}_errors"] = (errors or {}) if name == form else {}
        return Template("staff/settings.html", context=context, status_code=status_code)

    @get("/", opt={"min_role": Role.MANAGER})
    async def settings_page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await self._page(request, db_session)

    @post("/", opt={"min_role": Role.MANAGER}, status_code=303, media_type=MediaType.HTML)
    async def save_settings(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            await StoreService(db_session, me.store_id).update(
                name=data.get("name", ""),
                timezone=data.get("timezone", ""),
                board_delay_minutes=data.get("board_delay_minutes"),
                refund_approval_threshold=data.get("refund_approval_threshold", "").strip(),
            )
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(request, db_session, form="general", values=data, errors=errors, status_code=422)
        flash(request, "Settings saved.", category="success")
        return Redirect("/staff/settings", status_code=303)

    @post("/details", opt={"min_role": Role.MANAGER}, status_code=303, media_type=MediaType.HTML)
    async def save_details(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            await StoreDetailsService(db_session, me.store_id).save_profile(data, actor=me)
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(request, db_session, form="details", values=data, errors=errors, status_code=422)
        flash(request, "Store details saved.", category="success")
        return Redirect("/staff/settings", status_code=303)

    @post("/currency", opt={"min_role": Role.OWNER}, status_code=303, media_type=MediaType.HTML)
    async def save_currency(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            await StoreDetailsService(db_session, me.store_id).set_currency_and_country(
                data.get("currency", ""), data.get("country", ""), actor=me
            )
        except TillError as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(
                request, db_session, form="currency", values=data, errors=errors, status_code=exc.status_code
            )
        flash(request, "Currency and country saved.", category="success")
        return Redirect("/staff/settings#currency", status_code=303)

    @post("/logo", opt={"min_role": Role.MANAGER}, status_code=303, media_type=MediaType.HTML)
    async def upload_logo(
        self, request: Request[Any, Any, Any], data: LogoUpload, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        upload = data.get("logo")
        content = await upload.read() if isinstance(upload, UploadFile) else b""
        try:
            await StoreDetailsService(db_session, me.store_id).set_logo(content, actor=me)
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(request, db_session, form="logo", values={}, errors=errors, status_code=422)
        flash(request, "Logo saved.", category="success")
        return Redirect("/staff/settings#logo", status_code=303)

    @post("/logo/remove", opt={"min_role": Role.MANAGER}, status_code=303)
    async def remove_logo(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        me = principal_of(request)
        await StoreDetailsService(db_session, me.store_id).remove_logo(actor=me)
        flash(request, "Logo removed.", category="success")
        return Redirect("/staff/settings#logo", status_code=303)
