"""Helpers for the POS server's tests: a shop with a register and an open shift, a cashier signed in on the
tablet's JSON API, sales as the tablet builds them, and offline queue entries checksummed under the shift's key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.money import Money
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.pos.canonical import checksum, key_from_text
from app.pos.models import PosSale, Register
from app.pos.pricing import TicketLine, price_ticket
from app.stores.models import Store
from app.tax.providers import BuiltinTax
from tests.integration.conftest import StaffMember, World, sign_in
from tests.integration.shop import Shop, make_shop

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
PRICES = {"BEAN-1": (1190, "reduced"), "MUG-1": (1400, "standard"), "CRO-1": (240, "reduced")}
API = "/pos/api"


@dataclass
class Till:
    shop: Shop
    manager: StaffMember
    cashier: StaffMember
    register_id: uuid.UUID
    shift_id: uuid.UUID
    key: bytes
    headers: dict[str, str]  # the cashier's JSON headers, signed in on the client
    sequence: int = 0

    @property
    def store(self) -> Store:
        return self.shop.store

    def variant(self, sku: str) -> uuid.UUID:
        return self.shop.variants[sku]


async def signed_in(client: Client, member: StaffMember) -> dict[str, str]:
    """Sign in; the headers the tablet's JSON calls carry (the CSRF cookie's token)."""
    client.cookies.clear()
    await sign_in(client, member.email)
    await client.get("/staff")
    return {"x-csrftoken": client.cookies["till_csrf"]}


async def add_register(sessions: Sessions, store: Store, name: str = "Counter 1") -> uuid.UUID:
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        register = Register(name=name)
        session.add(register)
        await session.flush()
        return register.id


async def open_till(
    client: Client,
    world: World,
    sessions: Sessions,
    *,
    stock: dict[str, int] | None = None,
    float_minor: int = 10_000,
    role: Role = Role.CASHIER,
    shop: Shop | None = None,
    register: str = "Counter 1",
) -> Till:
    """A shop (or ``shop``) with a register, its cashier signed in on ``client`` and a shift open on it."""
    shop = shop or await make_shop(world, stock)
    manager = await world.staff(shop.store, Role.MANAGER)
    cashier = await world.staff(shop.store, role)
    register_id = await add_register(sessions, shop.store, register)
    headers = await signed_in(client, cashier)
    opened = await client.post(
        f"{API}/shifts", json={"register_id": str(register_id), "opening_float_minor": float_minor}, headers=headers
    )
    assert opened.status_code == 201, opened.text
    body = opened.json()
    return Till(shop, manager, cashier, register_id, uuid.UUID(body["id"]), key_from_text(body["offline_key"]), headers)


def priced_total(lines: list[tuple[str, int, int, int]], ticket_discount: int = 0) -> int:
    """What the server charges (DE, prices include tax) for (sku, quantity, unit price, line discount) lines."""
    ticket = [
        TicketLine(uuid.uuid4(), quantity, price, discount, PRICES[sku][1]) for sku, quantity, price, discount in lines
    ]
    priced = price_ticket(
        ticket, ticket_discount, tax=BuiltinTax.from_settings({}, "EUR"), country="DE", prices_include_tax=True,
        currency="EUR",
    )  # fmt: skip
    return priced.total_minor


def sale_body(
    till: Till,
    items: dict[str, int] | None = None,
    *,
    discounts: dict[str, int] | None = None,
    prices: dict[str, int] | None = None,
    ticket_discount: int = 0,
    tenders: list[dict[str, Any]] | None = None,
    total: int | None = None,
    sold_at: datetime | None = None,
    offline: bool = False,
    client_sale_id: uuid.UUID | None = None,
    manager_pin: str | None = None,
    customer_id: uuid.UUID | None = None,
    notes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Sale as the tablet sends it; paid exactly in cash unless ``tenders`` say otherwise."""
    items = items or {"CRO-1": 2}
    discounts, prices, notes = discounts or {}, prices or {}, notes or {}
    lines = [(sku, quantity, prices.get(sku, PRICES[sku][0]), discounts.get(sku, 0)) for sku, quantity in items.items()]
    total = priced_total(lines, ticket_discount) if total is None else total
    till.sequence += 1
    return {
        "client_sale_id": str(client_sale_id or uuid.uuid4()),
        "register_id": str(till.register_id),
        "shift_id": str(till.shift_id),
        "sequence": till.sequence,
        "sold_at": (sold_at or datetime.now(UTC)).isoformat(),
        "offline": offline,
        "lines": [
            {
                "variant_id": str(till.variant(sku)),
                "quantity": quantity,
                "unit_price_minor": price,
                "discount_minor": discount,
                "note": notes.get(sku, ""),
            }
            for sku, quantity, price, discount in lines
        ],
        "ticket_discount_minor": ticket_discount,
        "manager_pin": manager_pin,
        "customer_id": str(customer_id) if customer_id else None,
        "tenders": tenders
        if tenders is not None
        else [{"kind": "cash", "amount_minor": total, "tendered_minor": total}],
        "total_minor": total,
    }


def entry(sale: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The queue entry the tablet sends for an offline sale: the sale and its checksum under the shift's key."""
    return {
        "client_sale_id": sale["client_sale_id"],
        "sequence": sale["sequence"],
        "sold_at": sale["sold_at"],
        "sale": sale,
        "checksum": checksum(key, sale),
    }


def batch(till: Till, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"register_id": str(till.register_id), "shift_id": str(till.shift_id), "entries": entries}


async def sales_of(sessions: Sessions, store: Store) -> list[PosSale]:
    async with sessions() as session:
        bind_store(session, store.id)
        return list(await session.scalars(select(PosSale).order_by(PosSale.created_at)))


def eur(minor: int) -> Money:
    return Money(minor, "EUR")
