"""WhatsApp receipts through the WhatsApp Business Cloud API: an approved template message carrying the receipt's
number, total and signed PDF link. Off unless WHATSAPP_API_URL, WHATSAPP_TOKEN and WHATSAPP_APP_SECRET are set.

The API's answer only says it accepted the message (``sent`` here); its signed status webhook
(``/webhooks/whatsapp``, X-Hub-Signature-256 over the raw body) later says delivered, read or failed. Each
(message, status) is stored once, so a repeated callback changes nothing; a ``failed`` status fails the delivery
and moves the receipt on to the next channel (app/receipts/delivery.py ``provider_failed``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

import httpx

from app.config import Settings
from app.receipts.channels import ChannelError, Facts, Outgoing

SEND_TIMEOUT_S = 8.0
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass(frozen=True)
class WhatsAppConfig:
    api_url: str  # https://graph.facebook.com/v21.0/<phone number id>
    token: str
    app_secret: str
    template: str
    public_url: str


def whatsapp_config(settings: Settings) -> WhatsAppConfig | None:
    if not (settings.whatsapp_api_url and settings.whatsapp_token and settings.whatsapp_app_secret):
        return None
    return WhatsAppConfig(
        settings.whatsapp_api_url, settings.whatsapp_token, settings.whatsapp_app_secret, settings.whatsapp_template,
        settings.public_url,
    )  # fmt: skip


def phone_digits(phone: str) -> str | None:
    """The international number as the API wants it (digits only), or None when it cannot be one."""
    digits = re.sub(r"[\s().\-/]", "", phone)
    if digits.startswith("00"):
        digits = digits[2:]
    digits = digits.removeprefix("+")
    return digits if digits.isdigit() and 8 <= len(digits) <= 15 and phone.strip().startswith(("+", "00")) else None


def signature_ok(app_secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header or "")


def template_message(config: WhatsAppConfig, outgoing: Outgoing) -> dict[str, Any]:
    doc = outgoing.document
    parameters = [doc.store_name, doc.display_number, doc.fmt(doc.total_minor), outgoing.link]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": outgoing.target,
        "type": "template",
        "template": {
            "name": config.template,
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}],
        },
    }


def statuses_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The status objects of a webhook payload (entry[].changes[].value.statuses[])."""
    found: list[dict[str, Any]] = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            found += [s for s in value.get("statuses") or [] if isinstance(s, dict)]
    return found


class WhatsAppChannel:
    name = "whatsapp"
    label = "WhatsApp"

    def __init__(self, config: WhatsAppConfig) -> None:
        self.config = config

    async def target_for(self, facts: Facts) -> str | None:
        return phone_digits(facts.phone) if facts.phone else None

    async def send(self, outgoing: Outgoing) -> str:
        headers = {"authorization": f"Bearer {self.config.token}"}
        try:
            async with httpx.AsyncClient(timeout=SEND_TIMEOUT_S) as client:
                response = await client.post(
                    f"{self.config.api_url}/messages", json=template_message(self.config, outgoing), headers=headers
                )
        except httpx.HTTPError as exc:
            raise ChannelError(f"WhatsApp could not be reached ({type(exc).__name__}).") from exc
        body: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            body = response.json()
        if response.status_code >= 400:
            error = (body.get("error") or {}) if isinstance(body, dict) else {}
            message = f"WhatsApp {response.status_code}: {error.get('message') or response.reason_phrase}"
            # A refused request (bad number, unknown template, ...) will not get better; rate limits and 5xx may.
            permanent = response.status_code < 500 and response.status_code != 429
            raise ChannelError(message, permanent=permanent)
        messages = body.get("messages") or []
        if not messages or not messages[0].get("id"):
            raise ChannelError("WhatsApp accepted the request but named no message.")
        return str(messages[0]["id"])
