"""Builds the checkout saga for a store from the app's shared clients (web app or worker)."""

from __future__ import annotations

import time

from litestar.datastructures import State
from saq import Queue

from app.checkout.saga import CheckoutSaga
from app.core.jobs import enqueue
from app.payments.registry import provider_of
from app.stores.models import Store

SANDBOX_SETTLE_DELAY_S = 2


async def checkout_saga(state: State, store: Store) -> CheckoutSaga:
    provider = await provider_of(state.sessions, store, state.redis, state.settings)
    queue: Queue = state.queue

    async def settle_later(provider_ref: str) -> None:
        # The sandbox's "success after a delay" card: its bank confirms a moment later, by webhook.
        if provider.name == "sandbox":
            await enqueue(
                queue,
                "sandbox_settle",
                key=f"sandbox_settle:{provider_ref}",
                scheduled=int(time.time()) + SANDBOX_SETTLE_DELAY_S,
                provider_ref=provider_ref,
            )

    return CheckoutSaga(state.sessions, store, provider, on_pending=settle_later)
