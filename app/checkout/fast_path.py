"""The checkout API's two busiest routes — quote and complete — answered without Litestar's per-request machinery.

Issue 20: under a crowd, a checkout's two requests spent about a fifth of the web process's CPU in the middleware
below this one, the handler's argument parsing and the Response (measured with cProfile on thread CPU time). A
route whose handler carries ``opt={FAST_ANSWER: FastAnswer(BodyType, answer)}`` is answered here, after the
correlation id, security headers and request metrics, with the same ``answer`` function its Litestar handler calls:
the bearer token is read through the same token cache (app/stores/access.py), the role checked as ``require_role``
does, the body decoded as Litestar decodes it (``msgspec.convert``, not strict), and errors raised as TillError are
rendered by the app's exception handlers as on any route. The Litestar handler stays the one that the OpenAPI
schema describes and that answers whatever this path passes on: a body that does not decode (so the 400 is
Litestar's own), a request without a bearer token, and a quote that carries an Idempotency-Key (the idempotency
middleware keeps its answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.datastructures import State
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

from app.core.errors import NotSignedIn, PermissionDenied
from app.core.hot_path import MAX_BODY, BodyTooLarge, Disconnected, read_body, send_json
from app.core.idempotency import HEADER, OWN_KEYS
from app.core.rbac import Role
from app.stores.access import bearer, caller_store, resolve_bearer
from app.stores.models import Store

FAST_ANSWER = "fast_answer"
_KEY_HEADER = HEADER.lower().encode()

Answer = Callable[[State, Store, Any, str | None], Awaitable[tuple[int, msgspec.Struct, dict[str, str] | None]]]


@dataclass(frozen=True)
class FastAnswer:
    body: type[msgspec.Struct]
    answer: Answer


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body again (then the connection's own messages)."""
    sent = False

    async def replayed() -> ReceiveMessage:
        nonlocal sent
        if not sent:
            sent = True
            first: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
            return first
        return await receive()

    return replayed


class CheckoutFastPathMiddleware(ASGIMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        fast = handler.opt.get(FAST_ANSWER) if isinstance(handler, HTTPRouteHandler) else None
        raw_token = bearer(scope) if fast is not None and scope.get("method") == "POST" else None
        key = next((value.decode("latin-1") for name, value in scope["headers"] if name == _KEY_HEADER), None)
        if (
            not isinstance(fast, FastAnswer)
            or not isinstance(handler, HTTPRouteHandler)
            or raw_token is None
            or (key is not None and not handler.opt.get(OWN_KEYS))
        ):
            await next_app(scope, receive, send)
            return
        principal = await resolve_bearer(scope, raw_token)
        if principal is None:
            raise NotSignedIn("Sign in to continue.")  # as require_role says to a caller without a principal
        min_role = Role(handler.opt.get("min_role", Role.CASHIER))
        if not principal.can(min_role):
            raise PermissionDenied(f"This needs the {min_role.value} role or higher.")
        scope["user"] = principal
        try:
            body = await read_body(receive, handler.resolve_request_max_body_size() or MAX_BODY)
        except BodyTooLarge:
            raise RequestEntityTooLarge from None  # as Litestar's Request.body() says it
        except Disconnected:
            return  # nobody to answer
        try:
            data = msgspec.convert(msgspec.json.decode(body), fast.body, strict=False, str_keys=True)
        except (msgspec.DecodeError, msgspec.ValidationError):
            await next_app(scope, _replay(body, receive), send)  # Litestar's own 400 for the body
            return
        store = caller_store(scope)
        assert store is not None  # resolve_bearer keeps the token's store
        status, payload, headers = await fast.answer(scope["app"].state, store, data, key)
        await send_json(send, status, payload, headers=headers)
