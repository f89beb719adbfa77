"""The ``ReceiptChannel`` interface: how one receipt reaches one place. The delivery core (app/receipts/delivery.py)
records attempts and outcomes around ``send`` and knows no channel by its code; the channels are listed in
``app.receipts.channels.registry``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from app.receipts.document import ReceiptDocument


@dataclass(frozen=True)
class Facts:
    """What a receipt offers the channels to find a target: whom and where it may go."""

    store_id: uuid.UUID
    origin: str  # web | pos
    email: str
    phone: str
    register_id: uuid.UUID | None


@dataclass(frozen=True)
class Outgoing:
    """One attempt at one delivery, as a channel sends it."""

    store_id: uuid.UUID
    receipt_id: uuid.UUID
    delivery_id: uuid.UUID
    document: ReceiptDocument
    target: str
    link: str  # the signed link to the digital receipt (PDF)
    attempt: int
    external_ref: str  # what an earlier attempt left (the e-mail message id, ...), else ""


class ChannelError(Exception):
    """This attempt failed; ``permanent``: trying again cannot help (go on to the next channel at once)."""

    def __init__(self, message: str, *, permanent: bool = False, external_ref: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.external_ref = external_ref


class ReceiptChannel(Protocol):
    @property
    def name(self) -> str:
        """email | thermal | whatsapp: recorded on each delivery."""

    @property
    def label(self) -> str:
        """How the pages name it ("E-mail", "Receipt printer", "WhatsApp")."""

    async def target_for(self, facts: Facts) -> str | None:
        """Where this receipt would go on this channel, or None when the channel cannot reach it."""

    async def send(self, outgoing: Outgoing) -> str:
        """Deliver; return a reference to keep (a message id) or "". Raise ChannelError (or any error) on failure."""
