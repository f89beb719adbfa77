"""/staff/settings/payments (owners only): the payment provider and mode, and the Stripe keys per mode.

Keys go in once and are never shown again: the page shows hints (``sk_test_…4242``) and when they were
saved. A refused form re-renders with the secret fields empty, so a key never travels back in HTML.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.payments.credentials import MODES, PAYMENT_PROVIDERS, ProviderCredentialService
from app.stores.commerce import CommerceSettings
from app.stores.services import StoreService

FormData = URLEncodedBody[dict[str, str]]
DbSession = NamedDependency[AsyncSession]
PAGE = "/staff/settings/payments"
OWNER = {"min_role": Role.OWNER}
PROVIDER = "stripe"


def _public_key(value: str, mode: str) -> str:
    """A refused form keeps the publishable key only if it looks like one (never a pasted secret)."""
    value = value.strip()
    return value if value.startswith(f"pk_{mode}_") and len(value) <= 255 else ""


class PaymentSettingsController(Controller):
    path = PAGE
    guards = [require_role]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        *,
        failed: str | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        me = principal_of(request)
        store = await StoreService(db_session, me.store_id).get()
        current = CommerceSettings.of(store.settings)
        hints = await ProviderCredentialService(db_session, me.store_id).hints(PROVIDER)
        choice = {"provider": current.payment_provider, "mode": current.payment_mode}
        if failed == "choice" and values:
            choice = {"provider": values.get("provider", ""), "mode": values.get("mode", "")}
        return Template(
            "payments/settings.html",
            context={
                "me": me,
                "current": current,
                "choice": choice,
                "providers": PAYMENT_PROVIDERS,
                "modes": MODES,
                "hints": hints,
                "failed": failed,
                "errors": errors or {},
                "values": values or {},
            },
            status_code=status_code,
        )

    @get("/", opt=OWNER)
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await self._page(request, db_session)

    @post("/", opt=OWNER, status_code=303, media_type=MediaType.HTML)
    async def choose(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        provider, mode = data.get("provider", ""), data.get("mode", "")
        try:
            await ProviderCredentialService(db_session, me.store_id).choose(provider=provider, mode=mode)
        except ValidationFailed as exc:
            return await self._page(
                request,
                db_session,
                failed="choice",
                errors={"form": exc.detail, **exc.fields},
                values={"provider": provider, "mode": mode},
                status_code=422,
            )
        label = "the sandbox" if provider == "sandbox" else "Stripe"
        flash(request, f"Payments now use {label} in {'LIVE' if mode == 'live' else 'test'} mode.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/keys/{mode:str}", opt=OWNER, status_code=303, media_type=MediaType.HTML)
    async def save_keys(
        self, request: Request[Any, Any, Any], mode: FromPath[str], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            await ProviderCredentialService(db_session, me.store_id).save(
                provider=PROVIDER,
                mode=mode,
                secret_key=data.get("secret_key", ""),
                publishable_key=data.get("publishable_key", ""),
                webhook_secret=data.get("webhook_secret", ""),
                updated_by=me.display_name,
                updated_by_id=me.user_id,
            )
        except ValidationFailed as exc:
            return await self._page(
                request,
                db_session,
                failed=mode if mode in MODES else None,
                errors={"form": exc.detail, **exc.fields},
                values={"publishable_key": _public_key(data.get("publishable_key", ""), mode)},
                status_code=422,
            )
        flash(request, f"Stripe {mode} keys saved.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/keys/{mode:str}/remove", opt=OWNER, status_code=303, media_type=MediaType.HTML)
    async def remove_keys(
        self, request: Request[Any, Any, Any], mode: FromPath[str], db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            removed = await ProviderCredentialService(db_session, me.store_id).remove(PROVIDER, mode)
        except ValidationFailed as exc:
            return await self._page(
                request,
                db_session,
                failed=mode if mode in MODES else None,
                errors={"form": exc.detail, **exc.fields},
                status_code=422,
            )
        flash(request, f"Stripe {mode} keys removed." if removed else "There were no keys to remove.", category="info")
        return Redirect(PAGE, status_code=303)
