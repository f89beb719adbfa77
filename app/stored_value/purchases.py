"""Gift cards sold as a product on the storefront (issue 15): a product the store marks as a gift card (the Gift
cards page; ``settings["stored_value"]["gift_card_products"]``) activates one card per unit, of the unit's price,
when its order is paid — the outbox consumer ``activate_gift_cards`` (``jobs.py``) on ``order.placed`` /
``order.payment_changed``, once per order (an advisory lock on the order, then "none made yet").

The buyer gets each code on their order page, once: it is kept encrypted under the keyring (bound to the account)
in ``reveal_ciphertext`` until that page shows it, then erased. Nothing keeps the code in clear: not the database,
not an e-mail in the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Variant
from app.core import pg
from app.core.encryption import current_keyring
from app.core.errors import ValidationFailed
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.orders.models import Order, OrderLine
from app.stored_value.models import StoredValueAccount
from app.stored_value.services import GiftCardService
from app.stores.models import Store
from app.stores.services import StoreService

SETTING = "gift_card_products"
PAID = ("paid",)


def gift_card_products(settings: dict[str, Any] | None) -> set[str]:
    return {str(p) for p in ((settings or {}).get("stored_value") or {}).get(SETTING, [])}


async def set_gift_card_products(
    session: AsyncSession, store_id: uuid.UUID, product_ids: Iterable[str], *, principal: Principal | None
) -> set[str]:
    chosen = set()
    for value in product_ids:
        try:
            chosen.add(str(uuid.UUID(value)))
        except ValueError:
            raise ValidationFailed("Unknown product.", fields={"products": "Choose products of this shop."}) from None
    store = await session.get(Store, store_id)
    assert store is not None
    current = dict(store.settings.get("stored_value") or {})
    await StoreService(session, store_id).set_settings(
        {"stored_value": {**current, SETTING: sorted(chosen)}}, actor=principal, action="settings.stored_value"
    )
    return chosen


async def product_choices(session: AsyncSession, store_id: uuid.UUID) -> list[tuple[str, str]]:
    """(id, name) of the store's products, for the "sold as gift cards" choice."""
    from app.catalog.models import Product

    bind_store(session, store_id)
    rows = await session.execute(select(Product.id, Product.name).order_by(Product.name))
    return [(str(i), n) for i, n in rows.all()]


def _context(account_id: uuid.UUID) -> str:
    return f"stored_value_accounts/{account_id}/reveal"


async def activate(session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> int:
    """Issue the gift cards a paid order bought (once): how many were made now."""
    bind_store(session, store_id)
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"giftcards:{order_id}"})
    order = await session.get(Order, order_id)
    store = await session.get(Store, store_id)
    if order is None or store is None or order.payment_status not in PAID:
        return 0
    if order.channel != "web":  # only the web order page can show the code; a POS sale is an ordinary sale
        return 0
    products = gift_card_products(store.settings)
    if not products:
        return 0
    made = await session.scalar(
        select(func.count()).select_from(StoredValueAccount).where(StoredValueAccount.source_order_id == order_id)
    )
    if made:
        return 0
    lines = (
        await session.execute(
            select(OrderLine.quantity, OrderLine.unit_price_minor)
            .join(Variant, Variant.id == OrderLine.variant_id)
            .where(OrderLine.order_id == order_id, Variant.product_id.in_([uuid.UUID(p) for p in products]))
        )
    ).all()
    service = GiftCardService(session, store_id)
    keyring = current_keyring()
    count = 0
    for quantity, unit_price in lines:
        if unit_price <= 0:
            continue
        cards = await service.issue(
            unit_price, order.currency, principal=None, count=quantity, source_order_id=order_id,
            note=f"Bought with order #{order.number}",
        )  # fmt: skip
        for card in cards:
            await session.execute(
                update(StoredValueAccount)
                .where(StoredValueAccount.id == card.account.id)
                .values(reveal_ciphertext=keyring.encrypt(card.code, context=_context(card.account.id)))
            )
        count += len(cards)
    return count


@dataclass(frozen=True)
class BoughtCard:
    last4: str
    amount_minor: int
    code: str  # "" once shown


