"""Server-side sessions that cost nothing until something is put in them.

Litestar 2.25's ``ServerSideSessionBackend.store_in_message`` writes the session to the store and sets the
cookie on every response, an empty ``{}`` included: every cookieless storefront GET wrote an empty session to
Redis for 12 hours and set a cookie, so a crowd (or a crawler) grew Redis without bound. Here an empty session
is written nowhere:

- no cookie came in and the session is empty: nothing is stored and no cookie is set;
- a cookie came in and the session is now empty (signed out, cleared): its key is deleted and the cookie
  expired, as Litestar does for an explicitly cleared (``Empty``) session;
- anything in the session: stored and the cookie set, exactly as before.

CSRF is unaffected (its own ``till_csrf`` cookie, Litestar's CSRF middleware), and so is signing in (the sign-in
puts the user in the session, which is then stored).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.types import Empty, Message, ScopeSession


class LazySessionBackend(ServerSideSessionBackend):
    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        if scope_session is Empty or scope_session:
            await super().store_in_message(scope_session, message, connection)
            return
        session_id = connection.cookies.get(self.config.key)
        if not session_id or session_id == "null":
            return  # an empty session nobody had: no write, no cookie
        await self.delete(session_id, store=self.config.get_store_from_app(connection.scope["app"]))
        expired = Cookie(
            value="null",
            key=self.config.key,
            expires=0,
            path=self.config.path,
            domain=self.config.domain,
            secure=self.config.secure,
            httponly=self.config.httponly,
            samesite=self.config.samesite,
        )
        MutableScopeHeaders.from_message(message).add("Set-Cookie", expired.to_header(header=""))


class LazySessionConfig(ServerSideSessionConfig):
    """``ServerSideSessionConfig`` whose backend stores no empty session (see the module docstring)."""

    _backend_class = LazySessionBackend
