"""The owner's payouts: Connect onboarding, the account's status, the platform fee and payouts (page and API)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import TillError
from app.core.rbac import Principal, Role, principal_of, require_role
from app.payments.connect import ConnectService, PayoutSplit, connect_state, fee_percent
from app.payments.connect_schemas import ConnectAccountOut, OnboardingLinkOut, PayoutsOut
from app.stores.commerce import CommerceSettings

DbSession = NamedDependency[AsyncSession]
OWNER = {"min_role": Role.OWNER}
PAGE = "/staff/payouts"
_RETURNED = {
    "enabled": ("Payouts are set up: your account is enabled.", "success"),
    "restricted": ("Your account is restricted: see what is still due below.", "error"),
    "pending": ("Onboarding is not finished yet. Continue where you left off.", "info"),
    "not_started": ("Payouts are not set up yet.", "info"),
}


def _service(request: Request[Any, Any, Any], db_session: AsyncSession) -> ConnectService:
    state = request.app.state
    return ConnectService(db_session, principal_of(request).store_id, redis=state.redis, settings=state.settings)


def _urls(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Where the provider sends the owner back: absolute, as Stripe wants them."""
    base = str(request.base_url).rstrip("/")
    return {"return_url": f"{base}{PAGE}/return", "refresh_url": f"{base}{PAGE}/refresh"}


class PayoutPagesController(Controller):
    path = PAGE
    guards = [require_role]
    include_in_schema = False

    @get("/", opt=OWNER)
    async def payouts_page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        me = principal_of(request)
        service = _service(request, db_session)
        store = await service.store()
        problem = ""
        try:
            payouts = await service.payouts()
        except TillError as exc:  # no Connect with this provider, or it is down: the page still says so
            payouts, problem = PayoutSplit(upcoming=[], past=[]), exc.detail
        commerce = CommerceSettings.of(store.settings)
        return Template(
            "payments/payouts.html",
            context={
                "me": me,
                "store": store,
                "connect": connect_state(store),
                "payouts": payouts,
                "problem": problem,
                "fee_percent": fee_percent(commerce.platform_fee_bps),
                "fee_fixed_minor": commerce.platform_fee_fixed_minor,
            },
        )

    @post("/onboarding", opt=OWNER, status_code=303, media_type=MediaType.HTML)
    async def start_onboarding(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        me = principal_of(request)
        try:
            link = await _service(request, db_session).start_onboarding(email=me.email or "", **_urls(request))
        except TillError as exc:
            flash(request, exc.detail, category="error")
            return Redirect(PAGE, status_code=303)
        return Redirect(link.url, status_code=303)

    @get("/return", opt=OWNER)
    async def returned(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        """The provider sends the owner back here: ask it how the account stands now."""
        try:
            state = await _service(request, db_session).refresh()
        except TillError as exc:
            flash(request, exc.detail, category="error")
        else:
            message, category = _RETURNED.get(state.status, _RETURNED["pending"])
            flash(request, message, category=category)
        return Redirect(PAGE, status_code=303)

    @get("/refresh", opt=OWNER)
    async def refresh_link(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        """The provider's link expired or was used: a new one for the same account."""
        try:
            link = await _service(request, db_session).resume_onboarding(**_urls(request))
        except TillError as exc:
            flash(request, exc.detail, category="error")
            return Redirect(PAGE, status_code=303)
        return Redirect(link.url if link else PAGE, status_code=303)


class ConnectApiController(Controller):
    path = "/api/v1/admin"
    guards = [require_role]
    tags = ["payouts"]

    @post(
        "/connect/onboarding-link",
        opt=OWNER,
        summary="Start or continue the store's Connect onboarding",
        description="Creates the store's connected account the first time (once per store), then returns a "
        "short-lived link to the provider's onboarding. 409 when the store's payment provider has no Connect.",
    )
    async def onboarding_link(self, request: Request[Principal, Any, Any], db_session: DbSession) -> OnboardingLinkOut:
        me = principal_of(request)
        link = await _service(request, db_session).start_onboarding(email=me.email or "", **_urls(request))
        return OnboardingLinkOut.of(link)

    @get(
        "/connect/account",
        opt=OWNER,
        summary="The store's connected account and its onboarding status",
        description="Asks the provider (polling) and keeps the status on the store.",
    )
    async def account(self, request: Request[Principal, Any, Any], db_session: DbSession) -> ConnectAccountOut:
        return ConnectAccountOut.of(await _service(request, db_session).refresh())

    @get("/payouts", opt=OWNER, summary="The store's payouts, upcoming and past, from the provider")
    async def payouts(self, request: Request[Principal, Any, Any], db_session: DbSession) -> PayoutsOut:
        return PayoutsOut.of(await _service(request, db_session).payouts())
