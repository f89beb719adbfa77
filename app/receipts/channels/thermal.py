"""Receipt printers: ESC/POS bytes over TCP 9100 to the printer configured for the sale's register.

Before printing, the paper sensor is asked (DLE EOT 4): no answer, a refused connection or no paper is a failed
attempt (tried again with backoff), so a receipt is never counted as printed when it was not."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.tenancy import bind_store
from app.receipts.channels import ChannelError, Facts, Outgoing
from app.receipts.models import ReceiptPrinter
from app.receipts.thermal import PAPER_OUT_BITS, STATUS_QUERY, render_escpos
from app.stores.models import StoreLogo

CONNECT_TIMEOUT_S = 3.0
STATUS_TIMEOUT_S = 2.0
WRITE_TIMEOUT_S = 5.0


def printer_target(host: str, port: int, paper_mm: int) -> str:
    return f"{host}:{port}/{paper_mm}mm"


def parse_target(target: str) -> tuple[str, int, int]:
    address, _, paper = target.partition("/")
    host, _, port = address.rpartition(":")
    return host, int(port or 9100), int(paper.removesuffix("mm") or 80)


async def print_bytes(host: str, port: int, data: bytes) -> None:
    """Ask the paper sensor, then send ``data``. Raises ChannelError naming what went wrong."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    except TimeoutError as exc:
        raise ChannelError(f"The printer at {host}:{port} did not answer (timeout).") from exc
    except OSError as exc:
        raise ChannelError(f"The printer at {host}:{port} refused the connection ({exc.strerror or exc}).") from exc
    try:
        writer.write(STATUS_QUERY)
        await writer.drain()
        try:
            status = await asyncio.wait_for(reader.readexactly(1), STATUS_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError) as exc:
            raise ChannelError(f"The printer at {host}:{port} did not answer its status query.") from exc
        if status[0] & PAPER_OUT_BITS:
            raise ChannelError(f"The printer at {host}:{port} is out of paper.")
        writer.write(data)
        try:
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            raise ChannelError(f"The printer at {host}:{port} stopped taking the receipt.") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


class ThermalChannel:
    name = "thermal"
    label = "Receipt printer"

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def target_for(self, facts: Facts) -> str | None:
        if facts.register_id is None:
            return None
        async with self.sessions() as session:
            bind_store(session, facts.store_id)
            printer = await session.scalar(
                select(ReceiptPrinter).where(ReceiptPrinter.register_id == facts.register_id)
            )
        return printer_target(printer.host, printer.port, printer.paper_mm) if printer else None

    async def send(self, outgoing: Outgoing) -> str:
        host, port, paper_mm = parse_target(outgoing.target)
        async with self.sessions() as session:
            bind_store(session, outgoing.store_id)
            logo = await session.scalar(select(StoreLogo.data))
        data = render_escpos(outgoing.document, paper_mm=paper_mm, qr_url=outgoing.link, logo_png=logo)
        await print_bytes(host, port, data)
        return ""
