"""Cart rules: add, change, remove, and a stock-aware view with totals."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.cart.models import Cart, CartLine
from app.catalog.services import CatalogService
from app.core import pg
from app.core.errors import NotFound, ValidationFailed
from app.core.money import Money
from app.core.tenancy import bind_store
from app.inventory.services import InventoryService

MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLineView:
    """A cart line with what the shopper sees of its variant, and the stock left for it."""

    variant_id: uuid.UUID
    sku: str
    name: str  # the product's name
    options: dict[str, Any]
    unit_price: int
    weight_grams: int
    tax_class: str
    on_sale: bool  # variant and product both active
    quantity: int
    available: int

    @property
    def variant_title(self) -> str:
        return " / ".join(str(v) for v in self.options.values())

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity

    @property
    def problem(self) -> str:
        if not self.on_sale:
            return "No longer sold."
        if self.available <= 0:
            return "Sold out."
        if self.quantity > self.available:
            return f"Only {self.available} left."
        return ""


@dataclass(frozen=True)
class CartRef:
    id: uuid.UUID
    token: str


@dataclass(frozen=True)
class CartView:
    cart: CartRef | None
    currency: str
    lines: list[CartLineView]

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def subtotal(self) -> Money:
        return Money(sum(line.total for line in self.lines), self.currency)

    @property
    def has_problems(self) -> bool:
        return any(line.problem for line in self.lines)


_OPEN_CART_KEY_SQL = "SELECT token FROM carts WHERE id = $1 AND store_id = $2 AND status = 'open'"


async def open_cart_token(conn: pg.Connection, store_id: uuid.UUID, cart_id: uuid.UUID) -> str | None:
    token: str | None = await conn.fetchval(_OPEN_CART_KEY_SQL, cart_id, store_id)
    return token


# One statement for the whole view (the quote reads it on every checkout, ADR 0003), and a fragment: the quote
# reads its offers in the same statement (app/promotions/pricing.py). Parameters :cart_token and :store_id; a
# statement that uses it orders by CART_VIEW_ORDER.
CART_VIEW_SQL = """
    SELECT c.id AS cart_id, c.token, l.variant_id, l.quantity, v.sku, v.options, v.price_minor, v.weight_grams,
           (v.is_active AND p.is_active) AS on_sale, p.name, p.tax_class, v.product_id, p.category_id,
           (SELECT COALESCE(sum(GREATEST(sl.on_hand - sl.reserved, 0)), 0) FROM stock_levels sl
            WHERE sl.variant_id = l.variant_id AND sl.store_id = :store_id) AS available,
           l.created_at AS line_created_at, l.id AS line_id
    FROM carts c
    LEFT JOIN cart_lines l ON l.cart_id = c.id AND l.store_id = :store_id
    LEFT JOIN variants v ON v.id = l.variant_id AND v.store_id = :store_id
    LEFT JOIN products p ON p.id = v.product_id AND p.store_id = :store_id
    WHERE c.token = :cart_token AND c.store_id = :store_id AND c.status = 'open'
"""
CART_VIEW_ORDER = "ORDER BY line_created_at, line_id"
_CART_VIEW = f"{CART_VIEW_SQL} {CART_VIEW_ORDER}"


async def cart_view(conn: pg.Connection, store_id: uuid.UUID, currency: str, token: str | None) -> CartView:
    """The open cart behind ``token`` with stock-aware lines; ``cart`` is None when there is no such cart."""
    if not token:
        return CartView(None, currency, [])
    sql, args = pg.named(_CART_VIEW, {"cart_token": token, "store_id": store_id})
    return cart_of_rows(await conn.fetch(sql, *args), currency)


def cart_of_rows(rows: Sequence[Mapping[str, Any]], currency: str) -> CartView:
    """The view from CART_VIEW_SQL's rows (none: no such cart)."""
    if not rows:
        return CartView(None, currency, [])
    lines = [
        CartLineView(
            variant_id=row["variant_id"],
            sku=row["sku"],
            name=row["name"],
            options=row["options"] or {},
            unit_price=row["price_minor"],
            weight_grams=row["weight_grams"],
            tax_class=row["tax_class"],
            on_sale=row["on_sale"],
            quantity=row["quantity"],
            available=int(row["available"]),
        )
        for row in rows
        if row["sku"] is not None
    ]
    return CartView(CartRef(rows[0]["cart_id"], rows[0]["token"]), currency, lines)


