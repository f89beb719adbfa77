"""Inbound provider webhooks: ``POST /webhooks/sandbox``, ``/webhooks/stripe/{store_slug}``, ``/webhooks/stripe``.

Raw ASGI handlers on the hot path (app/core/hot_path.py): no session, no CSRF (the signature is the
authentication), no page middleware, no ORM; see app/webhooks/intake.py for what happens to the body.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Response, asgi, post
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send

from app.core.hot_path import HOT_PATH, BodyTooLarge, Disconnected, header, read_body, send_json, send_problem
from app.core.http_errors import problem
from app.payments.registry import sandbox_webhook_secret
from app.webhooks.intake import WebhookRejected, accept, reject, store_secrets

SIGNATURE_HEADER = b"stripe-signature"


async def _intake(
    scope: Scope, receive: Receive, send: Send, provider: str, secrets: list[str], store_id: uuid.UUID | None = None
) -> None:
    try:
        body = await read_body(receive)
        accepted = await accept(
            scope["app"].state.engine,
            provider=provider,
            body=body,
            signature=header(scope, SIGNATURE_HEADER),
            secrets=secrets,
            store_id=store_id,
        )
    except WebhookRejected as exc:
        await _rejected(send, exc)
        return
    except BodyTooLarge:
        await send_problem(send, 413, "Payload too large", "A webhook body is at most 1 MiB.", code="too_large")
        return
    except Disconnected:
        return
    await send_json(send, 200, {"received": accepted.event_id, "duplicate": accepted.duplicate})


async def _rejected(send: Send, exc: WebhookRejected) -> None:
    await send_problem(
        send,
        400,
        "Webhook rejected",
        f"Webhook rejected: {exc.reason}.",
        code="webhook_rejected",
        fields={"signature": exc.reason},
    )


async def _post_only(scope: Scope, send: Send) -> bool:
    if scope.get("method") == "POST":
        return True
    await send_problem(
        send,
        405,
        "Method not allowed",
        "Webhooks are delivered with POST.",
        code="method_not_allowed",
        headers={"allow": "POST"},
    )
    return False


@asgi("/webhooks/sandbox", opt={HOT_PATH: True}, copy_scope=False)
async def sandbox_webhook(scope: Scope, receive: Receive, send: Send) -> None:
    """The sandbox's events, signed with its own secret."""
    if await _post_only(scope, send):
        await _intake(scope, receive, send, "sandbox", [sandbox_webhook_secret(scope["app"].state.settings)])


# A mount: Litestar 2.25's router cannot take path parameters on an ASGI handler (its lookup keys them by
# the HTTP method), so the store's slug is read from what follows the mount path.
@asgi("/webhooks/stripe", is_mount=True, opt={HOT_PATH: True}, copy_scope=False)
async def stripe_webhook(scope: Scope, receive: Receive, send: Send) -> None:
    """``/webhooks/stripe``: Connect events for the platform, signed with ``STRIPE_PLATFORM_WEBHOOK_SECRET``.
    ``/webhooks/stripe/{store_slug}``: a store's events, signed with its saved webhook secret (test or live)."""
    if not await _post_only(scope, send):
        return
    rest = scope["path"].strip("/")
    state = scope["app"].state
    if not rest:
        secret: str = state.settings.stripe_platform_webhook_secret
        await _intake(scope, receive, send, "stripe", [secret] if secret else [])
        return
    store_id, secrets = await store_secrets(state.sessions, rest) if "/" not in rest else (None, [])
    if store_id is None:
        await _rejected(send, reject("stripe", "unknown store"))
        return
    await _intake(scope, receive, send, "stripe", secrets, store_id)


@post("/webhooks/{provider:str}", include_in_schema=False)
async def unknown_provider_webhook(provider: FromPath[str]) -> Response[dict[str, Any]]:
    """Any other provider name (``sandbox`` and ``stripe`` are static routes, matched first)."""
    exc = reject(provider[:20], "unknown provider")
    return problem(
        400,
        "Webhook rejected",
        f"Webhook rejected: {exc.reason}.",
        code="webhook_rejected",
        fields={"signature": exc.reason},
    )


WEBHOOK_HANDLERS: list[Any] = [sandbox_webhook, stripe_webhook, unknown_provider_webhook]
