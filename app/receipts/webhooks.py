"""/webhooks/whatsapp: the Cloud API's status callbacks (signed with the app secret; CSRF-exempt like every
webhook) and its subscription check."""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery

from app.receipts.channels.registry import default_channels
from app.receipts.channels.whatsapp import signature_ok, statuses_of, whatsapp_config
from app.receipts.delivery import ReceiptDeliveries


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
        settings = request.app.state.settings
        config = whatsapp_config(settings)
        if config is None:
            return Response({"error": "WhatsApp is not configured"}, status_code=404)
        body = await request.body()
        if not signature_ok(config.app_secret, body, request.headers.get("x-hub-signature-256", "")):
            return Response({"error": "bad signature"}, status_code=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return Response({"error": "not JSON"}, status_code=400)
        sessions = request.app.state.sessions
        deliveries = ReceiptDeliveries(sessions, settings, default_channels(sessions, settings))
        outcomes: list[str] = []
        for status in statuses_of(payload if isinstance(payload, dict) else {}):
            errors = status.get("errors") or [{}]
            error = str(errors[0].get("title") or errors[0].get("message") or "") if errors else ""
            outcomes.append(
                await deliveries.provider_status(str(status.get("id", "")), str(status.get("status", "")), error)
            )
        return Response({"received": outcomes})
