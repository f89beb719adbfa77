"""/staff/webhooks (managers): the store's webhook events with search, payloads, and replay (one or many);
/api/v1/admin/webhook-events: the same list and replay for integrations."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import TillError, ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.webhooks.models import EVENT_STATUSES
from app.webhooks.services import PAGE_MAX, EventQuery, EventRow, WebhookEvents

DbSession = NamedDependency[AsyncSession]
PAGE = "/staff/webhooks"
PAGE_SIZE = 50


def event_query(
    type: Annotated[
        str, QueryParameter(description="Event type, exact (charge.refunded) or a prefix ending in '.'")
    ] = "",
    status: Annotated[
        str, QueryParameter(description="Processing status", schema_extra={"enum": list(EVENT_STATUSES)})
    ] = "",
    since: Annotated[str, QueryParameter(description="First day received (YYYY-MM-DD, store time zone)")] = "",
    until: Annotated[str, QueryParameter(description="Last day received (YYYY-MM-DD, store time zone), included")] = "",
) -> EventQuery:
    return EventQuery(type.strip(), status.strip(), since.strip(), until.strip())


def _ids(values: list[str]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            raise ValidationFailed("Choose events from the list.", fields={"ids": "Not an event id."}) from None
    return ids


class WebhookPagesController(Controller):
    path = PAGE
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False
    dependencies = {"listing": Provide(event_query, sync_to_thread=False)}

    @get("/")
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        listing: NamedDependency[EventQuery],
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        me = principal_of(request)
        events = WebhookEvents(db_session, me.store_id)
        context: dict[str, Any] = {
            "me": me,
            "query": listing,
            "errors": {},
            "events": [],
            "next_cursor": None,
            "statuses": EVENT_STATUSES,
        }
        try:
            filters = listing.filters(me.timezone)
        except ValidationFailed as exc:
            context["errors"] = {"form": exc.detail, **exc.fields}
            return Template("webhooks/list.html", context=context, status_code=422)
        try:
            rows, next_cursor = await events.page(filters, limit=PAGE_SIZE, cursor=cursor)
        except TillError:  # a hand-edited page link: start from the newest
            rows, next_cursor = await events.page(filters, limit=PAGE_SIZE)
        context.update(events=rows, next_cursor=next_cursor)
        return Template("webhooks/list.html", context=context)

    @post("/replay", status_code=303, media_type=MediaType.HTML)
    async def replay(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        me = principal_of(request)
        form = await request.form()
        back = str(form.get("back") or "")
        target = PAGE + ("?" + back if back and "\n" not in back else "")
        try:
            ids = _ids([str(v) for v in form.getall("ids")] if "ids" in form else [])
        except ValidationFailed as exc:
            flash(request, exc.detail, category="error")
            return Redirect(target, status_code=303)
        if not ids:
            flash(request, "Tick the events to replay first.", category="error")
            return Redirect(target, status_code=303)
        replayed = await WebhookEvents(db_session, me.store_id).replay(ids)
        skipped = len(ids) - len(replayed)
        message = f"{len(replayed)} event{'' if len(replayed) == 1 else 's'} queued again."
        if skipped:
            message += f" {skipped} being processed right now {'was' if skipped == 1 else 'were'} left alone."
        flash(request, message, category="success")
        return Redirect(target, status_code=303)


class WebhookEventOut(msgspec.Struct):
    id: uuid.UUID
    provider: str
    event_id: str
    type: str
    status: str
    attempts: int
    last_error: str
    outcome: str
    received_at: str
    processed_at: str | None
    next_attempt_at: str | None
    payload: dict[str, Any]

    @classmethod
    def of(cls, row: EventRow) -> WebhookEventOut:
        from app.webhooks.services import redact

        return cls(
            id=row.id,
            provider=row.provider,
            event_id=row.event_id,
            type=row.type,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            outcome=row.outcome,
            received_at=row.received_at.isoformat(),
            processed_at=row.processed_at.isoformat() if row.processed_at else None,
            next_attempt_at=row.next_attempt_at.isoformat() if row.next_attempt_at else None,
            payload=redact(row.payload),
        )


class WebhookEventPage(msgspec.Struct):
    items: list[WebhookEventOut]
    next_cursor: str | None


class ReplayIn(msgspec.Struct):
    ids: list[uuid.UUID]


class ReplayOut(msgspec.Struct):
    replayed: list[uuid.UUID]
    skipped: list[uuid.UUID]  # not this store's, unknown, or being processed right now


class WebhookEventsApiController(Controller):
    path = "/api/v1/admin/webhook-events"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["webhooks"]
    dependencies = {"listing": Provide(event_query, sync_to_thread=False)}

    @get("/", summary="Inbound webhook events of the store, newest first, a page at a time")
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        listing: NamedDependency[EventQuery],
        limit: Annotated[int, QueryParameter(description=f"Page size, 1 to {PAGE_MAX}")] = 50,
        cursor: Annotated[str | None, QueryParameter(description="`next_cursor` of the previous page")] = None,
    ) -> WebhookEventPage:
        me = principal_of(request)
        rows, next_cursor = await WebhookEvents(db_session, me.store_id).page(
            listing.filters(me.timezone, strict=True), limit=limit, cursor=cursor
        )
        return WebhookEventPage(items=[WebhookEventOut.of(r) for r in rows], next_cursor=next_cursor)

    @post(
        "/replay",
        status_code=200,
        summary="Process events again (back to received, taken by the worker again); idempotent",
    )
    async def replay(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: JSONBody[ReplayIn]
    ) -> ReplayOut:
        me = principal_of(request)
        if not data.ids:
            raise ValidationFailed("Name the events to replay.", fields={"ids": "At least one id."})
        replayed = await WebhookEvents(db_session, me.store_id).replay(data.ids)
        done = set(replayed)
        return ReplayOut(replayed=replayed, skipped=[i for i in dict.fromkeys(data.ids) if i not in done])
