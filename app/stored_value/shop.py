"""The shopper's gift card balance page, /s/{slug}/gift-card: type a code, see its balance and expiry. Guarded by the
lookup limiter (``lookup.py``): too many wrong codes from one address, or in one store, answer 429 with a clear
message. Never cached (no-store)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.errors import TooManyRequests
from app.stored_value import codes
from app.stored_value.instruments import TenderRequest
from app.stored_value.ledger import Account, Ledger
from app.stored_value.lookup import lookup
from app.storefront.controllers._common import DbSession, customer_id_of, shop_context, shop_store
from app.stores.models import Store

FormData = URLEncodedBody[dict[str, str]]
NO_STORE = {"cache-control": "no-store"}


def tenders_from_form(data: dict[str, str]) -> tuple[TenderRequest, ...]:
    """The checkout form's stored value: the shopper's store credit first (when ticked), their points (when ticked),
    then a gift card code."""
    tenders: list[TenderRequest] = []
    if data.get("use_store_credit"):
        tenders.append(TenderRequest("store_credit"))
    if data.get("use_points"):  # as many of the shopper's points as pay what is due (app/stored_value/loyalty)
        tenders.append(TenderRequest("loyalty"))
    code = data.get("gift_card_code", "").strip()
    if code:
        tenders.append(TenderRequest("gift_card", code=code))
    return tuple(tenders)


async def shopper_credit(request: Request[Any, Any, Any], db_session: AsyncSession, store: Store) -> Account | None:
    """The signed-in shopper's store credit (None for guests and shoppers without any)."""
    customer_id = customer_id_of(request, store)
    if customer_id is None:
        return None
    account = await Ledger(db_session, store.id).customer_account(customer_id, "store_credit", "", create=False)
    return account if account is not None and account.balance_minor > 0 else None


_PAID_WITH = """
    SELECT h.instrument, a.code_last4, sum(h.value_minor)::bigint AS paid_minor
    FROM stored_value_holds h JOIN stored_value_accounts a ON a.id = h.account_id AND a.store_id = $1
    WHERE h.store_id = $1 AND h.order_id = $2 AND h.status = 'captured'
    GROUP BY h.instrument, a.code_last4 ORDER BY h.instrument
"""
LABELS = {"gift_card": "Gift card", "store_credit": "Store credit", "loyalty": "Points"}


async def paid_with(db_session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> list[tuple[str, int]]:
    """How an order's stored value paid: (label, money paid) per instrument, e.g. ("Gift card •••• 7Q2K", 1000)."""
    rows = await (await pg.reader(db_session)).fetch(_PAID_WITH, store_id, order_id)
    out = []
    for row in rows:
        label = LABELS.get(row["instrument"], row["instrument"].replace("_", " ").capitalize())
        if row["instrument"] == "gift_card":
            label = f"{label} •••• {row['code_last4']}"
        out.append((label, int(row["paid_minor"])))
    return out


def client_of(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class GiftCardShopController(Controller):
    include_in_schema = False

    @get("/s/{slug:str}/gift-card")
    async def balance_page(
        self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession
    ) -> Template:
        store = await shop_store(request, db_session, slug)
        context = await shop_context(request, db_session, store)
        context.update(card=None, errors={}, values={})
        return Template("stored_value/balance.html", context=context, headers=NO_STORE)

    @post("/s/{slug:str}/gift-card", status_code=200, media_type=MediaType.HTML)
    async def check_balance(
        self, request: Request[Any, Any, Any], slug: FromPath[str], data: FormData, db_session: DbSession
    ) -> Template:
        store = await shop_store(request, db_session, slug)
        context = await shop_context(request, db_session, store)
        code = data.get("code", "")
        context.update(card=None, errors={}, values={"code": code})
        if not codes.normalise(code):
            context["errors"] = {"code": "A gift card code has 16 letters and digits, like ABCD-EFGH-JKMN-PQRS."}
            return Template("stored_value/balance.html", context=context, status_code=422, headers=NO_STORE)
        try:
            card = await lookup(
                await pg.reader(db_session), request.app.state.redis, store.id, code, client=client_of(request)
            )
        except TooManyRequests as exc:
            context["errors"] = {"code": exc.detail}
            headers = {**NO_STORE, "retry-after": str(exc.retry_after)}
            return Template("stored_value/balance.html", context=context, status_code=429, headers=headers)
        if card is None:
            context["errors"] = {"code": "We could not find a gift card with this code. Check it and try again."}
            return Template("stored_value/balance.html", context=context, status_code=404, headers=NO_STORE)
        context.update(card=card, values={})
        return Template("stored_value/balance.html", context=context, headers=NO_STORE)


__all__ = ["GiftCardShopController", "paid_with", "shopper_credit", "tenders_from_form"]
