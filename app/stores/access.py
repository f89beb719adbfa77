"""Resolves who is calling: a staff session (pages) or a bearer API token (/api)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import pg
from app.core.hot_path import HOT_PATH
from app.core.rbac import Principal
from app.stores.models import Store
from app.stores.services import StaffAccessService, caller_for_token
from app.stores.token_cache import TokenCache

SESSION_USER = "user_id"
SESSION_STORE = "store_id"
# The password fingerprint the session was opened with (services.session_auth). A session without one gets the
# current one on its first request, so every place that signs someone in stays as simple as set_session(user, store).
SESSION_AUTH = "auth"
CALLER_STORE = "till_caller_store"  # request.state key: the bearer token's store, read with the token


def caller_store(scope: Scope) -> Store | None:
    """The store read with the request's bearer token (API calls), so handlers need not read it again."""
    store = scope.get("state", {}).get(CALLER_STORE)
    return store if isinstance(store, Store) else None


def bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials:
                return credentials.strip()
    return None


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def resolve_bearer(scope: Scope, raw: str) -> Principal | None:
    """The principal of an API token (None for an unknown or revoked one); keeps its store in the scope's state."""
    state = scope["app"].state
    tokens: TokenCache | None = state.get("token_cache")
    if tokens is not None:  # a verified token kept for a few seconds, revocations honoured (token_cache)
        caller = await tokens.caller(state.engine, state.redis, raw)
    else:
        async with pg.connection(state.engine) as conn:
            caller = await caller_for_token(conn, raw)
    if caller is None:
        return None
    scope.setdefault("state", {})[CALLER_STORE] = caller.store
    return caller.principal


class AccessMiddleware(ASGIMiddleware):
    """Sets ``scope["user"]`` to a Principal, or None for anonymous callers. Guards decide the rest.

    ``/api`` takes bearer tokens only (no cookies, so no CSRF); pages take the session cookie.
    """

    exclude_opt_key = HOT_PATH  # provider webhooks answer on their own (app/core/hot_path.py)

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:
        return scope["path"].startswith("/static/") or scope["path"] in ("/health", "/ready", "/metrics")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["user"] = await self._resolve(scope)
        await next_app(scope, receive, send)

    async def _resolve(self, scope: Scope) -> Principal | None:
        sessions: async_sessionmaker[AsyncSession] = scope["app"].state.sessions
        if scope["path"].startswith("/api/"):
            raw = bearer(scope)
            if raw is None:
                return None
            return await resolve_bearer(scope, raw)
        cookie_session = scope.get("session")
        if not isinstance(cookie_session, dict):
            return None
        user_id = _uuid(cookie_session.get(SESSION_USER))
        store_id = _uuid(cookie_session.get(SESSION_STORE))
        if user_id is None or store_id is None:
            return None
        auth = cookie_session.get(SESSION_AUTH)
        async with sessions() as session:
            staff = await StaffAccessService(session).resolve_session(
                user_id, store_id, auth if isinstance(auth, str) else None
            )
        if staff is None:
            return None
        if auth is None:
            cookie_session[SESSION_AUTH] = staff.auth
        return staff.principal
