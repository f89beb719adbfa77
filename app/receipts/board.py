"""Receipt alerts on the live board (app/orders/board.py): the "Receipts not delivered" panel, kept current.

``receipt.alert`` (a receipt stuck: 3 attempts, or every channel failed) and ``receipt.alert_cleared`` (a delivery
of it succeeded) are outbox events; on the board's SSE stream each becomes a ``receipts`` frame carrying the
panel as it is now (every open alert of the store, newest first; empty when none is left), which the page's
script puts in place of the old one. The frame is rendered from the database, not from the event, so a board
that missed events and replays them (``Last-Event-ID``) ends with the panel as it is.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from litestar.response import ServerSentEventMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.outbox import PublishedEvent
from app.core.tenancy import bind_store
from app.receipts.services import RECEIPT_ALERT, RECEIPT_ALERT_CLEARED, ReceiptService

ALERT_EVENTS = (RECEIPT_ALERT, RECEIPT_ALERT_CLEARED)
TEMPLATE = "receipts/_board_alerts.html"
SSE_EVENT = "receipts"


@dataclass(frozen=True)
class BoardReceiptAlerts:
    sessions: async_sessionmaker[AsyncSession]
    store_id: uuid.UUID
    render: Callable[..., str]  # templates/receipts/_board_alerts.html

    @staticmethod
    def shows(event: PublishedEvent) -> bool:
        return event.aggregate_type == "receipt" and event.type in ALERT_EVENTS

    async def message(self, event: PublishedEvent) -> bytes:
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            stuck = await ReceiptService(session, self.store_id).stuck()
            html = self.render(receipt_alerts=stuck)
        data = {"type": event.type, "count": len(stuck), "html": html}
        return ServerSentEventMessage(data=json.dumps(data), event=SSE_EVENT, id=event.seq).encode()
