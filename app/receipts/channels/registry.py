"""The channels a deployment has, by name (WhatsApp only when configured)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.receipts.channels import ReceiptChannel
from app.receipts.channels.email import EmailChannel
from app.receipts.channels.thermal import ThermalChannel

CHANNEL_NAMES = ("thermal", "whatsapp", "email")
LABELS = {"thermal": "Receipt printer", "whatsapp": "WhatsApp", "email": "E-mail"}


def default_channels(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> dict[str, ReceiptChannel]:
    channels: dict[str, ReceiptChannel] = {
        "email": EmailChannel(sessions, settings),
        "thermal": ThermalChannel(sessions),
    }
    from app.receipts.channels.whatsapp import WhatsAppChannel, whatsapp_config

    config = whatsapp_config(settings)
    if config is not None:
        channels["whatsapp"] = WhatsAppChannel(config)
    return channels
