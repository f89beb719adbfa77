"""Card readers at the POS: pairing the sandbox's simulated reader by the code its page shows, card payments on
it through /pos/api/card-payments (approve → captured in the payments ledger; decline, time-out and cancel take no
money), voiding an approved payment once, a busy reader, roles and tenancy — and the same service driving a Stripe
Terminal reader against recorded Stripe answers.

The reader page is a second copy of the app (another device); both share the database, Redis and one clock that
the tests move by hand (``app.state.clock``): a payment left waiting times out without anyone sleeping.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.main import create_app
from app.orders.services import Actor
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.providers import StripeProvider
from app.payments.services import ledger_totals
from app.pos.models import CardReader as ReaderRow
from app.pos.models import PosTender, ReaderPayment, Register, Shift
from app.pos.readers import StripeTerminalReader
from app.pos.readers.services import WAIT_LIMIT, ReaderPayments
from app.stores.models import Store
from tests.integration.conftest import StaffMember, World, sign_in
from tests.integration.shop import make_shop, place_order
from tests.providers.test_stripe_provider import FixtureHTTPClient

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
API = "/pos/api/card-payments"
CODE = re.compile(r'data-testid="pairing-code">(\d{3}) (\d{3})<')


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(app: Litestar) -> Clock:
    clock = Clock()
    app.state.clock = clock
    return clock


@pytest.fixture
async def device(settings: Settings, clock: Clock) -> AsyncIterator[Client]:
    """The phone that plays the card reader: another copy of the app, the same clock."""
    reader_app = create_app(settings)
    reader_app.state.clock = clock
    async with AsyncTestClient(app=reader_app, base_url="http://testserver.local") as client:
        client.follow_redirects = False
        yield client


async def _register(sessions: Sessions, store: Store, name: str = "Counter 1") -> uuid.UUID:
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        register = Register(name=name)
        session.add(register)
        await session.flush()
        return register.id


async def _signed_in(client: Client, member: StaffMember) -> dict[str, str]:
    """Sign in; the headers a tablet's JSON call carries (the CSRF cookie's token)."""
    client.cookies.clear()
    await sign_in(client, member.email)
    await client.get("/staff")
    return {"x-csrftoken": client.cookies["till_csrf"]}


async def _code(device: Client) -> str:
    page = await device.get("/pos/reader")
    assert page.status_code == 200, page.text
    match = CODE.search(page.text)
    assert match, "the reader shows no pairing code"
    return match.group(1) + match.group(2)


async def _pair(client: Client, headers: dict[str, str], register_id: uuid.UUID, code: str) -> Any:
    return await client.post(
        f"/staff/registers/{register_id}/reader",
        data={"code": code, "label": "Front reader", "_csrf_token": headers["x-csrftoken"]},
    )


async def _press(device: Client, outcome: str) -> str:
    screen = await device.post(
        "/pos/reader/press",
        data={"outcome": outcome},
        headers={"x-csrftoken": device.cookies["till_csrf"], "hx-request": "true"},
    )
    assert screen.status_code == 200, screen.text
    return screen.text


async def _start(client: Client, headers: dict[str, str], register_id: uuid.UUID, amount: int = 2450) -> Any:
    return await client.post(
        API,
        json={"register_id": str(register_id), "client_sale_id": str(uuid.uuid4()), "amount_minor": amount},
        headers=headers,
    )


async def _ledger(sessions: Sessions, reader_payment_id: str) -> tuple[PaymentIntent | None, list[PaymentTransaction]]:
    async with sessions() as session:
        system_scope(session)
        payment = await session.get(ReaderPayment, uuid.UUID(reader_payment_id))
        assert payment is not None
        if payment.payment_intent_id is None:
            return None, []
        intent = await session.get(PaymentIntent, payment.payment_intent_id)
        rows = await session.scalars(
            select(PaymentTransaction)
            .where(PaymentTransaction.intent_id == payment.payment_intent_id)
            .order_by(PaymentTransaction.created_at, PaymentTransaction.id)
        )
        return intent, list(rows)


@dataclass
class Counter:
    store: Store
    manager: StaffMember
    cashier: StaffMember
    register_id: uuid.UUID
    headers: dict[str, str]  # the cashier's, signed in on ``client``


@pytest.fixture
async def counter(client: Client, device: Client, world: World, sessions: Sessions) -> Counter:
    """A store whose register has the sandbox reader paired; the cashier is signed in on ``client``."""
    store = await world.store()
    manager = await world.staff(store, Role.MANAGER)
    cashier = await world.staff(store, Role.CASHIER)
    register_id = await _register(sessions, store)
    headers = await _signed_in(client, manager)
    paired = await _pair(client, headers, register_id, await _code(device))
    assert paired.status_code == 303, paired.text
    return Counter(store, manager, cashier, register_id, await _signed_in(client, cashier))


# -- pairing ----------------------------------------------------------------------------------------------


async def test_a_manager_pairs_the_reader_by_the_code_it_shows(
    client: Client, device: Client, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    manager = await world.staff(store, Role.MANAGER)
    register_id = await _register(sessions, store, "Counter 2")
    headers = await _signed_in(client, manager)
    page = await client.get(f"/staff/registers/{register_id}/reader")
    assert page.status_code == 200
    assert 'data-testid="no-reader"' in page.text

    code = await _code(device)
    assert await _code(device) == code  # the same code until it expires
    paired = await _pair(client, headers, register_id, code[:3] + " " + code[3:])
    assert paired.status_code == 303
    page = await client.get(f"/staff/registers/{register_id}/reader")
    assert "Front reader" in page.text and "is paired with this register" in page.text

    screen = await device.get("/pos/reader/screen")
    assert 'data-testid="reader-ready"' in screen.text and "Counter 2" in screen.text
    async with sessions() as session:
        system_scope(session)
        (row,) = (await session.scalars(select(ReaderRow).where(ReaderRow.store_id == store.id))).all()
    assert (row.provider, row.register_id, row.label, row.status) == ("sandbox", register_id, "Front reader", "online")
    assert row.provider_reader_id.startswith("tmr_sb_")
    assert device.cookies["till_sandbox_reader"] not in row.provider_reader_id  # the secret stays on the device

    again = await _pair(client, headers, register_id, code)  # a code works once
    assert again.status_code == 422
    assert "No reader shows this code" in again.text


async def test_a_wrong_or_expired_code_is_refused(
    client: Client, device: Client, world: World, sessions: Sessions, clock: Clock
) -> None:
    store = await world.store()
    manager = await world.staff(store, Role.MANAGER)
    register_id = await _register(sessions, store)
    headers = await _signed_in(client, manager)
    code = await _code(device)

    wrong = await _pair(client, headers, register_id, "000000" if code != "000000" else "111111")
    assert wrong.status_code == 422
    assert 'aria-invalid="true"' in wrong.text and "No reader shows this code" in wrong.text
    assert (await _pair(client, headers, register_id, "")).status_code == 422

    clock.advance(11 * 60)
    expired = await _pair(client, headers, register_id, code)
    assert expired.status_code == 422
    assert "This code has expired" in expired.text
    async with sessions() as session:
        system_scope(session)
        assert (await session.scalars(select(ReaderRow).where(ReaderRow.store_id == store.id))).all() == []
    assert await _code(device) != code  # the reader shows a new one


async def test_only_managers_pair_readers(client: Client, world: World, sessions: Sessions) -> None:
    store = await world.store()
    cashier = await world.staff(store, Role.CASHIER)
    register_id = await _register(sessions, store)
    await _signed_in(client, cashier)
    assert (await client.get(f"/staff/registers/{register_id}/reader")).status_code == 403


# -- card payments: approve, decline, time out, cancel ------------------------------------------------------


async def test_approve_captures_and_the_ledger_holds_it_like_a_web_payment(
    client: Client, device: Client, counter: Counter, sessions: Sessions
) -> None:
    started = await _start(client, counter.headers, counter.register_id)
    assert started.status_code == 201, started.text
    body = started.json()
    assert (body["status"], body["amount_minor"], body["currency"], body["reader"]["label"]) == (
        "waiting",
        2450,
        "EUR",
        "Front reader",
    )
    screen = await device.get("/pos/reader/screen")
    assert 'data-testid="reader-amount">€24.50<' in screen.text

    assert 'data-testid="reader-outcome">Approved<' in await _press(device, "approve")
    shown = (await client.get(f"{API}/{body['id']}", headers=counter.headers)).json()
    assert (shown["status"], shown["card_brand"], shown["card_last4"]) == ("approved", "visa", "4242")

    intent, rows = await _ledger(sessions, body["id"])
    assert intent is not None
    assert (intent.snapshot_id, intent.order_id, intent.provider, intent.capture_method) == (
        None,
        None,
        "sandbox",
        "manual",
    )
    assert (intent.status, intent.amount_minor, intent.captured_minor, intent.refunded_minor) == (
        "captured",
        2450,
        2450,
        0,
    )
    assert intent.processing_fee_minor == 62  # 1.5 % + 0.25, like a web payment on the sandbox
    assert [(r.kind, r.status, r.amount_minor) for r in rows] == [
        ("authorize", "authorized", 2450),
        ("capture", "captured", 2450),
    ]
    assert rows[1].idempotency_key == f"pos-card:{body['id']}:capture"
    totals = ledger_totals(rows)
    assert (totals.authorized_minor, totals.captured_minor, totals.refunded_minor) == (2450, 2450, 0)

    assert 'data-testid="reader-outcome">Approved<' in await _press(device, "approve")  # a double tap: nothing more
    assert len((await _ledger(sessions, body["id"]))[1]) == 2


@pytest.mark.parametrize(
    ("how", "status"),
    [
        ("decline", "declined"),
        ("timeout", "timed_out"),
        ("cancel", "canceled"),
        ("cashier_cancels", "canceled"),
        ("time_passes", "timed_out"),
    ],
)
async def test_decline_timeout_and_cancel_take_no_money(
    client: Client, device: Client, counter: Counter, sessions: Sessions, clock: Clock, how: str, status: str
) -> None:
    started = (await _start(client, counter.headers, counter.register_id)).json()
    if how == "cashier_cancels":
        answer = await client.post(f"{API}/{started['id']}/cancel", headers=counter.headers)
        assert answer.status_code == 200, answer.text
    elif how == "time_passes":
        clock.advance(WAIT_LIMIT.total_seconds() - 1)
        assert (await client.get(f"{API}/{started['id']}", headers=counter.headers)).json()["status"] == "waiting"
        clock.advance(1)
    else:
        await _press(device, how)
    shown = (await client.get(f"{API}/{started['id']}", headers=counter.headers)).json()
    assert shown["status"] == status
    assert shown["message"]

    intent, rows = await _ledger(sessions, started["id"])
    assert not any(r.kind == "capture" for r in rows)
    if how == "decline":  # the card reached the provider: its declined authorisation is on the ledger
        assert intent is not None
        assert (intent.status, intent.captured_minor) == ("declined", 0)
        assert [(r.kind, r.status, r.error_code) for r in rows] == [("authorize", "declined", "card_declined")]
        assert shown["card_last4"] == "0002"
    else:  # no card was presented: nothing reached the provider
        assert intent is None
    assert (await client.post(f"{API}/{started['id']}/void", headers=counter.headers)).status_code == 409
    assert (await client.post(f"{API}/{started['id']}/cancel", headers=counter.headers)).json()["status"] == status

    after = await _start(client, counter.headers, counter.register_id)  # the reader is free again
    assert after.status_code == 201


async def test_a_late_payment_frees_the_reader_for_the_next_one(client: Client, counter: Counter, clock: Clock) -> None:
    first = (await _start(client, counter.headers, counter.register_id)).json()
    clock.advance(WAIT_LIMIT.total_seconds() + 5)
    second = await _start(client, counter.headers, counter.register_id)  # nobody read the first: starting does
    assert second.status_code == 201, second.text
    assert (await client.get(f"{API}/{first['id']}", headers=counter.headers)).json()["status"] == "timed_out"


async def test_a_busy_reader_is_409_and_the_same_sale_again_is_the_same_payment(
    client: Client, counter: Counter, sessions: Sessions
) -> None:
    sale = str(uuid.uuid4())
    body = {"register_id": str(counter.register_id), "client_sale_id": sale, "amount_minor": 990}
    first = await client.post(API, json=body, headers=counter.headers)
    assert first.status_code == 201
    repeat = await client.post(API, json=body, headers=counter.headers)  # a retried request
    assert (repeat.status_code, repeat.json()["id"]) == (200, first.json()["id"])

    busy = await _start(client, counter.headers, counter.register_id)
    assert busy.status_code == 409
    assert busy.headers["content-type"].startswith("application/problem+json")
    assert "busy" in busy.json()["detail"]

    racing = await asyncio.gather(*(_start(client, counter.headers, counter.register_id) for _ in range(4)))
    assert {r.status_code for r in racing} == {409}
    async with sessions() as session:
        system_scope(session)
        waiting = await session.scalars(select(ReaderPayment).where(ReaderPayment.status == "waiting"))
        assert len(waiting.all()) == 1


async def test_a_register_without_a_reader_is_409(
    client: Client, world: World, sessions: Sessions, counter: Counter
) -> None:
    bare = await _register(sessions, counter.store, "Counter 9")
    answer = await _start(client, counter.headers, bare)
    assert answer.status_code == 409
    assert "has no card reader" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount_minor": 0}, "amount_minor"),
        ({"amount_minor": -100}, "amount_minor"),
        ({"amount_minor": 10_000_001}, "amount_minor"),
        ({"amount_minor": "12.50"}, "amount_minor"),
    ],
)
async def test_the_amount_must_be_sane(client: Client, counter: Counter, body: dict[str, Any], field: str) -> None:
    payload = {"register_id": str(counter.register_id), "client_sale_id": str(uuid.uuid4()), **body}
    answer = await client.post(API, json=payload, headers=counter.headers)
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in str(answer.json().get("fields", {})) or field in answer.json()["detail"]


# -- void ----------------------------------------------------------------------------------------------------


async def _approved(client: Client, device: Client, counter: Counter) -> str:
    started = (await _start(client, counter.headers, counter.register_id)).json()
    await _press(device, "approve")
    assert (await client.get(f"{API}/{started['id']}", headers=counter.headers)).json()["status"] == "approved"
    return str(started["id"])


async def test_void_gives_an_approved_payment_back_once(
    client: Client, device: Client, counter: Counter, sessions: Sessions
) -> None:
    payment_id = await _approved(client, device, counter)
    voided = await asyncio.gather(
        *(client.post(f"{API}/{payment_id}/void", headers=counter.headers) for _ in range(3)),
        return_exceptions=False,
    )
    assert {(r.status_code, r.json()["status"]) for r in voided} == {(200, "voided")}  # each reached the one refund
    again = await client.post(f"{API}/{payment_id}/void", headers=counter.headers)
    assert (again.status_code, again.json()["status"]) == (200, "voided")

    intent, rows = await _ledger(sessions, payment_id)
    assert intent is not None
    assert (intent.status, intent.captured_minor, intent.refunded_minor) == ("refunded", 2450, 2450)
    refunds = [r for r in rows if r.kind == "refund"]
    assert [(r.status, r.amount_minor, r.idempotency_key) for r in refunds] == [
        ("refunded", 2450, f"pos-card:{payment_id}:refund")
    ]
    assert ledger_totals(rows).refunded_minor == 2450
    screen = await device.get("/pos/reader/screen")
    assert "Voided" in screen.text


async def test_a_payment_used_by_a_sale_is_not_voided(
    client: Client, device: Client, counter: Counter, sessions: Sessions, redis: Redis, settings: Settings, world: World
) -> None:
    payment_id = await _approved(client, device, counter)
    shop = await make_shop(world)
    order = await place_order(sessions, shop, redis, settings)  # an order to hang the tender on (another store's
    async with sessions() as session, session.begin():  # rows are fine here: the check is on the tender alone)
        bind_store(session, counter.store.id)
        shift = Shift(
            register_id=counter.register_id,
            opened_at=datetime.now(UTC),
            opening_float_minor=0,
            offline_key_ciphertext="x",
            opened_by_id=None,
        )
        session.add(shift)
        await session.flush()
        session.add(
            PosTender(
                order_id=order.id,
                shift_id=shift.id,
                kind="card",
                amount_minor=2450,
                reader_payment_id=uuid.UUID(payment_id),
            )
        )
    refused = await client.post(f"{API}/{payment_id}/void", headers=counter.headers)
    assert refused.status_code == 409
    assert "completed sale" in refused.json()["detail"]
    intent, rows = await _ledger(sessions, payment_id)
    assert intent is not None and intent.refunded_minor == 0
    assert not any(r.kind in ("refund", "void") for r in rows)


# -- roles and tenancy ------------------------------------------------------------------------------------------


async def test_cashiers_start_cancel_and_read_and_need_the_csrf_header(client: Client, counter: Counter) -> None:
    started = await _start(client, counter.headers, counter.register_id)
    assert started.status_code == 201
    no_csrf = await client.post(f"{API}/{started.json()['id']}/cancel")
    assert no_csrf.status_code == 403
    assert (await client.post(f"{API}/{started.json()['id']}/cancel", headers=counter.headers)).status_code == 200
    client.cookies.clear()
    assert (await client.get(f"{API}/{started.json()['id']}")).status_code == 401


async def test_another_stores_staff_reach_none_of_it(
    client: Client, counter: Counter, world: World, sessions: Sessions
) -> None:
    started = (await _start(client, counter.headers, counter.register_id)).json()
    other = await world.store()
    owner = await world.staff(other, Role.OWNER)
    headers = await _signed_in(client, owner)

    for method, path in [
        ("GET", f"{API}/{started['id']}"),
        ("POST", f"{API}/{started['id']}/cancel"),
        ("POST", f"{API}/{started['id']}/void"),
        ("GET", f"/staff/registers/{counter.register_id}/reader"),
    ]:
        answer = await client.request(method, path, headers=headers)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await _start(client, headers, counter.register_id)).status_code == 404
    paired = await _pair(client, headers, counter.register_id, "123456")
    assert paired.status_code == 404

    headers = await _signed_in(client, counter.cashier)
    assert (await client.get(f"{API}/{started['id']}", headers=headers)).json()["status"] == "waiting"


async def test_the_reader_page_is_a_terminal_even_for_strangers(device: Client) -> None:
    page = await device.get("/pos/reader")
    assert page.status_code == 200
    assert 'hx-get="/pos/reader/screen"' in page.text and 'hx-trigger="every 1s"' in page.text
    assert "till_sandbox_reader" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    nothing = await _press(device, "approve")  # no payment waits: a no-op
    assert 'data-kind="pairing"' in nothing


# -- the same service on Stripe Terminal ------------------------------------------------------------------------


async def test_stripe_terminal_payment_lands_in_the_ledger(world: World, sessions: Sessions) -> None:
    """ReaderPayments driving StripeTerminalReader (recorded answers): start, approved on the reader, captured by
    the POS, then voided by a refund — the same ledger rows as the sandbox."""
    store = await world.store(currency="EUR")
    register_id = await _register(sessions, store)
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        session.add(
            ReaderRow(
                provider="stripe", provider_reader_id="tmr_FxTill0000000001", label="S700", register_id=register_id
            )
        )
    http = FixtureHTTPClient()
    pi = "/v1/payment_intents/pi_3QxTerm0000000000000001"
    http.route("POST", "/v1/payment_intents", "terminal_payment_intent_waiting")
    http.route("POST", "/v1/terminal/readers/tmr_FxTill0000000001/process_payment_intent", "terminal_reader_processing")
    http.route("GET", "/v1/terminal/readers/tmr_FxTill0000000001", "terminal_reader_processing")
    http.route("GET", pi, "terminal_payment_intent_waiting")
    provider = StripeProvider(
        "sk_test_fixture", webhook_secret="whsec_fixture", http_client=http, max_network_retries=0
    )
    payments = ReaderPayments(sessions, store, StripeTerminalReader(provider))

    card, created = await payments.start(register_id=register_id, client_sale_id=uuid.uuid4(), amount_minor=2450)
    assert created and card.payment.provider_ref == "pi_3QxTerm0000000000000001"
    assert (await payments.get(card.payment.id)).payment.status == "waiting"

    http.route("GET", pi, "terminal_payment_intent_requires_capture", "terminal_payment_intent_succeeded")
    http.route("POST", f"{pi}/capture", "terminal_payment_intent_succeeded")
    approved = await payments.get(card.payment.id)
    assert (approved.payment.status, approved.payment.card_brand, approved.payment.card_last4) == (
        "approved",
        "visa",
        "4242",
    )
    (capture,) = http.requests("POST", f"{pi}/capture")
    assert capture.headers["Idempotency-Key"] == f"pos-card:{card.payment.id}:capture"

    http.route("GET", pi, "terminal_payment_intent_succeeded", "terminal_payment_intent_refunded")
    http.route("POST", "/v1/refunds", "terminal_refund")
    voided = await payments.void(card.payment.id, actor=Actor(Role.CASHIER, "Cashier", "staff"))
    assert voided.payment.status == "voided"

    intent, rows = await _ledger(sessions, str(card.payment.id))
    assert intent is not None and (intent.provider, intent.snapshot_id) == ("stripe", None)
    assert [(r.kind, r.status, r.amount_minor) for r in rows] == [
        ("authorize", "authorized", 2450),
        ("capture", "captured", 2450),
        ("refund", "refunded", 2450),
    ]
