"""The demo store that `till up` creates on an empty database."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.catalog.demo_data import CATEGORIES, PRODUCTS
from app.catalog.models import Product, Variant
from app.catalog.services import CatalogService
from app.core.money import Money
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.inventory.models import StockLevel
from app.inventory.services import InventoryService
from app.stores.hours import parse_hours
from app.stores.models import Store
from app.stores.services import UserService

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from app.config import Settings
    from app.pos.sales import PosSales, SaleAnswer

DEMO_SLUG = "demo"
DEMO_PASSWORD = "till-demo-2026"  # noqa: S105  (the public demo account)


@dataclass(frozen=True)
class DemoAccount:
    email: str
    name: str
    role: Role


DEMO_ACCOUNTS = (
    DemoAccount("owner@demo.till", "Olivia Owner", Role.OWNER),
    DemoAccount("manager@demo.till", "Max Manager", Role.MANAGER),
    DemoAccount("staff@demo.till", "Sam Staff", Role.STAFF),
    DemoAccount("cashier@demo.till", "Cara Cashier", Role.CASHIER),
)


def demo_hours(today: date) -> dict[str, Any]:
    """The café's opening hours: weekdays 07:30-18:00, Saturdays 09:00-16:00, closed on Sundays, at Christmas and
    on New Year's Day; pickup every 15 minutes from 15 minutes on, up to a week ahead."""
    return parse_hours(
        {
            "weekly": {
                **{day: [["07:30", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
                "sat": [["09:00", "16:00"]],
                "sun": [],
            },
            "closed_dates": [f"{today.year}-12-25", f"{today.year}-12-26", f"{today.year + 1}-01-01"],
            "pickup": {"lead_minutes": 15, "interval_minutes": 15, "days_ahead": 7},
        }
    )


async def seed_demo(session: AsyncSession) -> bool:
    """Create the demo store and its staff. Returns False when it exists already."""
    if await session.scalar(select(Store.id).where(Store.slug == DEMO_SLUG)):
        return False
    users = UserService(session)
    store = await users.create_store(name="Corner Café", slug=DEMO_SLUG, currency="EUR", timezone="Europe/Berlin")
    store.settings = {**store.settings, "hours": demo_hours(datetime.now(UTC).date())}
    for account in DEMO_ACCOUNTS:
        user = await users.create_user(email=account.email, name=account.name, password=DEMO_PASSWORD)
        await users.add_member(store, user, account.role)
    await seed_catalog(session, store)
    return True


async def seed_catalog(session: AsyncSession, store: Store) -> None:
    """The café's demo catalog with stock on hand (see app/catalog/demo_data.py)."""
    bind_store(session, store.id)
    catalog = CatalogService(session, store.id)
    categories = {}
    for position, category in enumerate(CATEGORIES):
        categories[category.slug] = await catalog.ensure_category(
            category.slug, category.name, category.description, position
        )
    location = await InventoryService(session, store.id).default_location()
    for item in PRODUCTS:
        product = Product(
            slug=item.slug,
            name=item.name,
            description=item.description,
            category_id=categories[item.category].id,
            tax_class=item.tax_class,
            image=item.image,
            variants=[
                Variant(
                    store_id=store.id,
                    sku=v.sku,
                    options=dict(v.options),
                    price_minor=v.price_minor,
                    compare_at_minor=v.compare_at_minor,
                    weight_grams=v.weight_grams,
                    position=i,
                )
                for i, v in enumerate(item.variants)
            ],
        )
        session.add(product)
        await session.flush()
        for variant, demo in zip(product.variants, item.variants, strict=True):
            session.add(StockLevel(variant_id=variant.id, location_id=location.id, on_hand=demo.stock, reserved=0))
    await session.flush()


# The orders `till up` puts on a new demo store, so the board, the order list and the register's shift are not empty
# on first start. Each goes through the path a real one takes, and "Demo seed" moves it along the board.
# Web orders: shopper e-mail, what they bought (SKU → quantity), and how far staff have moved it.
DEMO_ORDERS = (
    ("lena@example.com", {"BAK-CROIS": 2, "BAK-PAIN-CHOC": 1}, "placed"),
    ("jonas@example.com", {"BAK-CHEESECAKE": 1, "BAK-COOKIE": 2}, "accepted"),
    ("mia@example.com", {"BEAN-HOUSE-250-ES": 1}, "in_progress"),
    ("tom@example.com", {"BAK-BANANA-SLICE": 2, "TEA-CHAI-100": 1}, "ready"),
    ("ada@example.com", {"BEAN-ETH-250-FI": 1, "BAK-FRANZ": 1}, "completed"),
)
# Counter sales on the register DEMO_REGISTER, in a shift Cara Cashier opened with DEMO_FLOAT_MINOR: how each was
# paid (cash with change, or a card on the sandbox's simulated reader), what was sold, and how far it was moved.
DEMO_REGISTER = "Counter 1"
DEMO_FLOAT_MINOR = 10_000
DEMO_POS_SALES = (
    ("cash", {"DRK-FLAT-OAT": 1, "BAK-CROIS": 1}, "completed"),
    ("card", {"DRK-CAPP-LRG-WHOLE": 2, "BAK-CARDA": 2}, "ready"),
)
# Orders from a sales channel (a marketplace), sent signed to the ingestion endpoint's service: the channel's
# order id, the customer, what they bought, whether the channel took the money, and how far it was moved.
DEMO_CHANNEL = "Demo marketplace"
DEMO_CHANNEL_ORDERS = (
    ("market-demo-1001", "noah@example.com", {"BEAN-COL-250-FI": 1, "GEAR-FILTERS-02-100": 1}, "paid", "accepted"),
    ("market-demo-1002", "emma@example.com", {"TEA-EARL-100": 2}, "unpaid", "placed"),
)
_STEPS = ("placed", "accepted", "in_progress", "ready", "completed")
_DEMO_IDS = uuid.UUID("0193a5c0-7e1d-7c3a-9d2b-5eed0de0a001")  # namespace of the counter sales' client ids


@dataclass(frozen=True)
class _Seeding:
    """What every part of the order seed shares: the connections, the demo store and its variants by SKU."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    store: Store
    variants: dict[str, uuid.UUID]

    async def advance(self, order_id: uuid.UUID, status: str) -> None:
        """Move a placed order along the board to ``status``, one step at a time, as "Demo seed"."""
        from app.orders.services import Actor, OrderService
        from app.orders.states import Axis

        actor = Actor(Role.OWNER, "Demo seed", "system")
        async with self.sessions() as session, session.begin():
            orders = OrderService(session, self.store.id)
            for step in _STEPS[1 : _STEPS.index(status) + 1]:
                await orders.change_status(order_id, Axis.ORDER, step, actor=actor)


async def seed_demo_orders(settings: Settings) -> list[str]:
    """The demo store's orders (see DEMO_ORDERS, DEMO_POS_SALES, DEMO_CHANNEL_ORDERS), each made the way a real one
    is. Returns "#number status" for each order placed (with "(POS)" or "(ingested)" for those channels). One that
    exists already is not made again, so a second run adds nothing; one that cannot be made now (no pickup slot
    free, a SKU not in the catalog, a demo account gone) is left out."""
    from redis.asyncio import Redis

    from app.core.db import create_engine, dispose, session_maker
    from app.core.encryption import install_keyring
    from app.core.logging import configure_logging

    assert settings.database_url and settings.redis_url
    configure_logging(settings.log_level)  # as the web app will (the sales and the channel's orders log)
    install_keyring(settings)  # the shift's offline key and the ingestion secret, as the web app will read them
    engine = create_engine(settings.database_url, pool_size=2)
    redis = Redis.from_url(settings.redis_url)
    sessions = session_maker(engine)
    try:
        async with sessions() as session:
            store = await session.scalar(select(Store).where(Store.slug == DEMO_SLUG))
            assert store is not None
            bind_store(session, store.id)
            variants = {v.sku: v.id for v in await session.scalars(select(Variant))}
        seeding = _Seeding(settings, engine, sessions, redis, store, variants)
        return [*await _web_orders(seeding), *await _counter_sales(seeding), *await _channel_orders(seeding)]
    finally:
        await redis.aclose()
        await dispose(engine)


async def _web_orders(seeding: _Seeding) -> list[str]:
    """Through the real checkout: cart, quote, the saga with the sandbox's test Visa."""
    from app.cart.services import CartService
    from app.checkout.quotes import QuoteRequest, QuoteService
    from app.checkout.saga import CheckoutSaga, PaymentInput
    from app.core import pg
    from app.core.errors import TillError
    from app.orders.models import Order
    from app.payments.provider import CardDetails
    from app.payments.registry import provider_for

    store, sessions = seeding.store, seeding.sessions
    async with sessions() as session:
        bind_store(session, store.id)
        done = set(await session.scalars(select(Order.email).where(Order.channel == "web")))
    placed: list[str] = []
    for email, lines, status in DEMO_ORDERS:
        if email in done or any(sku not in seeding.variants for sku in lines):
            continue
        try:
            async with sessions() as session, session.begin():
                carts = CartService(session, store.id, store.currency)
                cart = await carts.get_or_create(None)
                for sku, quantity in lines.items():
                    await carts.add(cart, seeding.variants[sku], quantity)
                snapshot = await QuoteService(await pg.writer(session), store).create(
                    QuoteRequest(cart_token=cart.token, email=email)
                )
            saga = CheckoutSaga(sessions, store, provider_for(store, seeding.redis, seeding.settings))
            card = CardDetails("4242424242424242", 12, datetime.now(UTC).year + 3, "123")
            outcome = await saga.complete(
                snapshot.id, f"demo-{snapshot.id}", PaymentInput(card=card), fingerprint="demo"
            )
        except TillError:
            continue
        if outcome.order is None:
            continue
        await seeding.advance(outcome.order.id, status)
        placed.append(f"#{outcome.order.number} {status}")
    return placed


async def _counter_sales(seeding: _Seeding) -> list[str]:
    """Through the POS's own services, as the tablet's calls reach them: the register a manager adds, the shift
    the cashier opens with a counted float, the ticket priced as ``POST /pos/api/price`` prices it, a card
    payment on the sandbox's simulated reader (paired for it, approved, then set aside again), and the sale as
    ``POST /pos/api/sales`` makes it. A sale is named by a client id fixed per store, so a repeat finds it."""
    from app.core import pg
    from app.core.errors import TillError
    from app.pos.catalog import price_now
    from app.pos.registers import RegisterService
    from app.pos.sales import PosSales, stored_sales
    from app.pos.schemas import PriceIn, PriceLineIn
    from app.pos.shifts import ShiftService
    from app.stores.models import User
    from app.stores.services import staff_principal

    store, sessions = seeding.store, seeding.sessions
    client_ids = [uuid.uuid5(_DEMO_IDS, f"{store.id}:pos:{i}") for i in range(len(DEMO_POS_SALES))]
    emails = {account.role: account.email for account in DEMO_ACCOUNTS}
    async with sessions() as session:
        users = {u.email: u for u in await session.scalars(select(User).where(User.email.in_(emails.values())))}
    manager, cashier = users.get(emails[Role.MANAGER]), users.get(emails[Role.CASHIER])
    if manager is None or cashier is None:
        return []
    manager_p = staff_principal(store, manager, Role.MANAGER)
    cashier_p = staff_principal(store, cashier, Role.CASHIER)
    try:
        async with sessions() as session, session.begin():
            registers = RegisterService(session, store.id)
            row = next(
                (r for r in await registers.rows(include_inactive=True) if r.register.name == DEMO_REGISTER), None
            )
            register = row.register if row else await registers.create(DEMO_REGISTER, actor=manager_p)
            register_id, active, has_reader = register.id, register.is_active, bool(row and row.reader)
            shift_id = row.open_shift.id if row and row.open_shift else None
        async with pg.connection(seeding.engine) as conn:
            done = await stored_sales(conn, store.id, register_id, client_ids)
    except TillError:
        return []
    placed: list[str] = []
    for sequence, (client_id, (tender, lines, status)) in enumerate(zip(client_ids, DEMO_POS_SALES, strict=True), 1):
        if not active or client_id in done or any(sku not in seeding.variants for sku in lines):
            continue
        if tender == "card" and has_reader:  # the simulated customer can only tap a reader the seed paired
            continue
        try:
            if shift_id is None:
                async with sessions() as session, session.begin():
                    opened = await ShiftService(session, store.id).open(register_id, DEMO_FLOAT_MINOR, actor=cashier_p)
                    shift_id = opened.shift.id
            ticket = PriceIn(lines=[PriceLineIn(seeding.variants[sku], quantity) for sku, quantity in lines.items()])
            priced = await price_now(seeding.engine, store, ticket)
            total = int(priced["total_minor"])
            if tender == "cash":  # the next 5-euro note up: change to give
                tenders = [{"kind": "cash", "amount_minor": total, "tendered_minor": (total // 500 + 1) * 500}]
            else:
                tenders = [{"kind": "card", "amount_minor": total, "reader_payment_id": None}]
            sale = {
                "client_sale_id": str(client_id),
                "register_id": str(register_id),
                "shift_id": str(shift_id),
                "sequence": sequence,
                "sold_at": datetime.now(UTC).isoformat(),
                "lines": [
                    {
                        "variant_id": line["variant_id"],
                        "quantity": line["quantity"],
                        "unit_price_minor": line["unit_price_minor"],
                    }
                    for line in priced["lines"]
                ],
                "total_minor": total,
                "tenders": tenders,
            }
            sales = PosSales(seeding.engine, sessions, seeding.redis, store, cashier_p)
            if tender == "card":
                answer = await _on_the_reader(seeding, register_id, client_id, total, sales, sale)
            else:
                answer = (await sales.sell(sale))[1]
        except TillError:
            continue
        if answer is None:
            continue
        await seeding.advance(answer.order_id, status)
        placed.append(f"#{answer.order_number} {status} (POS)")
    return placed


async def _on_the_reader(
    seeding: _Seeding,
    register_id: uuid.UUID,
    client_id: uuid.UUID,
    total: int,
    sales: PosSales,
    sale: dict[str, Any],
) -> SaleAnswer | None:
    """Pay ``sale`` by card on a sandbox reader paired to the register for it (the customer taps "Approve"), then
    sell it with that payment as its tender; the reader is set aside afterwards (its payment stays in the
    ledger), so the register has no reader that no device plays. None when the store's reader is not the
    sandbox's or the card was not approved."""
    from app.core.errors import TillError
    from app.orders.services import Actor
    from app.payments.registry import provider_for
    from app.pos.readers import reader_for
    from app.pos.readers.sandbox import SandboxReader, new_device_secret, reader_ref_for
    from app.pos.readers.services import ReaderPayments

    reader = reader_for(provider_for(seeding.store, seeding.redis, seeding.settings), seeding.redis)
    if not isinstance(reader, SandboxReader):
        return None
    payments = ReaderPayments(seeding.sessions, seeding.store, reader)
    device = reader_ref_for(new_device_secret())
    code = await reader.pairing_code(device)
    await payments.pair(register_id, code=code.code, label="Demo reader")
    try:
        card, _ = await payments.start(register_id=register_id, client_sale_id=client_id, amount_minor=total)
        await reader.present(device, "approve")
        card = await payments.get(card.payment.id)
        if card.payment.status != "approved":
            return None
        sale["tenders"][0]["reader_payment_id"] = str(card.payment.id)
        try:
            return (await sales.sell(sale))[1]
        except TillError:  # no sale took the card payment: its money goes back
            await payments.void(card.payment.id, actor=Actor(Role.OWNER, "Demo seed", "system"))
            raise
    finally:
        await payments.unpair(register_id)


async def _channel_orders(seeding: _Seeding) -> list[str]:
    """Through the ingestion service behind ``POST /webhooks/orders/ingest``, as a connected sales channel sends
    them: an API token issued for DEMO_CHANNEL and the store's ingestion secret (made as the owner's page makes it,
    so its hint shows there), each body signed and priced by the store's tax rules. The token is revoked
    afterwards (nobody holds it); a store that has a secret already is left alone (the seed cannot sign)."""
    from app.catalog.services import CatalogService
    from app.ingestion.credentials import IngestionSecretService
    from app.ingestion.models import IngestedOrder
    from app.ingestion.services import OrderIngestion
    from app.payments.signing import sign
    from app.stores.commerce import CommerceSettings
    from app.stores.services import ApiTokenService
    from app.tax.providers import BuiltinTax, TaxableLine

    store, sessions = seeding.store, seeding.sessions
    async with sessions() as session:
        bind_store(session, store.id)
        done = set(await session.scalars(select(IngestedOrder.client_order_id)))
        todo = [o for o in DEMO_CHANNEL_ORDERS if o[0] not in done and all(s in seeding.variants for s in o[2])]
        catalog = await CatalogService(session, store.id).variants_by_sku(sorted({s for o in todo for s in o[2]}))
    if not todo:
        return []
    async with sessions() as session, session.begin():
        secrets_ = IngestionSecretService(session, store.id)
        if await secrets_.current() is not None:
            return []
        secret = await secrets_.rotate(updated_by="Demo seed")
        token, raw_token = await ApiTokenService.for_store(session, store.id).issue(
            name=DEMO_CHANNEL, role=Role.STAFF, created_by=None
        )
    commerce = CommerceSettings.of(store.settings)
    tax = BuiltinTax.from_settings(store.settings, store.currency)
    ingestion = OrderIngestion(seeding.engine, sessions)
    placed: list[str] = []
    try:
        for client_order_id, email, lines, payment, status in todo:
            items = [(sku, quantity, catalog[sku].price_minor) for sku, quantity in lines.items()]
            taxed = tax.quote(
                [
                    TaxableLine(str(i), Money(quantity * price, store.currency), catalog[sku].product.tax_class)
                    for i, (sku, quantity, price) in enumerate(items)
                ],
                country=commerce.country,
                prices_include_tax=commerce.prices_include_tax,
            )
            subtotal, tax_minor = sum(q * p for _, q, p in items), taxed.total_tax.amount_minor
            body = {
                "client_order_id": client_order_id,
                "store": store.slug,
                "customer": {"email": email, "name": email.split("@")[0].title(), "phone": ""},
                "items": [{"sku": sku, "quantity": q, "unit_price_minor": p} for sku, q, p in items],
                "totals": {
                    "currency": store.currency,
                    "subtotal_minor": subtotal,
                    "shipping_minor": 0,
                    "tax_minor": tax_minor,
                    "total_minor": subtotal + (0 if commerce.prices_include_tax else tax_minor),
                },
                "payment": {"status": payment},
                "fulfilment_method": "pickup",
            }
            raw = json.dumps(body).encode()
            answer = await ingestion.ingest(
                raw, authorization=f"Bearer {raw_token}", signature=sign(raw, secret, int(time.time())), remote_addr=""
            )
            if answer.status != 201:
                continue
            order = answer.body["order"]
            await seeding.advance(uuid.UUID(order["id"]), status)
            placed.append(f"#{order['number']} {status} (ingested)")
    finally:
        async with sessions() as session, session.begin():
            await ApiTokenService.for_store(session, store.id).revoke(token.id)
    return placed
