"""The live board: open orders in columns by status, kept current over SSE.

The stream starts after the outbox sequence the page was rendered at (``?after=``); a browser that
reconnects sends ``Last-Event-ID`` and gets every event it missed from ``events_after`` before the live
ones, so a screen that was offline catches up without a reload. Each event carries the same
``_card.html`` fragment the page renders.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.outbox import OutboxEvent, PublishedEvent, events_after, store_channel
from app.core.rbac import principal_of, require_role
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.orders.services import OrderFilter, OrderService
from app.orders.states import Axis, next_statuses

DbSession = NamedDependency[AsyncSession]
COLUMNS = ("placed", "accepted", "in_progress", "ready")
RETRY_MS = 1000


def card_context(order: Order, now: datetime) -> dict[str, Any]:
    minutes = max(int((now - order.placed_at).total_seconds() // 60), 0)
    return {
        "order": order,
        "age": f"{minutes} min" if minutes < 120 else f"{minutes // 60} h",
        "items": ", ".join(f"{line.quantity}× {line.name}" for line in order.lines),
        "next": next_statuses(Axis.ORDER, order.status, method=order.fulfilment_method)[:1],
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
        columns = {}
        for status in COLUMNS:
            rows, _ = await orders.page(OrderFilter(status=status, oldest_first=True), limit=100)
            columns[status] = [card_context(order, now) for order in rows]
        last_seq = await db_session.scalar(
            select(func.coalesce(func.max(OutboxEvent.seq), 0)).where(OutboxEvent.store_id == me.store_id)
        )
        return Template("orders/board.html", context={"me": me, "columns": columns, "last_seq": last_seq})

    @get("/events")
    async def events(self, request: Request[Any, Any, Any], after: FromQuery[int] = 0) -> ServerSentEvent:
        me = principal_of(request)
        resume = request.headers.get("last-event-id", "")
        start = int(resume) if resume.isdigit() else after
        state = request.app.state
        render = request.app.template_engine.get_template("orders/_card.html").render  # type: ignore[union-attr]
        return ServerSentEvent(board_events(state.sessions, state.channels, me.store_id, start, render))


async def board_events(
    sessions: async_sessionmaker[AsyncSession],
    channels: ChannelsPlugin,
    store_id: uuid.UUID,
    after: int,
    render: Any,
) -> AsyncIterator[ServerSentEventMessage]:
    """Missed events (seq > ``after``) first, then live ones; each order event as its card."""
    async with channels.start_subscription([store_channel(store_id)]) as subscriber:
        async with sessions() as session:
            bind_store(session, store_id)
            missed = await events_after(session, store_id, after)
        yield ServerSentEventMessage(comment="connected", retry=RETRY_MS)
        last = after
        for event in missed:
            last = event.seq
            message = await _message(sessions, store_id, event, render)
            if message is not None:
                yield message
        async for raw in subscriber.iter_events():
            event = PublishedEvent.from_json(raw)
            if event.seq <= last:  # already sent from the replay
                continue
            last = event.seq
            message = await _message(sessions, store_id, event, render)
            if message is not None:
                yield message


async def _message(
    sessions: async_sessionmaker[AsyncSession], store_id: uuid.UUID, event: PublishedEvent, render: Any
) -> ServerSentEventMessage | None:
    if event.aggregate_type != "order":
        return None
    async with sessions() as session:
        bind_store(session, store_id)
        order = await session.get(Order, uuid.UUID(event.aggregate_id))
        if order is None:
            return None
        html = render(**card_context(order, datetime.now(UTC)))
        data = {"id": str(order.id), "status": order.status, "type": event.type, "html": html}
    return ServerSentEventMessage(data=json.dumps(data), event="order", id=event.seq)