async def gift_card_variants(session: AsyncSession, store: Store, variant_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these variants are gift cards (no query unless the store sells gift cards)."""
    products = gift_card_products(store.settings)
    ids = list(variant_ids)
    if not products or not ids:
        return set()
    bind_store(session, store.id)
    rows = await session.scalars(
        select(Variant.id).where(Variant.id.in_(ids), Variant.product_id.in_([uuid.UUID(p) for p in products]))
    )
    return set(rows)


async def activate_pos_sale(session: AsyncSession, store: Store, order_id: uuid.UUID) -> list[BoughtCard]:
    """A till sale's gift cards, made once (issue 15): the first call — in the sale's own transaction, just after
    its statement (app/pos/sales.py ``_run``), so the order and its cards commit together and its receipt always
    names them — issues one active card per gift-card unit sold (of its unit price) and answers their codes for the
    tablet to show once; every later call (a repeat of the same sale) answers the same cards with ``code`` "" — the
    code is never kept, in clear or encrypted. Only online sales: a sale made offline is recorded with a
    ``gift_card_offline`` conflict instead."""
    products = gift_card_products(store.settings)
    if not products:
        return []
    bind_store(session, store.id)
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"giftcards:{order_id}"})
    made = list(
        await session.scalars(
            select(StoredValueAccount)
            .where(StoredValueAccount.source_order_id == order_id)
            .order_by(StoredValueAccount.created_at)
        )
    )
    if made:
        return [BoughtCard(a.code_last4, a.issued_minor, "") for a in made]
    order = await session.get(Order, order_id)
    if order is None or order.channel != "pos" or order.payment_status not in PAID:
        return []
    lines = (
        await session.execute(
            select(OrderLine.quantity, OrderLine.unit_price_minor)
            .join(Variant, Variant.id == OrderLine.variant_id)
            .where(OrderLine.order_id == order_id, Variant.product_id.in_([uuid.UUID(p) for p in products]))
            .order_by(OrderLine.position)
        )
    ).all()
    service = GiftCardService(session, store.id)
    out: list[BoughtCard] = []
    for quantity, unit_price in lines:
        if unit_price <= 0:
            continue
        cards = await service.issue(
            unit_price, order.currency, principal=None, count=quantity, source_order_id=order_id,
            note=f"Sold at the till, order #{order.number}",
        )  # fmt: skip
        out += [BoughtCard(c.account.code_last4, unit_price, c.code) for c in cards]
    return out


_SALE_CARDS = """
    SELECT code_last4, issued_minor FROM stored_value_accounts
    WHERE store_id = $1 AND source_order_id = $2 ORDER BY created_at
"""


async def pos_sale_cards(conn: pg.Connection, store: Store, order_id: uuid.UUID) -> list[BoughtCard]:
    """The gift cards a till sale activated, without codes (for a repeat of the sale that arrives by sync: its
    first answer was lost, so nobody saw them). No query unless the store sells gift cards."""
    if not gift_card_products(store.settings):
        return []
    rows = await conn.fetch(_SALE_CARDS, store.id, order_id)
    return [BoughtCard(r["code_last4"], int(r["issued_minor"]), "") for r in rows]


async def buys_cards(session: AsyncSession, store: Store, order_id: uuid.UUID) -> int:
    """How many gift cards the order's lines buy (0 for most orders: one indexed read only when the store sells any)."""
    products = gift_card_products(store.settings)
    if not products:
        return 0
    bind_store(session, store.id)
    total = await session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity), 0))
        .join(Variant, Variant.id == OrderLine.variant_id)
        .where(OrderLine.order_id == order_id, Variant.product_id.in_([uuid.UUID(p) for p in products]))
    )
    return int(total or 0)


async def reveal(session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> list[BoughtCard]:
    """The order's bought cards: codes not shown yet are decrypted for this page and erased (shown once)."""
    bind_store(session, store_id)
    rows = list(
        await session.scalars(
            select(StoredValueAccount)
            .where(StoredValueAccount.source_order_id == order_id)
            .order_by(StoredValueAccount.created_at)
            .with_for_update()
        )
    )
    keyring = current_keyring()
    out = []
    for account in rows:
        code = ""
        if account.reveal_ciphertext:
            code = keyring.decrypt(account.reveal_ciphertext, context=_context(account.id))
            account.reveal_ciphertext = None
        out.append(BoughtCard(account.code_last4, account.issued_minor, code))
    return out


__all__ = [
    "BoughtCard",
    "activate",
    "activate_pos_sale",
    "buys_cards",
    "gift_card_products",
    "gift_card_variants",
    "pos_sale_cards",
    "reveal",
    "set_gift_card_products",
]
