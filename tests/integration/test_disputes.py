"""Disputes: the sandbox's dispute webhooks applied to the store (order axis, record, timeline, ledger), in
any order and any number of times; the staff pages' evidence pack, notes, files and submission."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.errors import Conflict
from app.core.money import Money
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.templating import money_filter
from app.core.tenancy import system_scope
from app.disputes.evidence import MAX_FILE_BYTES, evidence_dir
from app.disputes.models import Dispute, DisputeEvidence
from app.disputes.services import apply_dispute_event
from app.orders.models import Order
from app.orders.services import Actor, OrderService
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.operations import PaymentOperations
from app.payments.provider import WebhookEvent
from app.payments.registry import sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.payments.sandbox._disputes import DISPUTE_FEE_MINOR
from app.payments.services import ledger_totals
from app.stores.models import Store
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.shop import Shop
from tests.integration.test_payment_operations import _consistent, _ledger, _order, _paid_order

Sessions = async_sessionmaker[AsyncSession]
T0 = int(time.time()) - 3600
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"x" * 64


def _sandbox(redis: Redis, settings: Settings) -> SandboxProvider:
    return SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))


def _event(sandbox: SandboxProvider, signed: tuple[bytes, str]) -> WebhookEvent:
    """What the webhook pipeline hands over: the verified event."""
    return sandbox.verify_webhook(*signed)


async def _disputed(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, *, reason: str = "fraudulent"
) -> tuple[Shop, Order, PaymentIntent, SandboxProvider, WebhookEvent]:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    sandbox = _sandbox(redis, settings)
    created = _event(
        sandbox,
        await sandbox.open_dispute(intent.provider_ref, Money(intent.captured_minor, "EUR"), reason, created=T0),
    )
    return shop, order, intent, sandbox, created


async def _dispute(sessions: Sessions, intent_id: uuid.UUID) -> Dispute:
    async with sessions() as session:
        system_scope(session)
        dispute = await session.scalar(select(Dispute).where(Dispute.intent_id == intent_id))
    assert dispute is not None
    return dispute


async def _events(sessions: Sessions, store: Store, kind: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        system_scope(session)
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.store_id == store.id, OutboxEvent.type == kind)
            .order_by(OutboxEvent.id)
        )
        return [row.payload for row in rows]


async def _timeline(sessions: Sessions, store: Store, order: Order) -> list[str]:
    async with sessions() as session:
        entries = await OrderService(session, store.id).audit(order.id)
    return [e.summary for e in entries]


def _state(
    dispute: Dispute, intent: PaymentIntent, order: Order, ledger_kinds: list[tuple[str, str, int]]
) -> tuple[Any, ...]:
    """Everything an event may change, for comparing two histories."""
    return (
        dispute.status, dispute.outcome, dispute.amount_minor, dispute.reason, dispute.due_by, dispute.opened_at,
        dispute.closed_at, dispute.last_event_at, intent.disputed_minor, intent.dispute_lost_minor,
        dispute.fee_minor, intent.dispute_fees_minor, order.payment_status, ledger_kinds,
    )  # fmt: skip


async def _snapshot(sessions: Sessions, intent_id: uuid.UUID) -> tuple[Any, ...]:
    intent = await _consistent(sessions, intent_id)
    assert intent.order_id is not None
    ledger = [(tx.kind, tx.status, tx.amount_minor) for tx in await _ledger(sessions, intent_id)]
    return _state(await _dispute(sessions, intent_id), intent, await _order(sessions, intent.order_id), ledger)


# -- events ------------------------------------------------------------------------------------------


async def test_a_created_dispute_marks_the_order_disputed_with_a_record_and_a_timeline_entry(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
    dispute = await apply_dispute_event(sessions, shop.store, sandbox, created)

    assert dispute is not None
    assert (dispute.status, dispute.reason, dispute.amount_minor, dispute.currency) == (
        "needs_response", "fraudulent", intent.captured_minor, "EUR",
    )  # fmt: skip
    assert dispute.due_by is not None and int(dispute.due_by.timestamp()) == T0 + 7 * 24 * 3600
    assert dispute.order_id == order.id
    after = await _consistent(sessions, intent.id)
    assert after.disputed_minor == intent.captured_minor
    # The bank's fee, withdrawn with the amount (the sandbox's balance transaction, as Stripe's), counts at once.
    assert dispute.fee_minor == after.dispute_fees_minor == DISPUTE_FEE_MINOR
    assert (await _order(sessions, order.id)).payment_status == "disputed"
    amount = f"{intent.captured_minor / 100:.2f} EUR"
    assert any(
        s.startswith(f"dispute opened: fraudulent, {amount}, respond by ")
        for s in await _timeline(sessions, shop.store, order)
    )
    (changed,) = await _events(sessions, shop.store, "order.payment_changed")
    assert (changed["from"], changed["to"], changed["operation"]) == ("paid", "disputed", "dispute")
    assert len(await _events(sessions, shop.store, "dispute.opened")) == 1


async def test_updates_apply_newest_first_and_an_old_one_arriving_late_changes_nothing(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
    obj = dict(created.data["object"])
    await apply_dispute_event(sessions, shop.store, sandbox, created)
    later = WebhookEvent("evt_u2", "charge.dispute.updated", T0 + 200, {"object": {**obj, "status": "under_review"}})
    stale = WebhookEvent(
        "evt_u1",
        "charge.dispute.updated",
        T0 + 100,
        {"object": {**obj, "status": "needs_response", "reason": "general"}},
    )
    await apply_dispute_event(sessions, shop.store, sandbox, later)
    await apply_dispute_event(sessions, shop.store, sandbox, stale)

    dispute = await _dispute(sessions, intent.id)
    assert (dispute.status, dispute.reason) == ("under_review", "fraudulent")
    assert (await _order(sessions, order.id)).payment_status == "disputed"


async def test_a_lost_dispute_appends_a_ledger_row_and_the_order_is_charged_back(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
    await apply_dispute_event(sessions, shop.store, sandbox, created)
    operations = PaymentOperations(sessions, shop.store.id, sandbox)
    actor = Actor(Role.MANAGER, "Mia", "staff")
    with pytest.raises(Conflict, match="dispute is open"):
        await operations.refund(order.id, intent.id, amount_minor=100, reason="goodwill", actor=actor)

    dispute_id = (await _dispute(sessions, intent.id)).provider_dispute_id
    closed = _event(sandbox, await sandbox.close_dispute(dispute_id, won=False, created=T0 + 500))
    await apply_dispute_event(sessions, shop.store, sandbox, closed)

    dispute = await _dispute(sessions, intent.id)
    assert (dispute.status, dispute.outcome) == ("lost", "lost") and dispute.ledger_tx_id is not None
    rows = await _ledger(sessions, intent.id)
    (loss,) = [tx for tx in rows if tx.kind == "dispute"]
    assert (loss.status, loss.amount_minor, loss.provider_ref) == ("lost", intent.captured_minor, dispute_id)
    after = await _consistent(sessions, intent.id)
    assert ledger_totals(rows).disputed_lost_minor == after.dispute_lost_minor == intent.captured_minor
    assert after.disputed_minor == 0
    assert (await _order(sessions, order.id)).payment_status == "charged_back"
    summaries = await _timeline(sessions, shop.store, order)
    assert "dispute lost" in summaries and f"charged back {intent.captured_minor / 100:.2f} EUR" in summaries
    # Nothing is left to refund: the dispute took it.
    with pytest.raises(Conflict, match="Nothing captured"):
        await operations.refund(order.id, intent.id, amount_minor=None, reason="goodwill", actor=actor)
    assert [e["to"] for e in await _events(sessions, shop.store, "order.payment_changed")] == [
        "disputed",
        "charged_back",
    ]


async def test_a_won_dispute_gives_the_order_back_its_status_from_the_ledger(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
    await apply_dispute_event(sessions, shop.store, sandbox, created)
    dispute_id = (await _dispute(sessions, intent.id)).provider_dispute_id
    await apply_dispute_event(
        sessions, shop.store, sandbox, _event(sandbox, await sandbox.close_dispute(dispute_id, won=True))
    )

    dispute = await _dispute(sessions, intent.id)
    assert (dispute.status, dispute.outcome, dispute.ledger_tx_id) == ("won", "won", None)
    assert (await _order(sessions, order.id)).payment_status == "paid"
    assert [tx.kind for tx in await _ledger(sessions, intent.id)].count("dispute") == 0
    assert "dispute won" in await _timeline(sessions, shop.store, order)
    # The amount came back; the bank kept its fee (the closing event's balance transactions say so).
    assert dispute.fee_minor == (await _consistent(sessions, intent.id)).dispute_fees_minor == DISPUTE_FEE_MINOR


@pytest.mark.parametrize("won", [False, True])
async def test_closed_before_created_and_duplicates_end_in_the_same_state(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, won: bool
) -> None:
    ends = []
    for order_of_events in ("in_order", "reversed_with_duplicates"):
        shop, _, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
        dispute_id = str(created.data["object"]["id"])
        closed = _event(sandbox, await sandbox.close_dispute(dispute_id, won=won, created=T0 + 900))
        sequence = [created, closed] if order_of_events == "in_order" else [closed, closed, created, created, closed]
        for event in sequence:
            await apply_dispute_event(sessions, shop.store, sandbox, event)
        ends.append(await _snapshot(sessions, intent.id))
    assert ends[0] == ends[1]
    assert ends[0][0] == ("won" if won else "lost")


async def test_a_burst_of_identical_deliveries_in_parallel_has_one_effect(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
    dispute_id = str(created.data["object"]["id"])
    closed = _event(sandbox, await sandbox.close_dispute(dispute_id, won=False, created=T0 + 900))
    await asyncio.gather(*[apply_dispute_event(sessions, shop.store, sandbox, e) for e in [created, closed] * 10])

    async with sessions() as session:
        system_scope(session)
        assert len(list(await session.scalars(select(Dispute).where(Dispute.intent_id == intent.id)))) == 1
    assert [tx.kind for tx in await _ledger(sessions, intent.id)].count("dispute") == 1
    assert (await _consistent(sessions, intent.id)).dispute_lost_minor == intent.captured_minor
    assert (await _order(sessions, order.id)).payment_status == "charged_back"


async def test_a_dispute_about_no_payment_of_the_store_is_ignored(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, _, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
    other = await world.store()
    assert await apply_dispute_event(sessions, other, sandbox, created) is None
    foreign = {**created.data["object"], "payment_intent": "sb_nobody"}
    assert (
        await apply_dispute_event(
            sessions, shop.store, sandbox, WebhookEvent("evt_x", created.type, T0, {"object": foreign})
        )
        is None
    )
    with pytest.raises(ValueError, match="unknown status"):
        bad = {**created.data["object"], "status": "pondering"}
        await apply_dispute_event(
            sessions, shop.store, sandbox, WebhookEvent("evt_y", created.type, T0, {"object": bad})
        )
    async with sessions() as session:
        system_scope(session)
        assert (await session.scalar(select(Dispute).where(Dispute.intent_id == intent.id))) is None


async def test_a_dispute_naming_only_its_charge_finds_the_payment_by_the_ledger(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    """Stripe names the charge; the ledger's raw copy of the PaymentIntent has its latest_charge."""
    shop, _, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
    async with sessions() as session, session.begin():
        system_scope(session)
        tx = await session.scalar(select(PaymentTransaction).where(PaymentTransaction.intent_id == intent.id))
        assert tx is not None
        charge = "ch_only_" + uuid.uuid4().hex[:8]
        row = PaymentTransaction(store_id=shop.store.id, intent_id=intent.id, kind="action", status="captured",
                                 amount_minor=0, currency="EUR", provider_ref=intent.provider_ref,
                                 idempotency_key="k", raw={"latest_charge": charge}, error_code="note")  # fmt: skip
        session.add(row)
    obj = {**created.data["object"], "payment_intent": None, "charge": charge}
    dispute = await apply_dispute_event(
        sessions, shop.store, sandbox, WebhookEvent("evt_c", created.type, T0, {"object": obj})
    )
    assert dispute is not None and dispute.intent_id == intent.id


