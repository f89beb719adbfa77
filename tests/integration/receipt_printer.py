"""A small fake network receipt printer on 127.0.0.1: answers the paper-sensor query and keeps the bytes of
each print job (one connection = one job), or misbehaves as asked (no paper, no answer, slow)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.receipts.thermal import STATUS_QUERY


@dataclass
class FakePrinter:
    paper: bool = True
    answers: bool = True  # False: never answers the status query (a printer that hangs)
    delay: float = 0.0  # held before the status answer (widens race windows)
    jobs: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = bytearray()
        try:
            query = await reader.readexactly(len(STATUS_QUERY))
            if query == STATUS_QUERY:
                if not self.answers:  # hold the line until the client gives up and closes it
                    await reader.read()
                    return
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(b"\x12" if self.paper else b"\x72")  # 0x60 set: paper end
                await writer.drain()
            else:
                received += query
            while chunk := await reader.read(65536):
                received += chunk
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if received:
                self.jobs.append(bytes(received))
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def fake_printer(**options: object) -> AsyncIterator[FakePrinter]:
    printer = FakePrinter(**options)  # type: ignore[arg-type]
    server = await asyncio.start_server(printer.handle, "127.0.0.1", 0)
    printer.port = server.sockets[0].getsockname()[1]
    try:
        yield printer
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


@contextlib.contextmanager
def threaded_fake_printer(**options: object) -> Iterator[FakePrinter]:
    """The same printer on its own thread and event loop: for requests through the test client, whose app may
    run on another loop than the test's."""
    import threading

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        async with fake_printer(**options) as printer:
            holder["printer"] = printer
            holder["stop"] = asyncio.Event()
            ready.set()
            await holder["stop"].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield holder["printer"]
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(5)
        loop.close()
