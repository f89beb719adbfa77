"""WhatsApp (placeholder until configured): off unless WHATSAPP_* settings are present."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.receipts.channels import ChannelError, Facts, Outgoing


@dataclass(frozen=True)
class WhatsAppConfig:
    api_url: str
    phone_number_id: str
    token: str
    app_secret: str
    template: str


def whatsapp_config(settings: Settings) -> WhatsAppConfig | None:
    return None


class WhatsAppChannel:
    name = "whatsapp"
    label = "WhatsApp"

    def __init__(self, config: WhatsAppConfig) -> None:
        self.config = config

    async def target_for(self, facts: Facts) -> str | None:
        return facts.phone or None

    async def send(self, outgoing: Outgoing) -> str:
        raise ChannelError("WhatsApp is not configured.", permanent=True)