@pytest.mark.parametrize("disputed_share", [1.0, 0.25])
async def test_a_lost_dispute_leaves_the_net_and_cancelling_gives_back_only_what_it_left(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: Sessions,
    redis: Redis,
    settings: Settings,
    disputed_share: float,
) -> None:
    """A lost dispute already took its amount back: cancelling refunds only the rest (none for a whole one)."""
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    sandbox = _sandbox(redis, settings)
    disputed = int(intent.captured_minor * disputed_share)
    created = _event(sandbox, await sandbox.open_dispute(intent.provider_ref, Money(disputed, "EUR"), "fraudulent"))
    await apply_dispute_event(sessions, shop.store, sandbox, created)
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    url = f"/api/v1/orders/{order.id}/status"

    while_open = await client.patch(url, json={"status": "cancelled", "reason": "Out of beans"}, headers=manager)
    assert while_open.status_code == 409 and "dispute is open" in while_open.json()["detail"]
    assert (await _order(sessions, order.id)).status != "cancelled"
    assert [tx.kind for tx in await _ledger(sessions, intent.id)] == ["authorize"]

    dispute_id = str(created.data["object"]["id"])
    await apply_dispute_event(
        sessions, shop.store, sandbox, _event(sandbox, await sandbox.close_dispute(dispute_id, won=False))
    )
    fees = (await client.get(f"/api/v1/admin/orders/{order.id}/payments/{intent.id}/fees", headers=manager)).json()
    assert fees["dispute_lost_minor"] == disputed
    assert fees["dispute_fee_minor"] == DISPUTE_FEE_MINOR
    kept_fees = fees["processing_fee_minor"] + fees["platform_fee_minor"] - fees["platform_fee_refunded_minor"]
    kept_fees += fees["dispute_fee_minor"]
    assert fees["net_minor"] == intent.captured_minor - disputed - kept_fees  # the chargeback left the store
    await sign_in(client, (await world.staff(shop.store, Role.MANAGER)).email)
    panel = (await client.get(f"/staff/orders/{order.id}")).text
    assert f'<dd data-testid="dispute-lost">{money_filter(disputed, "EUR")}</dd>' in panel
    assert f'<dd data-testid="net">{money_filter(fees["net_minor"], "EUR")}</dd>' in panel
    assert f'<td class="num" data-testid="dispute-fee">{money_filter(DISPUTE_FEE_MINOR, "EUR")}</td>' in panel
    cancelled = await client.patch(url, json={"status": "cancelled", "reason": "Out of beans"}, headers=manager)
    assert cancelled.status_code == 200, cancelled.text
    kept = intent.captured_minor - disputed
    after = await _consistent(sessions, intent.id)
    assert (after.dispute_lost_minor, after.refunded_minor) == (disputed, kept)
    assert (await sandbox.get_transaction(intent.provider_ref)).refunded.amount_minor == kept
    kinds = [tx.kind for tx in await _ledger(sessions, intent.id)]
    assert kinds == (["authorize", "dispute", "refund"] if kept else ["authorize", "dispute"])
    assert cancelled.json()["status"] == "cancelled"


