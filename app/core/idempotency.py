"""Idempotency for every mutating API call (Invariant 2).

The first request with an ``Idempotency-Key`` claims the key (committed at once, in its own
short transaction) with a hash of the request. Then:
  same key + same request, finished  → the stored status and body again (``Idempotent-Replayed: true``)
  same key + different request       → 422
  same key while the first still runs → 409
A first request that ends in a 5xx releases its key, so the retry runs for real. A claim whose
process died is taken over once ``locked_until`` has passed. Keys expire after 24 h (swept by a
worker job). HTML forms that move money carry a one-time key from ``form_key()``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from advanced_alchemy.types import DateTimeUTC, JsonB
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send
from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from app.core import pg
from app.core.db import UUIDv7AuditBase
from app.core.hot_path import HOT_PATH
from app.core.rbac import Principal
from app.core.tenancy import TenantMixin

HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
KEY_TTL = timedelta(hours=24)
IN_FLIGHT_LEASE = timedelta(minutes=2)
MAX_KEY_LENGTH = 255
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Route handler opt: the handler keeps its keys itself, in its own rows (checkout completion keeps the key in the
# attempt: ADR 0003), so this middleware leaves it alone and spends no statement on it.
OWN_KEYS = "idempotency_own_keys"
_KEPT_HEADERS = ("content-type", "location")


class IdempotencyKey(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "idempotency_keys"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "scope", "key"),)

    scope: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="in_flight")
    locked_until: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JsonB, default=None)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


def request_hash(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key."""

    outcome: Literal["proceed", "replay", "mismatch", "in_flight"]
    response: StoredResponse | None = None


_CLAIM = """
    INSERT INTO idempotency_keys (id, store_id, scope, key, request_hash, state, locked_until, expires_at,
                                  created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, 'in_flight', $6::timestamptz + $7::interval, $6::timestamptz + $8::interval, $6, $6)
    ON CONFLICT (store_id, scope, key) DO NOTHING
    RETURNING id
"""
_HELD = """
    SELECT request_hash, state, locked_until, expires_at, response_status, response_headers, response_body
    FROM idempotency_keys WHERE store_id = $1 AND scope = $2 AND key = $3
    FOR UPDATE
"""
_TAKE_OVER = """
    UPDATE idempotency_keys
    SET state = 'in_flight', request_hash = $4, locked_until = $5::timestamptz + $6::interval,
        expires_at = $5::timestamptz + $7::interval, updated_at = $5,
        response_status = NULL, response_headers = NULL, response_body = NULL
    WHERE store_id = $1 AND scope = $2 AND key = $3
"""
_COMPLETE = """
    UPDATE idempotency_keys
    SET state = 'completed', response_status = $4, response_headers = $5, response_body = $6, updated_at = now()
    WHERE store_id = $1 AND scope = $2 AND key = $3
"""
_RELEASE = "DELETE FROM idempotency_keys WHERE store_id = $1 AND scope = $2 AND key = $3"


