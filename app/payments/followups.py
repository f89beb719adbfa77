"""What happens to a payment after the order moves, run by worker jobs that consume order events:

- **capture at fulfilment**: a store that authorises at checkout (``capture_policy = at_fulfilment``)
  captures the authorisation when the order is fulfilled (or handed over: picked up, shipped, delivered);
- **transfer to the store's account** (Stripe Connect, separate charges and transfers): once money is
  captured on the platform, the store's share (captured less the processing and platform fees) is
  transferred, keyed by the intent, so a repeated event transfers once.

Both are idempotent: a repeat finds the work done and changes nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import Conflict
from app.core.money import Money
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.orders.services import Actor
from app.payments.capabilities import SupportsConnect
from app.payments.models import PaymentIntent
from app.payments.operations import Outcome, PaymentOperations
from app.payments.provider import PaymentProvider
from app.stores.commerce import CommerceSettings
from app.stores.models import Store

HANDED_OVER = ("fulfilled", "picked_up", "shipped", "delivered")
SYSTEM = Actor(Role.OWNER, "Till (capture at fulfilment)", "system")


async def _active_intent(session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> PaymentIntent | None:
    bind_store(session, store_id)
    intent: PaymentIntent | None = await session.scalar(
        select(PaymentIntent).where(
            PaymentIntent.order_id == order_id, PaymentIntent.status.not_in(("declined", "failed", "voided"))
        )
    )
    return intent


async def capture_on_fulfilment(
    sessions: async_sessionmaker[AsyncSession], store: Store, provider: PaymentProvider, order_id: uuid.UUID
) -> Outcome | None:
    """Capture what is left of the order's authorisation, if the store captures at fulfilment."""
    if CommerceSettings.of(store.settings).capture_policy != "at_fulfilment":
        return None
    async with sessions() as session:
        intent = await _active_intent(session, store.id, order_id)
    if intent is None or intent.status != "authorized" or intent.pending_operation is not None:
        return None
    try:
        return await PaymentOperations(sessions, store.id, provider).capture(
            order_id, intent.id, amount_minor=None, actor=SYSTEM
        )
    except Conflict:  # captured meanwhile (by staff, or a repeated event): nothing left to do
        return None


async def transfer_to_store(
    sessions: async_sessionmaker[AsyncSession], store: Store, provider: PaymentProvider, order_id: uuid.UUID
) -> str | None:
    """Transfer the store's net share of a captured platform charge; returns the transfer's id."""
    settings = CommerceSettings.of(store.settings)
    if settings.connect_charge_type != "separate" or not isinstance(provider, SupportsConnect):
        return None
    async with sessions() as session:
        intent = await _active_intent(session, store.id, order_id)
    if intent is None or not intent.connected_account or intent.transfer_ref or not intent.captured_minor:
        return None
    # The store's share of what was captured; refunds made later come out of its balance, as on Stripe.
    net = intent.captured_minor - intent.processing_fee_minor - intent.application_fee_minor
    if net <= 0:
        return None
    transfer = await provider.create_transfer(
        amount=Money(net, intent.currency),
        destination=intent.connected_account,
        transfer_group=f"order-{order_id}",
        idempotency_key=f"transfer:{intent.id}",
        source_ref=intent.provider_ref,
    )
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        row = await session.scalar(select(PaymentIntent).where(PaymentIntent.id == intent.id).with_for_update())
        if row is not None and not row.transfer_ref:
            row.transfer_ref = transfer.id
    return transfer.id
