"""The sandbox provider's pages: the 3-D Secure challenge a test card asks for."""

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
from app.core.tenancy import system_scope
from app.payments.models import PaymentIntent
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]


async def _challenge(db_session: AsyncSession, ref: str) -> tuple[Store, CheckoutAttempt, PaymentIntent]:
    system_scope(db_session)
    row = (
        await db_session.execute(
            select(Store, CheckoutAttempt, PaymentIntent)
            .join(PaymentIntent, PaymentIntent.store_id == Store.id)
            .join(CheckoutAttempt, CheckoutAttempt.payment_intent_id == PaymentIntent.id)
            .where(PaymentIntent.provider_ref == ref, PaymentIntent.provider == "sandbox")
        )
    ).first()
    if row is None:
        raise NotFound("No such payment is waiting for 3-D Secure.")
    return row[0], row[1], row[2]


class SandboxController(Controller):
    path = "/sandbox"
    include_in_schema = False

    @get("/3ds/{ref:str}")
    async def challenge_page(self, ref: FromPath[str], db_session: DbSession) -> Template:
        store, _, intent = await _challenge(db_session, ref)
        return Template("payments/challenge.html", context={"store": store, "intent": intent, "ref": ref})

    @post("/3ds/{ref:str}", status_code=303, media_type=MediaType.HTML)
    async def decide(
        self,
        request: Request[Any, Any, Any],
        ref: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
        db_session: DbSession,
    ) -> Redirect:
        store, attempt, _ = await _challenge(db_session, ref)
        provider = provider_for(store, request.app.state.redis, request.app.state.settings)
        assert isinstance(provider, SandboxProvider)
        await provider.complete_challenge(ref, approve=data.get("decision") == "approve")
        return Redirect(f"/s/{store.slug}/checkout/attempts/{attempt.id}/return", status_code=303)
