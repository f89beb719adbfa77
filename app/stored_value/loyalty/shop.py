"""The shopper's points page, /s/{slug}/account/points: balance, what it is worth, tier, the way to the next
tier, and the history of the points account (per shopper, never cached)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.core.money import minor_digits
from app.stored_value.ledger import Ledger
from app.stored_value.loyalty.points import describe, shopper_points
from app.storefront.controllers._common import DbSession, customer_id_of, shop_context, shop_store

HISTORY = 50


class LoyaltyShopController(Controller):
    include_in_schema = False

    @get("/s/{slug:str}/account/points")
    async def points_page(
        self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession
    ) -> Template | Redirect:
        store = await shop_store(request, db_session, slug)
        customer_id = customer_id_of(request, store)
        if customer_id is None:
            return Redirect(f"/s/{store.slug}/account", status_code=303)
        points = await shopper_points(db_session, store.id, customer_id)
        context = await shop_context(request, db_session, store)
        entries = (
            await Ledger(db_session, store.id).entries(points.account_id, limit=HISTORY)
            if points and points.account_id
            else []
        )
        context.update(
            points=points,
            entries=[e for e in entries if e.delta_minor != 0],
            describe=describe,
            unit_minor=10 ** minor_digits(store.currency),
        )
        return Template("stored_value/loyalty_account.html", context=context)


__all__ = ["LoyaltyShopController"]
