"""Raw ASGI for the endpoints that must answer fastest (provider webhooks: a provider retries what we are slow
to acknowledge, and its deliveries come in bursts).

A handler marked ``opt={HOT_PATH: True}`` is passed over by the page middleware (correlation id, security
headers, session, access, idempotency; see app/main.py; request metrics skip the provider webhooks by path, and
count the other hot-path routes, such as the tablet's gift card lookup, like any request) and reads and answers the ASGI
messages itself: no Request, no Response, no signature model. Measured in-process on this machine, a signed
webhook costs ~1.0 ms of CPU through the full stack, ~0.7 ms with the middleware passed over, and the
intake's own work (HMAC, decode, INSERT) ~0.32 ms; see docs/payments.md.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from app.core.http_errors import PROBLEM_JSON, problem_body

HOT_PATH = "hot_path"
MAX_BODY = 1_048_576  # a provider event is a few KiB; Stripe's largest are well under this


class BodyTooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    """The whole request body; :class:`BodyTooLarge` past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str:
    """A request header's value (``name`` in lower case), or ``""``."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


async def send_json(
    send: Send,
    status: int,
    payload: Any,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    body = msgspec.json.encode(payload)
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": raw_headers}
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


async def send_problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    body = problem_body(status, title, detail, code=code, fields=fields)
    await send_json(send, status, body, content_type=PROBLEM_JSON, headers=headers)