def content_hash(lines: list[tuple[uuid.UUID, int, int]]) -> str:
    """Hash of (variant, quantity, unit price) lines: a quote is valid only while the cart still hashes the same."""
    digest = hashlib.sha256()
    for variant_id, quantity, price in sorted(lines):
        digest.update(f"{variant_id}:{quantity}:{price};".encode())
    return digest.hexdigest()


class CartService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID, currency: str) -> None:
        self.session = session
        self.store_id = store_id
        self.currency = currency
        bind_store(session, store_id)

    async def find(self, token: str | None) -> Cart | None:
        if not token:
            return None
        cart: Cart | None = await self.session.scalar(select(Cart).where(Cart.token == token, Cart.status == "open"))
        return cart

    async def get_or_create(self, token: str | None, customer_id: uuid.UUID | None = None) -> Cart:
        cart = await self.find(token)
        if cart is None:
            cart = Cart(token=secrets.token_urlsafe(24), currency=self.currency, customer_id=customer_id, lines=[])
            self.session.add(cart)
            await self.session.flush()
        return cart

    async def view(self, token: str | None) -> CartView:
        return await cart_view(await pg.reader(self.session), self.store_id, self.currency, token)

    async def add(self, cart: Cart, variant_id: uuid.UUID, quantity: int) -> int:
        """Add to the cart; returns the new quantity of that line. Refuses more than is in stock."""
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValidationFailed("Choose a quantity from 1 to 99.", fields={"quantity": "Choose 1 to 99."})
        variant = (await CatalogService(self.session, self.store_id).variants([variant_id])).get(variant_id)
        if variant is None or not variant.is_active or not variant.product.is_active:
            raise NotFound("That item is not for sale.")
        current = next((line.quantity for line in cart.lines if line.variant_id == variant_id), 0)
        await self._check_stock(variant_id, current + quantity)
        new_quantity = await self.session.scalar(
            insert(CartLine)
            .values(id=uuid.uuid4(), store_id=self.store_id, cart_id=cart.id, variant_id=variant_id, quantity=quantity)
            .on_conflict_do_update(
                index_elements=["cart_id", "variant_id"], set_={"quantity": CartLine.quantity + quantity}
            )
            .returning(CartLine.quantity)
        )
        await self.session.refresh(cart, ["lines"])
        return int(new_quantity or 0)

    async def set_quantity(self, cart: Cart, variant_id: uuid.UUID, quantity: int) -> None:
        if quantity <= 0:
            await self.remove(cart, variant_id)
            return
        if quantity > MAX_QUANTITY:
            raise ValidationFailed("Choose a quantity from 1 to 99.", fields={"quantity": "Choose 1 to 99."})
        line = next((line for line in cart.lines if line.variant_id == variant_id), None)
        if line is None:
            raise NotFound("That item is not in the cart.")
        if quantity > line.quantity:
            await self._check_stock(variant_id, quantity)
        line.quantity = quantity
        await self.session.flush()

    async def remove(self, cart: Cart, variant_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(CartLine).where(CartLine.cart_id == cart.id, CartLine.variant_id == variant_id)
        )
        await self.session.refresh(cart, ["lines"])

    async def _check_stock(self, variant_id: uuid.UUID, wanted: int) -> None:
        available = (await InventoryService(self.session, self.store_id).availability([variant_id]))[
            variant_id
        ].available
        if wanted > available:
            message = "Sold out." if available <= 0 else f"Only {available} left."
            raise ValidationFailed(message, fields={"quantity": message})
