"""Cart rules: add, change, remove, and a stock-aware view with totals."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.cart.models import Cart, CartLine
from app.catalog.models import Variant
from app.catalog.services import CatalogService
from app.core.errors import NotFound, ValidationFailed
from app.core.money import Money
from app.core.tenancy import bind_store
from app.inventory.services import InventoryService

MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLineView:
    variant: Variant
    quantity: int
    available: int

    @property
    def unit_price(self) -> int:
        return self.variant.price_minor

    @property
    def total(self) -> int:
        return self.variant.price_minor * self.quantity

    @property
    def problem(self) -> str:
        if not self.variant.is_active or not self.variant.product.is_active:
            return "No longer sold."
        if self.available <= 0:
            return "Sold out."
        if self.quantity > self.available:
            return f"Only {self.available} left."
        return ""


@dataclass(frozen=True)
class CartView:
    cart: Cart | None
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
        cart = await self.find(token)
        if cart is None or not cart.lines:
            return CartView(cart, self.currency, [])
        variant_ids = [line.variant_id for line in cart.lines]
        variants = await CatalogService(self.session, self.store_id).variants(variant_ids)
        stock = await InventoryService(self.session, self.store_id).availability(variant_ids)
        lines = [
            CartLineView(variants[line.variant_id], line.quantity, stock[line.variant_id].available)
            for line in cart.lines
            if line.variant_id in variants
        ]
        return CartView(cart, self.currency, lines)

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