# -- pages -------------------------------------------------------------------------------------------


async def _manager_on_dispute(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> tuple[Shop, Order, PaymentIntent, SandboxProvider, Dispute, str]:
    shop, order, intent, sandbox, created = await _disputed(world, sessions, redis, settings)
    dispute = await apply_dispute_event(sessions, shop.store, sandbox, created)
    assert dispute is not None
    await sign_in(client, (await world.staff(shop.store, Role.MANAGER)).email)
    page = await client.get(f"/staff/disputes/{dispute.id}")
    assert page.status_code == 200, page.text
    return shop, order, intent, sandbox, dispute, csrf_from(page.text)


async def _evidence(sessions: Sessions, dispute: Dispute) -> list[DisputeEvidence]:
    async with sessions() as session:
        system_scope(session)
        return list(await session.scalars(select(DisputeEvidence).where(DisputeEvidence.dispute_id == dispute.id)))


async def test_the_dispute_page_assembles_the_evidence_pack(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    _, order, _, _, dispute, _ = await _manager_on_dispute(client, world, sessions, redis, settings)
    html = (await client.get(f"/staff/disputes/{dispute.id}")).text
    for part in (
        'data-testid="receipt"',
        'data-testid="customer"',
        'data-testid="fulfilment"',
        'data-testid="timeline"',
    ):
        assert part in html
    assert "Enamel mug" in html and order.email in html and "dispute opened: fraudulent" in html
    assert 'data-kind="authorize"' in html  # the ledger
    assert f'data-testid="dispute-fee">+ {money_filter(DISPUTE_FEE_MINOR, "EUR")} bank fee<' in html
    listing = await client.get("/staff/disputes?status=open")
    assert (
        listing.status_code == 200
        and f"/staff/disputes/{dispute.id}" in listing.text
        and f"#{order.number}" in listing.text
    )
    assert f"/staff/disputes/{dispute.id}" not in (await client.get("/staff/disputes?status=won")).text
    order_page = (await client.get(f"/staff/orders/{order.id}")).text
    assert 'data-testid="dispute-link"' in order_page
    hop = await client.get(f"/staff/orders/{order.id}".replace("orders", "disputes/for-order"))
    assert hop.status_code == 303 and hop.headers["location"] == f"/staff/disputes/{dispute.id}"


async def test_notes_and_files_are_added_and_a_bad_file_gets_an_inline_error_and_writes_nothing(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, _, _, _, dispute, csrf = await _manager_on_dispute(client, world, sessions, redis, settings)
    base = f"/staff/disputes/{dispute.id}"
    folder = evidence_dir(settings.data_dir, shop.store.id)

    empty = await client.post(f"{base}/notes", data={"note": "  ", "_csrf_token": csrf})
    assert empty.status_code == 422 and 'data-testid="note-error"' in empty.text
    note = await client.post(f"{base}/notes", data={"note": "Signed for by A. Customer on 3 Dec.", "_csrf_token": csrf})
    assert note.status_code == 303

    def upload(name: str, content: bytes, content_type: str) -> Any:
        return client.post(f"{base}/files", data={"_csrf_token": csrf}, files={"file": (name, content, content_type)})

    wrong = await upload("invoice.html", b"<html><script>alert(1)</script>", "application/pdf")
    assert wrong.status_code == 422 and "PDF, PNG or JPEG" in wrong.text and 'data-testid="file-error"' in wrong.text
    big = await upload("huge.pdf", b"%PDF-" + b"0" * MAX_FILE_BYTES, "application/pdf")
    assert big.status_code == 422 and "At most 5 MB" in big.text
    assert not folder.exists() or not any(folder.iterdir())
    assert [e.kind for e in await _evidence(sessions, dispute)] == ["note"]

    good = await upload("../../etc/delivery proof.png", PNG, "text/plain")
    assert good.status_code == 303
    files = [e for e in await _evidence(sessions, dispute) if e.kind == "file"]
    assert [(f.original_name, f.content_type, f.size_bytes) for f in files] == [
        ("delivery proof.png", "image/png", len(PNG))
    ]
    stored = list(folder.iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == PNG and stored[0].name == files[0].file_path
    download = await client.get(f"{base}/evidence/{files[0].id}")
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png" and "attachment" in download.headers["content-disposition"]
    page = (await client.get(base)).text
    assert "Signed for by A. Customer" in page and "delivery proof.png" in page


async def test_submitting_sends_the_pack_to_the_sandbox_and_makes_it_read_only(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    _, order, _, sandbox, dispute, csrf = await _manager_on_dispute(client, world, sessions, redis, settings)
    base = f"/staff/disputes/{dispute.id}"
    nothing = await client.post(f"{base}/submit", data={"_csrf_token": csrf})
    assert nothing.status_code == 422 and "Add at least one note or file" in nothing.text
    await client.post(f"{base}/notes", data={"note": "Delivered, photo attached.", "_csrf_token": csrf})
    await client.post(f"{base}/files", data={"_csrf_token": csrf}, files={"file": ("pod.pdf", PDF, "application/pdf")})

    sent = await client.post(f"{base}/submit", data={"_csrf_token": csrf})
    assert sent.status_code == 303
    remote = await sandbox.get_dispute(dispute.provider_dispute_id)
    assert remote["status"] == "under_review" and remote["evidence_details"]["submission_count"] == 1
    text = remote["evidence"]["uncategorized_text"]
    assert "Delivered, photo attached." in text and "pod.pdf" in text and f"order #{order.number}" in text
    assert remote["evidence"]["customer_email_address"] == order.email

    record = await _dispute(sessions, dispute.intent_id)
    assert record.evidence_submitted_at is not None and record.status == "under_review" and record.submitted_by
    page = (await client.get(base)).text
    assert 'data-testid="submitted"' in page and 'data-testid="note-form"' not in page
    assert "dispute evidence submitted" in page
    late = await client.post(f"{base}/notes", data={"note": "one more", "_csrf_token": csrf})
    assert late.status_code == 409 and "read-only" in late.text
    again = await client.post(f"{base}/submit", data={"_csrf_token": csrf})
    assert again.status_code == 409
    assert (await sandbox.get_dispute(dispute.provider_dispute_id))["evidence_details"]["submission_count"] == 1


async def test_only_managers_see_disputes(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, _, _, sandbox, created = await _disputed(world, sessions, redis, settings)
    dispute = await apply_dispute_event(sessions, shop.store, sandbox, created)
    assert dispute is not None
    await sign_in(client, (await world.staff(shop.store, Role.STAFF)).email)
    for url in (
        "/staff/disputes",
        f"/staff/disputes/{dispute.id}",
        f"/staff/disputes/{dispute.id}/evidence/{uuid.uuid4()}",
    ):
        assert (await client.get(url)).status_code == 403, url
    assert "/staff/disputes" not in (await client.get("/staff")).text


async def test_another_stores_manager_cannot_reach_the_dispute_or_its_files(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, _, _, sandbox, created = await _disputed(world, sessions, redis, settings)
    dispute = await apply_dispute_event(sessions, shop.store, sandbox, created)
    assert dispute is not None
    other = await world.store()
    await sign_in(client, (await world.staff(other, Role.OWNER)).email)
    assert (await client.get(f"/staff/disputes/{dispute.id}")).status_code == 404
    assert f"{dispute.id}" not in (await client.get("/staff/disputes")).text