class IdempotencyStore:
    """Keys in their own short transactions, in raw SQL: every mutating API call pays for a claim and a
    completion (ADR 0003)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(self, store_id: uuid.UUID, scope: str, key: str, fingerprint: str) -> Claim:
        now = datetime.now(UTC)
        async with pg.connection(self.engine) as conn:
            inserted = await conn.fetchval(
                _CLAIM, uuid.uuid4(), store_id, scope, key, fingerprint, now, IN_FLIGHT_LEASE, KEY_TTL
            )
            if inserted is not None:
                return Claim("proceed")
            async with conn.transaction():
                row = await conn.fetchrow(_HELD, store_id, scope, key)
                if row is None:  # released between our insert and this read: the retry runs for real
                    return await self.claim(store_id, scope, key, fingerprint)
                if row["expires_at"] <= now or (
                    row["request_hash"] == fingerprint and row["state"] != "completed" and row["locked_until"] <= now
                ):
                    await conn.execute(_TAKE_OVER, store_id, scope, key, fingerprint, now, IN_FLIGHT_LEASE, KEY_TTL)
                    return Claim("proceed")
                if row["request_hash"] != fingerprint:
                    return Claim("mismatch")
                if row["state"] == "completed":
                    stored = StoredResponse(
                        row["response_status"], dict(row["response_headers"] or {}), row["response_body"] or b""
                    )
                    return Claim("replay", stored)
                return Claim("in_flight")

    async def complete(self, store_id: uuid.UUID, scope: str, key: str, response: StoredResponse) -> None:
        async with pg.connection(self.engine) as conn:
            await conn.execute(
                _COMPLETE, store_id, scope, key, response.status, pg.jsonb(response.headers), response.body
            )

    async def release(self, store_id: uuid.UUID, scope: str, key: str) -> None:
        async with pg.connection(self.engine) as conn:
            await conn.execute(_RELEASE, store_id, scope, key)

    async def sweep_expired(self) -> int:
        async with pg.connection(self.engine) as conn:
            status = await conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()")
            return int(status.rsplit(" ", 1)[-1])


def _problem(status: int, title: str, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "fields": {HEADER: detail},
        }
    ).encode()
    return status, [(b"content-type", b"application/problem+json")], body


async def _send_whole(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Recorder:
    """Passes the response through to the client and keeps what a replay needs."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 500
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", []):
                lowered = name.decode("latin-1").lower()
                if lowered in _KEPT_HEADERS:
                    self.headers[lowered] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.body.append(message.get("body", b""))
        await self._send(message)

    def stored(self) -> StoredResponse:
        return StoredResponse(self.status, self.headers, b"".join(self.body))


_REFUSALS = {
    "mismatch": (422, "Idempotency-Key reused", "This Idempotency-Key was used for a different request."),
    "in_flight": (409, "Request in progress", "A request with this Idempotency-Key is still running."),
}


class IdempotencyMiddleware(ASGIMiddleware):
    """Applies to unsafe ``/api/`` requests that carry an ``Idempotency-Key`` and a signed-in principal."""

    exclude_opt_key = HOT_PATH  # provider webhooks answer on their own (app/core/hot_path.py)

    def __init__(self, store_state_key: str = "idempotency") -> None:
        self.store_state_key = store_state_key

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = str(scope.get("method", ""))
        key = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == HEADER.encode()), None)
        principal = scope.get("user")
        handler = scope.get("route_handler")
        if (
            method not in UNSAFE_METHODS
            or not scope["path"].startswith("/api/")
            or key is None
            or not isinstance(principal, Principal)
            or (handler is not None and handler.opt.get(OWN_KEYS))
        ):
            await next_app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            detail = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters."
            await _send_whole(send, *_problem(400, "Bad Idempotency-Key", detail))
            return
        body = await _read_body(receive)
        if body is None:
            return
        fingerprint = request_hash(method, scope["path"], bytes(scope.get("query_string", b"")), body)
        store: IdempotencyStore = scope["app"].state[self.store_state_key]
        key_scope = principal.idempotency_scope
        claim = await store.claim(principal.store_id, key_scope, key, fingerprint)

        if claim.outcome in _REFUSALS:
            await _send_whole(send, *_problem(*_REFUSALS[claim.outcome]))
            return
        if claim.outcome == "replay":
            assert claim.response is not None
            headers = [(k.encode(), v.encode()) for k, v in claim.response.headers.items()]
            headers.append((REPLAYED_HEADER.encode(), b"true"))
            await _send_whole(send, claim.response.status, headers, claim.response.body)
            return

        delivered = False

        async def replay_receive() -> ReceiveMessage:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        recorder = _Recorder(send)
        try:
            await next_app(scope, replay_receive, recorder.send)
        except BaseException:
            await store.release(principal.store_id, key_scope, key)
            raise
        if recorder.status >= 500:
            await store.release(principal.store_id, key_scope, key)
        else:
            await store.complete(principal.store_id, key_scope, key, recorder.stored())


def form_key() -> str:
    """A one-time key for an HTML form that moves money (rendered as a hidden field)."""
    return str(uuid.uuid4())
