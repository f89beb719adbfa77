"""Inbound provider webhooks: ``POST /webhooks/sandbox``, ``/webhooks/stripe/{store_slug}``, ``/webhooks/stripe``.

No session, no CSRF (the signature is the authentication), no ORM: see app/webhooks/intake.py.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.params import FromPath

from app.core.http_errors import problem
from app.payments.registry import sandbox_webhook_secret
from app.webhooks.intake import Accepted, WebhookRejected, accept, reject, store_secrets

SIGNATURE_HEADER = "stripe-signature"


def _answer(accepted: Accepted) -> Response[dict[str, Any]]:
    return Response({"received": accepted.event_id, "duplicate": accepted.duplicate}, status_code=200)


def _rejected(exc: WebhookRejected) -> Response[dict[str, Any]]:
    return problem(
        400,
        "Webhook rejected",
        f"Webhook rejected: {exc.reason}.",
        code="webhook_rejected",
        fields={"signature": exc.reason},
    )


async def _intake(request: Request[Any, Any, Any], provider: str) -> Response[dict[str, Any]]:
    state = request.app.state
    body = await request.body()
    try:
        if provider == "sandbox":
            secrets = [sandbox_webhook_secret(state.settings)]
        elif provider == "stripe":  # the platform's Connect endpoint
            secret = state.settings.stripe_platform_webhook_secret
            secrets = [secret] if secret else []
        else:
            raise reject(provider[:20], "unknown provider")
        accepted = await accept(
            state.engine,
            state.queue,
            provider=provider,
            body=body,
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            secrets=secrets,
        )
    except WebhookRejected as exc:
        return _rejected(exc)
    return _answer(accepted)


class WebhookController(Controller):
    path = "/webhooks"
    include_in_schema = False

    @post("/{provider:str}", status_code=200)
    async def intake(self, request: Request[Any, Any, Any], provider: FromPath[str]) -> Response[dict[str, Any]]:
        return await _intake(request, provider)

    @post("/stripe", status_code=200)
    async def stripe_platform(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Connect events for the platform (its own route: the static ``stripe`` segment below shadows
        ``/{provider}`` for this path in Litestar's router)."""
        return await _intake(request, "stripe")

    @post("/stripe/{store_slug:str}", status_code=200)
    async def stripe_for_store(
        self, request: Request[Any, Any, Any], store_slug: FromPath[str]
    ) -> Response[dict[str, Any]]:
        state = request.app.state
        body = await request.body()
        try:
            store_id, secrets = await store_secrets(state.sessions, store_slug)
            if store_id is None:
                raise reject("stripe", "unknown store")
            accepted = await accept(
                state.engine,
                state.queue,
                provider="stripe",
                body=body,
                signature=request.headers.get(SIGNATURE_HEADER, ""),
                secrets=secrets,
                store_id=store_id,
            )
        except WebhookRejected as exc:
            return _rejected(exc)
        return _answer(accepted)
