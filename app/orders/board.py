"""The live board: open orders in columns by status, kept current over SSE.

The stream starts after the outbox sequence the page was rendered at (``?after=``); a browser that
reconnects sends ``Last-Event-ID`` and gets every event it missed from ``events_after`` before the live
ones, so a screen that was offline catches up without a reload (``app.core.live``). Each event carries
the same ``_card.html`` fragment the page renders, rendered once per process for all the boards open.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import ServerSentEventMessage, Stream, Template
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import live
from app.core.outbox import PublishedEvent
from app.core.rbac import principal_of, require_role
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.orders.services import OrderFilter, OrderService
from app.orders.states import Axis, next_statuses
from app.receipts.board import TEMPLATE as RECEIPT_ALERTS_TEMPLATE
from app.receipts.board import BoardReceiptAlerts
from app.receipts.services import ReceiptService
from app.stores.commerce import CommerceSettings
from app.stores.hours import format_pickup, pickup_at_of
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]
COLUMNS = ("placed", "accepted", "in_progress", "ready")


def card_context(order: Order, now: datetime, delay: timedelta, *, timezone: str = "UTC") -> dict[str, Any]:
    """What a card shows. ``delayed``: longer than the store's ``board_delay`` in its current status (the
    order's last change); the page's script keeps checking with ``since`` and ``delay_s`` between events.
    ``pickup``: the chosen pickup time on the store's clock ("today at 10:15"), or ""."""
    minutes = max(int((now - order.placed_at).total_seconds() // 60), 0)
    since = order.updated_at
    pickup_at = pickup_at_of(order.shipping)
    return {
        "pickup": format_pickup(pickup_at, now, timezone) if pickup_at else "",
        "order": order,
        "age": f"{minutes} min" if minutes < 120 else f"{minutes // 60} h",
        "summary": ", ".join(f"{line.quantity}× {line.name}" for line in order.lines),
        "next": next_statuses(Axis.ORDER, order.status, method=order.fulfilment_method)[:1],
        "since": since.isoformat(),
        "delay_s": int(delay.total_seconds()),
        "delayed": now - since > delay,
    }


class BoardController(Controller):
    path = "/staff/board"
    guards = [require_role]
    include_in_schema = False

    @get("/")
    async def board(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        me = principal_of(request)
        orders = OrderService(db_session, me.store_id)
        now = datetime.now(UTC)
        delay = await _board_delay(db_session, me.store_id)
        columns = {}
        for status in COLUMNS:
            rows, _ = await orders.page(OrderFilter(status=status, oldest_first=True), limit=100, with_lines=True)
            columns[status] = [card_context(order, now, delay, timezone=me.timezone) for order in rows]
        after = await live.last_seq(db_session, me.store_id)
        receipt_alerts = await ReceiptService(db_session, me.store_id).stuck()  # receipts stuck (app/receipts)
        context = {"me": me, "columns": columns, "last_seq": after, "receipt_alerts": receipt_alerts}
        return Template("orders/board.html", context=context)

    @get("/events")
    async def events(self, request: Request[Any, Any, Any], db_session: DbSession, after: FromQuery[int] = 0) -> Stream:
        me = principal_of(request)
        delay = await _board_delay(db_session, me.store_id)
        await db_session.close()  # the stream stays open for hours: hold no pooled connection meanwhile
        state = request.app.state
        template = request.app.template_engine.get_template("orders/_card.html")  # type: ignore[union-attr]
        cards = BoardCards(state.sessions, me.store_id, template.render, delay, me.timezone)
        alerts_template = request.app.template_engine.get_template(RECEIPT_ALERTS_TEMPLATE)  # type: ignore[union-attr]
        alerts = BoardReceiptAlerts(state.sessions, me.store_id, alerts_template.render)
        start = live.resume_point(request.headers.get("last-event-id"), after)
        hub: live.Hub = state.live
        return live.response(hub.stream(state.sessions, me.store_id, start, "board", board_messages(cards, alerts)))


def board_messages(cards: BoardCards, alerts: BoardReceiptAlerts) -> live.MessageFor:
    """What an event is on the board: an order's card, or the receipt alerts panel (app/receipts/board.py)."""

    async def message_for(event: PublishedEvent) -> bytes | None:
        if event.aggregate_type == "order":
            return await cards.message(event)
        if alerts.shows(event):
            return await alerts.message(event)
        return None

    return message_for


async def _board_delay(session: AsyncSession, store_id: uuid.UUID) -> timedelta:
    store = await session.get(Store, store_id)
    return CommerceSettings.of(store.settings if store else {}).board_delay


@dataclass(frozen=True)
class BoardCards:
    """An order event as the board shows it: the order's card as it is now, for its column."""

    sessions: async_sessionmaker[AsyncSession]
    store_id: uuid.UUID
    render: Callable[..., str]
    delay: timedelta
    timezone: str = "UTC"  # the store's: pickup times on its clock

    async def message(self, event: PublishedEvent) -> bytes | None:
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            order = await session.get(Order, uuid.UUID(event.aggregate_id))
            if order is None:
                return None
            html = self.render(card=card_context(order, datetime.now(UTC), self.delay, timezone=self.timezone))
            data = {"id": str(order.id), "status": order.status, "type": event.type, "html": html}
        return ServerSentEventMessage(data=json.dumps(data), event="order", id=event.seq).encode()
