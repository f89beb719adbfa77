"""A local fake of the WhatsApp Business Cloud API's messages endpoint (POST /<phone id>/messages) on 127.0.0.1:
keeps each request and answers as a scenario says (accept, refuse with 400, fail with 503)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeWhatsApp:
    answers: list[int] = field(default_factory=list)  # status codes to give in turn; then 200
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v21.0/1234567890"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
            body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))) or b"{}")
            self.requests.append((path, headers, body))
            status = self.answers.pop(0) if self.answers else 200
            if status == 200:
                answer: dict[str, Any] = {"messaging_product": "whatsapp", "contacts": [{"wa_id": body.get("to")}],
                                          "messages": [{"id": f"wamid.TEST{len(self.requests)}"}]}  # fmt: skip
            else:
                answer = {"error": {"message": "(#131030) Recipient phone number not in allowed list", "code": 131030}}
            data = json.dumps(answer).encode()
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n"
                         f"connection: close\r\n\r\n".encode() + data)  # fmt: skip
            await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def fake_whatsapp(answers: list[int] | None = None) -> AsyncIterator[FakeWhatsApp]:
    api = FakeWhatsApp(answers=list(answers or []))
    server = await asyncio.start_server(api.handle, "127.0.0.1", 0)
    api.port = server.sockets[0].getsockname()[1]
    try:
        yield api
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
