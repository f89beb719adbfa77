"""Pages that open a store: the /start sign-up, an owner's next store, the checklist's go-live and pause."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromQuery
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from redis.asyncio import Redis

from app.config import Settings
from app.core.errors import NotFound, TillError, TooManyRequests, ValidationFailed
from app.core.ratelimit import FailureLimit
from app.core.rbac import Principal, Role, principal_of, require_role
from app.shipping.addresses import SUPPORTED_COUNTRIES
from app.stores.access import SESSION_STORE, SESSION_USER
from app.stores.controllers import DbSession, FormData, _client_ip, sections_for
from app.stores.details import StoreDetailsService
from app.stores.onboarding import NewStore, OnboardingService
from app.stores.services import StoreService
from app.stores.setup import checklist, missing_to_go_live

# Sign-ups per client address per hour (successful or not): enough for a shared office, not for a script.
SIGNUP_PER_IP = FailureLimit("signup-ip", limit=20, window_s=3600)
STORE_FIELDS = ("store_name", "slug", "currency", "country", "timezone")

# Country → (currency, time zone) the form suggests; the merchant may choose others.
COUNTRY_DEFAULTS: dict[str, tuple[str, str]] = {
    "AT": ("EUR", "Europe/Vienna"), "AU": ("AUD", "Australia/Sydney"), "BE": ("EUR", "Europe/Brussels"),
    "CA": ("CAD", "America/Toronto"), "CH": ("CHF", "Europe/Zurich"), "DE": ("EUR", "Europe/Berlin"),
    "DK": ("DKK", "Europe/Copenhagen"), "ES": ("EUR", "Europe/Madrid"), "FR": ("EUR", "Europe/Paris"),
    "GB": ("GBP", "Europe/London"), "IE": ("EUR", "Europe/Dublin"), "IT": ("EUR", "Europe/Rome"),
    "LU": ("EUR", "Europe/Luxembourg"), "NL": ("EUR", "Europe/Amsterdam"), "PT": ("EUR", "Europe/Lisbon"),
    "SE": ("SEK", "Europe/Stockholm"), "US": ("USD", "America/New_York"),
}  # fmt: skip
assert set(COUNTRY_DEFAULTS) == SUPPORTED_COUNTRIES


def _new_store(data: dict[str, str]) -> NewStore:
    return NewStore(
        name=data.get("store_name", ""),
        slug=data.get("slug", ""),
        currency=data.get("currency", ""),
        country=data.get("country", ""),
        timezone=data.get("timezone", ""),
    )


def _form_context(values: dict[str, str], errors: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"values": values, "errors": errors, "countries": COUNTRY_DEFAULTS, **extra}


def _defaults() -> dict[str, str]:
    return {"country": "DE", "currency": "EUR", "timezone": "Europe/Berlin"}


def _open_or_404(request: Request[Any, Any, Any]) -> None:
    settings: Settings = request.app.state.settings
    if not settings.signup_open:
        raise NotFound("Opening a store here is by invitation: ask the people who run this Till.")


class StartController(Controller):
    """``/start``: a merchant creates their staff account and their first store in one form."""

    path = "/start"
    include_in_schema = False

    @get("/", name="start")
    async def start_page(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        _open_or_404(request)
        if isinstance(request.scope.get("user"), Principal):
            return Redirect("/staff/stores/new", status_code=303)
        return Template("auth/start.html", context=_form_context(_defaults(), {}))

    @get("/slug", name="start_slug_check")
    async def slug_check(
        self, db_session: DbSession, request: Request[Any, Any, Any], slug: FromQuery[str] = ""
    ) -> Template:
        """The address's availability as you type (HTMX; start.js fills the address from the shop's name)."""
        _open_or_404(request)
        slug = slug.strip().lower()
        problem = await OnboardingService(db_session).slug_problem(slug) if slug else None
        return Template("auth/_slug_check.html", context={"slug": slug, "problem": problem})

    @post("/", status_code=303, media_type=MediaType.HTML)
    async def sign_up(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        _open_or_404(request)
        redis: Redis = request.app.state.redis
        client = _client_ip(request)
        values = {k: data.get(k, "") for k in ("name", "email", *STORE_FIELDS)}
        try:
            wait = await SIGNUP_PER_IP.locked_for(redis, client)
            if wait:
                raise TooManyRequests("Too many new stores from this address. Try again in an hour.", retry_after=wait)
            await SIGNUP_PER_IP.record_failure(redis, client)  # counts every attempt
            if data.get("password", "") != data.get("password_confirm", ""):
                raise ValidationFailed(
                    "Check the highlighted fields.", fields={"password_confirm": "The two passwords differ."}
                )
            store, user = await OnboardingService(db_session).sign_up(
                _new_store(data),
                name=data.get("name", ""),
                email=data.get("email", ""),
                password=data.get("password", ""),
            )
        except TillError as exc:
            errors = {"form": exc.detail, **exc.fields}
            return Template("auth/start.html", context=_form_context(values, errors), status_code=exc.status_code)
        request.set_session({SESSION_USER: str(user.id), SESSION_STORE: str(store.id)})
        flash(
            request, f"Welcome to Till. {store.name} is ready to set up; shoppers see it once you go live.", "success"
        )
        return Redirect("/staff", status_code=303)


class StoreLifecycleController(Controller):
    """An owner's next store, and going live or pausing from the setup checklist."""

    path = "/staff"
    guards = [require_role]
    include_in_schema = False

    @get("/", name="staff_home")
    async def home(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await self._home(request, db_session)

    async def _home(
        self, request: Request[Any, Any, Any], db_session: DbSession, *, error: str = "", status_code: int = 200
    ) -> Template:
        me = principal_of(request)
        steps = []
        if me.can(Role.MANAGER):
            store = await StoreService(db_session, me.store_id).get()
            steps = await checklist(db_session, store)
        context = {
            "me": me,
            "sections": sections_for(me),
            "steps": steps if not all(step.done for step in steps) else [],
            "go_live_error": error,
        }
        return Template("staff/home.html", context=context, status_code=status_code)

    @get("/stores/new", opt={"min_role": Role.OWNER})
    async def new_store_page(self, request: Request[Any, Any, Any]) -> Template:
        _open_or_404(request)
        me = principal_of(request)
        return Template("staff/new_store.html", context=_form_context(_defaults(), {}, me=me))

    @post("/stores/new", opt={"min_role": Role.OWNER}, status_code=303, media_type=MediaType.HTML)
    async def create_store(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        _open_or_404(request)
        me = principal_of(request)
        assert me.user_id is not None
        onboarding = OnboardingService(db_session)
        try:
            store = await onboarding.create_store(_new_store(data), await onboarding.owner(me.user_id), actor=me)
        except TillError as exc:
            values = {k: data.get(k, "") for k in STORE_FIELDS}
            context = _form_context(values, {"form": exc.detail, **exc.fields}, me=me)
            return Template("staff/new_store.html", context=context, status_code=exc.status_code)
        request.set_session({SESSION_USER: str(me.user_id), SESSION_STORE: str(store.id)})
        flash(request, f"{store.name} is created. You are now working in it.", category="success")
        return Redirect("/staff", status_code=303)

    @post("/go-live", opt={"min_role": Role.OWNER}, status_code=303, media_type=MediaType.HTML)
    async def go_live(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template | Redirect:
        me = principal_of(request)
        store = await StoreService(db_session, me.store_id).get()
        missing = missing_to_go_live(await checklist(db_session, store))
        try:
            await StoreDetailsService(db_session, me.store_id).go_live(missing, actor=me)
        except ValidationFailed as exc:
            return await self._home(request, db_session, error=exc.detail, status_code=422)
        flash(request, f"{store.name} is live: shoppers can order at /s/{store.slug}.", category="success")
        return Redirect("/staff", status_code=303)

    @post("/pause", opt={"min_role": Role.OWNER}, status_code=303, media_type=MediaType.HTML)
    async def pause(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        me = principal_of(request)
        await StoreDetailsService(db_session, me.store_id).pause(actor=me)
        flash(request, "The storefront says “opening soon” again. Orders already placed are not affected.", "info")
        return Redirect("/staff/settings", status_code=303)
