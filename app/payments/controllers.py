"""The sandbox provider's pages: the 3-D Secure challenge a test card asks for, and Connect onboarding."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.models import CheckoutAttempt
from app.core.errors import NotFound
from app.core.jobs import enqueue
from app.core.tenancy import system_scope
from app.payments.connect import store_for_account
from app.payments.models import PaymentIntent
from app.payments.provider import PaymentError
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.stores.commerce import CommerceSettings
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]


async def _challenge(db_session: AsyncSession, ref: str) -> tuple[Store, CheckoutAttempt | None, PaymentIntent]:
    """The payment's store, the checkout attempt waiting for it (none for an order's payment made through the
    API) and the payment."""
    system_scope(db_session)
    row = (
        await db_session.execute(
            select(Store, CheckoutAttempt, PaymentIntent)
            .join(PaymentIntent, PaymentIntent.store_id == Store.id)
            .outerjoin(CheckoutAttempt, CheckoutAttempt.payment_intent_id == PaymentIntent.id)
            .where(PaymentIntent.provider_ref == ref, PaymentIntent.provider == "sandbox")
        )
    ).first()
    if row is None:
        raise NotFound("No such payment is waiting for 3-D Secure.")
    return row[0], row[1], row[2]


def _sandbox_of(request: Request[Any, Any, Any], store: Store) -> SandboxProvider:
    provider = provider_for(store, request.app.state.redis, request.app.state.settings)
    assert isinstance(provider, SandboxProvider)
    return provider


async def _onboarding(
    request: Request[Any, Any, Any], db_session: AsyncSession, account_id: str
) -> tuple[Store, SandboxProvider]:
    """The sandbox store that owns ``account_id`` and its provider (404 for any other account)."""
    store = await store_for_account(db_session, account_id)
    if store is None or CommerceSettings.of(store.settings).payment_provider != "sandbox":
        raise NotFound("No such account is onboarding.")
    provider = provider_for(store, request.app.state.redis, request.app.state.settings)
    assert isinstance(provider, SandboxProvider)
    return store, provider


class SandboxController(Controller):
    path = "/sandbox"
    include_in_schema = False

    @get("/3ds/{ref:str}")
    async def challenge_page(
        self, request: Request[Any, Any, Any], ref: FromPath[str], db_session: DbSession
    ) -> Template:
        store, _, intent = await _challenge(db_session, ref)
        payment = await _sandbox_of(request, store).get_transaction(ref)
        return Template(
            "payments/challenge.html",
            context={"store": store, "intent": intent, "ref": ref, "status": str(payment.status)},
        )

    @post("/3ds/{ref:str}", status_code=303, media_type=MediaType.HTML)
    async def decide(
        self,
        request: Request[Any, Any, Any],
        ref: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
        db_session: DbSession,
    ) -> Redirect:
        store, attempt, _ = await _challenge(db_session, ref)
        provider = _sandbox_of(request, store)
        await provider.complete_challenge(ref, approve=data.get("decision") == "approve")
        if attempt is not None:
            return Redirect(f"/s/{store.slug}/checkout/attempts/{attempt.id}/return", status_code=303)
        # No checkout waits for it (an order's payment authorised through the API): the sandbox's bank tells
        # Till by a signed webhook, as Stripe's would, and the payer goes back to the authorisation's return URL
        # (kept by the sandbox, never taken from this request), or sees the outcome here.
        await enqueue(request.app.state.queue, "sandbox_notify", key=f"sandbox_notify:{ref}", provider_ref=ref)
        return Redirect(await provider.challenge_return_url(ref) or f"/sandbox/3ds/{ref}", status_code=303)

    @get("/connect/{account_id:str}")
    async def onboarding_page(
        self, request: Request[Any, Any, Any], account_id: FromPath[str], db_session: DbSession
    ) -> Template:
        store, provider = await _onboarding(request, db_session, account_id)
        try:
            account = await provider.get_account(account_id)
        except PaymentError as exc:
            raise NotFound("The sandbox no longer knows this account; start onboarding again.") from exc
        return Template("payments/connect_onboarding.html", context={"store": store, "account": account})

    @post("/connect/{account_id:str}", status_code=303, media_type=MediaType.HTML)
    async def onboard(
        self,
        request: Request[Any, Any, Any],
        account_id: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
        db_session: DbSession,
    ) -> Redirect:
        """Complete (or leave) onboarding, then back to the return URL the link was made with (stored, not
        taken from the query: no open redirect)."""
        _, provider = await _onboarding(request, db_session, account_id)
        try:
            if data.get("decision") == "complete":
                await provider.complete_onboarding(account_id)
            target = await provider.return_url_for(account_id)
        except PaymentError as exc:
            raise NotFound("The sandbox no longer knows this account; start onboarding again.") from exc
        return Redirect(target or "/staff/payouts", status_code=303)
