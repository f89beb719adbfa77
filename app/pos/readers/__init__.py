"""Card readers for the POS: the :class:`CardReader` interface (``interface.py``), the sandbox's simulated reader
(``sandbox.py``), Stripe Terminal (``stripe_terminal.py``), the card payments at a register (``services.py``),
their API (``api.py``) and pages (``pages.py``).

A store's reader kind follows its payment provider: a sandbox store pairs the simulated reader, a Stripe store
pairs Stripe Terminal readers, and the money of a reader payment lands in the same ledger as a web payment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.payments.provider import PaymentProvider
from app.payments.providers import StripeProvider
from app.payments.registry import provider_of
from app.payments.sandbox import SandboxProvider
from app.pos.readers.interface import (
    CardReader,
    Clock,
    ReaderDevice,
    ReaderError,
    ReaderPaymentRequest,
    ReaderPaymentState,
    ReadersNotAvailable,
    ReaderState,
    RegisterReaderRequest,
    utcnow,
)
from app.pos.readers.sandbox import SandboxReader
from app.pos.readers.stripe_terminal import StripeTerminalReader
from app.stores.models import Store

__all__ = [
    "CardReader",
    "Clock",
    "ReaderDevice",
    "ReaderError",
    "ReaderPaymentRequest",
    "ReaderPaymentState",
    "ReaderState",
    "ReadersNotAvailable",
    "RegisterReaderRequest",
    "SandboxReader",
    "StripeTerminalReader",
    "clock_of",
    "reader_for",
    "reader_of",
    "utcnow",
]


def clock_of(state: Mapping[str, Any]) -> Clock:
    """The app's clock (``app.state.clock``, set by tests to move time), else the system's."""
    clock = state.get("clock")
    return clock if callable(clock) else utcnow


def reader_for(provider: PaymentProvider, redis: Redis, *, clock: Clock = utcnow) -> CardReader:
    """The reader kind of a store's payment provider (its calls recorded in the provider call audit)."""
    from app.reconciliation.reader_calls import sandbox_reader, stripe_terminal_reader

    if isinstance(provider, SandboxProvider):
        return sandbox_reader(redis, provider, clock=clock)
    if isinstance(provider, StripeProvider):
        return stripe_terminal_reader(provider)
    raise ReadersNotAvailable(f"Card readers need the sandbox or Stripe; this store pays through {provider.name}.")


async def reader_of(
    sessions: async_sessionmaker[AsyncSession], store: Store, redis: Redis, settings: Settings, *, clock: Clock = utcnow
) -> CardReader:
    """The store's card reader kind, with its provider's keys read when it needs them."""
    return reader_for(await provider_of(sessions, store, redis, settings), redis, clock=clock)
