"""/webhooks/whatsapp: the Cloud API's status callbacks (signed with the app secret; CSRF-exempt like every
webhook) and its subscription check.

Invariant 5, through the same pipeline as the payment webhooks (app/webhooks/): the request verifies
X-Hub-Signature-256 on the raw body, stores each status of the delivery once in ``webhook_events`` (provider
``whatsapp``, event id ``<message id>:<status>``, the status object as payload) with the intake's
``INSERT … ON CONFLICT DO NOTHING`` and answers 200. The worker's webhook processor then applies it
(:func:`process_status`, called from app/webhooks/processing.py) with its retries, dead letters and the
``/staff/webhooks`` replay. A repeated delivery stores nothing new; a status applied twice (a replay) is a
no-op (``receipt_whatsapp_events`` holds each (message, status) once), and a late ``delivered`` never takes a
``read`` back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from app.config import Settings
from app.core.http_errors import problem
from app.receipts.channels.registry import default_channels
from app.receipts.channels.whatsapp import signature_ok, statuses_of, whatsapp_config
from app.receipts.delivery import ReceiptDeliveries
from app.webhooks.intake import RECEIVED, IncomingRow, RefusedPayload, reject, writer_for

PROVIDER = "whatsapp"
# A status may come before the worker that sent the message has recorded its id: an unknown message is tried
# again this many times (2 s, 4 s later) before it is taken as not ours.
UNKNOWN_RETRIES = 3


def _rejected(reason: str) -> Response[dict[str, Any]]:
    exc = reject(PROVIDER, reason)
    return problem(
        400, "Webhook rejected", f"Webhook rejected: {exc.reason}.", code="webhook_rejected",
        fields={"signature": exc.reason},
    )  # fmt: skip


def incoming_rows(payload: dict[str, Any]) -> list[IncomingRow]:
    """One row per status object (key: message id + status); statuses without an id or status are skipped."""
    rows: list[IncomingRow] = []
    for status in statuses_of(payload):
        message_id, state = str(status.get("id") or ""), str(status.get("status") or "")
        if not message_id or not state or len(message_id) + len(state) > 254:
            continue
        rows.append(
            IncomingRow(uuid7(), PROVIDER, f"{message_id}:{state}", None, f"whatsapp.{state}"[:100], json.dumps(status))
        )
    return rows


async def process_status(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, status: dict[str, Any], attempts: int
) -> tuple[str, uuid.UUID | None]:
    """Apply one stored status (the webhook processor's handler): its outcome and the store it belongs to.
    Raises while the message is unknown for its first attempts (the send may not be recorded yet)."""
    errors = status.get("errors") or [{}]
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    error = str(first.get("title") or first.get("message") or "")
    message_id, state = str(status.get("id") or ""), str(status.get("status") or "")
    deliveries = ReceiptDeliveries(sessions, settings, default_channels(sessions, settings))
    outcome, store_id = await deliveries.provider_status(message_id, state, error)
    if outcome == "unknown message":
        if attempts < UNKNOWN_RETRIES:
            raise LookupError(f"no WhatsApp receipt message {message_id} (yet)")
        return f"ignored: no WhatsApp receipt message {message_id}", None
    return f"{state}: {outcome}", store_id


class WhatsAppWebhookController(Controller):
    path = "/webhooks/whatsapp"
    include_in_schema = False

    @get("/")
    async def verify(
        self,
        request: Request[Any, Any, Any],
        mode: FromQuery[str] = "",
        token: FromQuery[str] = "",
        challenge: FromQuery[str] = "",
    ) -> Response[str]:
        """Meta's subscription check: ``hub.verify_token`` must be the app secret (query names hub.*)."""
        config = whatsapp_config(request.app.state.settings)
        params = request.query_params
        mode, token, challenge = (
            params.get("hub.mode", mode),
            params.get("hub.verify_token", token),
            params.get("hub.challenge", challenge),
        )
        if config is None or mode != "subscribe" or token != config.app_secret:
            return Response("Forbidden", status_code=403, media_type="text/plain")
        return Response(challenge, media_type="text/plain")

    @post("/", status_code=200)
    async def receive(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Verify, store each status once, answer; the worker applies them (nothing is processed here)."""
        config = whatsapp_config(request.app.state.settings)
        if config is None:
            return problem(404, "Not found", "WhatsApp is not configured.", code="not_configured")
        body = await request.body()
        if not signature_ok(config.app_secret, body, request.headers.get("x-hub-signature-256", "")):
            return _rejected("bad signature")
        try:
            payload = json.loads(body)
        except ValueError:
            return _rejected("malformed payload")
        if not isinstance(payload, dict):
            return _rejected("malformed payload")
        rows = incoming_rows(payload)
        writer = writer_for(request.app.state.engine)
        try:
            outcomes = await asyncio.gather(*(writer.store(row) for row in rows))
        except RefusedPayload:
            return _rejected("malformed payload")
        for stored in outcomes:
            RECEIVED.labels(provider=PROVIDER, outcome="stored" if stored else "duplicate").inc()
        return Response({"stored": sum(outcomes), "duplicates": len(outcomes) - sum(outcomes)})
