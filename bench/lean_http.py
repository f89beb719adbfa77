"""A lean HTTP/1.1 keep-alive client for benchmarks: one connection per simulated client.

httpx spends ~1.5 ms of CPU per request with 50 pooled connections (measured: the bench client took
87% of a core while the two web processes it drove were at 19% each), so on this 2-core machine it,
not the server, set the ceiling. This client writes the request bytes and reads status, headers and a
Content-Length body: enough for our JSON API, and a few microseconds per request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return _decode(self.body)


class LeanConnection:
    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in {"host": parts.netloc, **(headers or {})}.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        body = content if content is not None else _encode(json) if json is not None else b""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = f"{method} {path} HTTP/1.1\r\n{self.fixed}{extra}content-type: application/json\r\n"
        self.writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode("latin-1") + body)
        status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
        lines = status_and_headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        closing = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lowered = name.lower()
            if lowered == "content-length":
                length = int(value)
            elif lowered == "connection" and value.strip().lower() == "close":
                closing = True
            elif lowered == "transfer-encoding":
                raise RuntimeError("lean_http reads Content-Length bodies only")
        payload = await self.reader.readexactly(length) if length else b""
        if closing:
            await self.close()
        return Reply(status, payload)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
            self.writer = self.reader = None
