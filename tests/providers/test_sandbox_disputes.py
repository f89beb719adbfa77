"""The sandbox's disputes: open against a captured payment, evidence recorded, closed won or lost, each
step a signed Stripe-shaped event the webhook pipeline verifies like any other."""

from __future__ import annotations

import json
import uuid

import pytest

from app.core.money import Money
from app.payments.capabilities import DisputeEvidence, SupportsDisputes
from app.payments.provider import AuthorizeRequest, CardDetails, PaymentError
from app.payments.sandbox import SandboxProvider
from app.payments.signing import InvalidSignature

EUR = "EUR"


async def _captured(sandbox: SandboxProvider, amount: int = 3990) -> str:
    card = CardDetails("4242424242424242", 12, 2099, "123")
    result = await sandbox.authorize(AuthorizeRequest(Money(amount, EUR), uuid.uuid4().hex, card=card, capture=True))
    return result.provider_ref


async def test_open_dispute_is_a_signed_stripe_shaped_event(sandbox: SandboxProvider) -> None:
    assert isinstance(sandbox, SupportsDisputes)
    ref = await _captured(sandbox)
    body, header = await sandbox.open_dispute(ref, Money(3990, EUR), "fraudulent", created=1_764_000_000)
    event = sandbox.verify_webhook(body, header)
    obj = event.data["object"]
    assert event.type == "charge.dispute.created" and event.created == 1_764_000_000
    assert obj["object"] == "dispute" and obj["id"].startswith("dp_")
    assert (obj["amount"], obj["currency"], obj["reason"], obj["status"]) == (
        3990,
        "eur",
        "fraudulent",
        "needs_response",
    )
    assert obj["payment_intent"] == ref and obj["charge"].startswith("ch_")
    assert obj["evidence_details"]["due_by"] == 1_764_000_000 + 7 * 24 * 3600
    # Opening it again is the same dispute and the same event (a resend is deduplicated by its id).
    again, _ = await sandbox.open_dispute(ref, Money(3990, EUR), "fraudulent", created=1_764_000_000)
    assert json.loads(again)["id"] == event.id
    with pytest.raises(InvalidSignature):
        sandbox.verify_webhook(body.replace(b"3990", b"3991"), header)


async def test_only_captured_money_can_be_disputed(sandbox: SandboxProvider) -> None:
    ref = await _captured(sandbox, 1000)
    with pytest.raises(PaymentError) as too_much:
        await sandbox.open_dispute(ref, Money(1001, EUR))
    assert too_much.value.code == "amount_too_large"
    with pytest.raises(PaymentError) as unknown:
        await sandbox.open_dispute("sb_nothing", Money(100, EUR))
    assert unknown.value.code == "unknown_payment"
    with pytest.raises(PaymentError):
        await sandbox.open_dispute(ref, Money(100, EUR), "because")


async def test_evidence_is_recorded_and_submitting_moves_it_under_review_once(sandbox: SandboxProvider) -> None:
    ref = await _captured(sandbox)
    dispute_id = json.loads((await sandbox.open_dispute(ref, Money(3990, EUR)))[0])["data"]["object"]["id"]
    evidence = DisputeEvidence(customer_email_address="ann@example.com", uncategorized_text="Delivered on 3 Dec.")

    staged = await sandbox.submit_dispute_evidence(dispute_id, evidence, submit=False)
    assert (staged.status, staged.submitted) == ("needs_response", False)
    sent = await sandbox.submit_dispute_evidence(dispute_id, evidence)
    replay = await sandbox.submit_dispute_evidence(dispute_id, evidence)
    assert sent == replay and (sent.status, sent.submitted) == ("under_review", True)
    state = await sandbox.get_dispute(dispute_id)
    assert state["evidence"] == evidence.fields() and state["evidence_details"]["submission_count"] == 1
    with pytest.raises(PaymentError) as changed:
        await sandbox.submit_dispute_evidence(dispute_id, DisputeEvidence(uncategorized_text="something else"))
    assert changed.value.code == "invalid_state"
    with pytest.raises(PaymentError) as missing:
        await sandbox.submit_dispute_evidence("dp_nothing", evidence)
    assert missing.value.code == "unknown_dispute"


async def test_closing_gives_a_closed_event_once_per_outcome(sandbox: SandboxProvider) -> None:
    ref = await _captured(sandbox)
    dispute_id = json.loads((await sandbox.open_dispute(ref, Money(3990, EUR)))[0])["data"]["object"]["id"]
    body, header = await sandbox.close_dispute(dispute_id, won=False, created=1_764_100_000)
    event = sandbox.verify_webhook(body, header)
    assert (event.type, event.created, event.data["object"]["status"]) == (
        "charge.dispute.closed",
        1_764_100_000,
        "lost",
    )
    again, _ = await sandbox.close_dispute(dispute_id, won=False)
    assert json.loads(again)["id"] == event.id
    with pytest.raises(PaymentError):
        await sandbox.close_dispute(dispute_id, won=True)
    updated = sandbox.verify_webhook(*await sandbox.dispute_event(dispute_id, "charge.dispute.updated"))
    assert updated.type == "charge.dispute.updated" and updated.data["object"]["status"] == "lost"
