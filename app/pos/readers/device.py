"""The server side of the sandbox reader page (``/pos/reader``): what its screen shows and what its buttons do.

The page is public (it plays a terminal on a phone or another tab): it is known only by the secret in its
cookie, whose hash is the reader's id (app/pos/readers/sandbox.py). Unpaired, it shows its pairing code; paired,
the register it belongs to, the payment waiting on it (with the customer's buttons) or how the last one ended.
Each poll is a short request: no database session is held between polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.tenancy import system_scope
from app.payments.registry import sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.pos.models import CardReader as ReaderRow
from app.pos.models import ReaderPayment, Register
from app.pos.readers.interface import Clock, utcnow
from app.pos.readers.sandbox import Outcome, PairingCode, SandboxReader
from app.pos.readers.services import ReaderPayments
from app.stores.commerce import CommerceSettings
from app.stores.models import Store

__all__ = ["SHOW_OUTCOME_FOR", "Screen", "SimulatedReaderDevice"]

SHOW_OUTCOME_FOR = timedelta(seconds=20)  # how long the screen shows how the last payment ended


@dataclass(frozen=True)
class Screen:
    kind: Literal["pairing", "ready", "payment", "outcome"]
    code: PairingCode | None = None
    store_name: str = ""
    register_name: str = ""
    reader_label: str = ""
    payment: ReaderPayment | None = None


class SimulatedReaderDevice:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, *, clock: Clock = utcnow
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        provider = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
        self.reader = SandboxReader(redis, provider, clock=clock)

    async def screen(self, reader_ref: str) -> Screen:
        paired = await self._paired(reader_ref)
        if paired is None:
            return Screen("pairing", code=await self.reader.pairing_code(reader_ref))
        row, store, register = paired
        latest = await ReaderPayments(self.sessions, store, self.reader, clock=self.clock).latest_on(row)
        kind: Literal["ready", "payment", "outcome"] = "ready"
        if latest is not None and latest.payment.status == "waiting":
            kind = "payment"
        elif latest is not None and latest.payment.updated_at >= utcnow() - SHOW_OUTCOME_FOR:
            kind = "outcome"  # (the wall clock: this is only what the screen shows, not a rule)
        return Screen(
            kind,
            store_name=store.name,
            register_name=register.name,
            reader_label=row.label,
            payment=latest.payment if latest is not None else None,
        )

    async def press(self, reader_ref: str, outcome: Outcome) -> Screen:
        """The customer's button on the reader; then the payment is brought up to date (approved → captured and
        in the ledger) before the screen answers. Nothing happens unless a payment waits on this reader."""
        paired = await self._paired(reader_ref)
        if paired is not None:
            row, store, _ = paired
            payments = ReaderPayments(self.sessions, store, self.reader, clock=self.clock)
            latest = await payments.latest_on(row)
            if latest is not None and latest.payment.status == "waiting":
                await self.reader.present(reader_ref, outcome)
                await payments.get(latest.payment.id)
        return await self.screen(reader_ref)

    async def _paired(self, reader_ref: str) -> tuple[ReaderRow, Store, Register] | None:
        """The reader's row, store and register when it is paired with a register of a store on the sandbox."""
        async with self.sessions() as session:
            system_scope(session)  # the page has no store: its reader id finds it
            found = (
                await session.execute(
                    select(ReaderRow, Store, Register)
                    .join(Store, Store.id == ReaderRow.store_id)
                    .join(Register, Register.id == ReaderRow.register_id)
                    .where(ReaderRow.provider == "sandbox", ReaderRow.provider_reader_id == reader_ref)
                    .limit(1)
                )
            ).first()
        if found is None or CommerceSettings.of(found[1].settings).payment_provider != "sandbox":
            return None
        return found[0], found[1], found[2]
