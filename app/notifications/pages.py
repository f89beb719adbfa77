"""/staff/outbox: the store's outbound e-mails with their delivery status and clickable links (not in production).

This is how a developer or a demo user opens an invitation link when no SMTP server is configured."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Template
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.errors import NotFound
from app.core.rbac import principal_of, require_role
from app.core.tenancy import bind_store
from app.notifications.models import OutboundMessage
from app.notifications.services import recent_messages
from app.notifications.transports import outbox_folder

DbSession = NamedDependency[AsyncSession]
_URL = re.compile(r"https?://[^\s<>\"']+")


def linkify(text: str) -> Markup:
    """Plain text, escaped, with its http(s) addresses as links."""
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:)")
        parts.append(escape(text[last : match.start()]))
        parts.append(Markup('<a href="{0}">{0}</a>').format(url))
        last = match.start() + len(url)
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


@dataclass(frozen=True)
class MessageView:
    message: OutboundMessage
    body: Markup


class OutboxPageController(Controller):
    path = "/staff/outbox"
    guards = [require_role]
    include_in_schema = False

    @get("/")
    async def outbox(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        settings: Settings = request.app.state.settings
        if settings.is_production:
            raise NotFound("We could not find that page.")
        me = principal_of(request)
        bind_store(db_session, me.store_id)
        messages = [MessageView(m, linkify(m.text_body)) for m in await recent_messages(db_session)]
        context = {
            "me": me,
            "messages": messages,
            "smtp": bool(settings.smtp_url),
            "folder": str(outbox_folder(settings)),
        }
        return Template("notifications/outbox.html", context=context)
