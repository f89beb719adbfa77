"""Helpers for promotion tests: make a promotion through the service, read its counters and uses."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cart.services import CartService
from app.checkout.models import CheckoutSnapshot
from app.checkout.quotes import QuoteRequest, QuoteService
from app.core import pg
from app.core.tenancy import bind_store
from app.promotions.models import Promotion, PromotionCustomerUse, PromotionRedemption
from app.promotions.services import PromotionService, PromotionSpec
from app.stores.models import Store
from tests.integration.shop import Shop

Sessions = async_sessionmaker[AsyncSession]


async def make_promotion(sessions: Sessions, store: Store, **fields: Any) -> Promotion:
    """A promotion made the way staff make one: 10 % off with the code TEN unless told otherwise."""
    spec = PromotionSpec(**{"name": "Ten off", "kind": "percentage", "code": "TEN", "percent_bps": 1000, **fields})
    async with sessions() as session, session.begin():
        return await PromotionService(session, store.id).create(spec, timezone=store.timezone, actor=None)


async def quote(
    sessions: Sessions,
    shop: Shop,
    lines: dict[str, int],
    *,
    codes: tuple[str, ...] = (),
    email: str = "ann@example.com",
    **request: Any,
) -> CheckoutSnapshot:
    async with sessions() as session, session.begin():
        carts = CartService(session, shop.store.id, shop.store.currency)
        cart = await carts.get_or_create(None)
        for sku, quantity in lines.items():
            await carts.add(cart, shop.variants[sku], quantity)
        return await QuoteService(await pg.writer(session), shop.store).create(
            QuoteRequest(cart_token=cart.token, email=email, codes=codes, **request)
        )


async def promotion_state(sessions: Sessions, store_id: uuid.UUID, promotion_id: uuid.UUID) -> dict[str, Any]:
    """uses_claimed, and the redemptions by status."""
    async with sessions() as session:
        bind_store(session, store_id)
        promotion = await session.get(Promotion, promotion_id)
        assert promotion is not None
        rows = await session.execute(
            select(PromotionRedemption.status, func.count())
            .where(PromotionRedemption.promotion_id == promotion_id)
            .group_by(PromotionRedemption.status)
        )
        statuses = {status: int(n) for status, n in rows}
        customers = {
            row.customer_key: row.uses
            for row in await session.scalars(
                select(PromotionCustomerUse).where(PromotionCustomerUse.promotion_id == promotion_id)
            )
        }
    return {"uses_claimed": promotion.uses_claimed, "statuses": statuses, "customers": customers}
