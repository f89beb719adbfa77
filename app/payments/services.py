"""The payments ledger: intents and append-only transactions, written only here."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.money import Money
from app.core.tenancy import bind_store
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.provider import PaymentProvider, PaymentStatus, ProviderResult, RefundRequest, VoidRequest

TxKind = Literal["authorize", "capture", "void", "refund", "action", "dispute"]


def order_payment_status(intent: PaymentIntent) -> str:
    """The order's payment axis, derived from the intent's running totals."""
    return _payment_axis(
        intent.status,
        intent.amount_minor,
        intent.captured_minor,
        intent.refunded_minor,
        disputed=intent.disputed_minor or 0,
        dispute_lost=intent.dispute_lost_minor or 0,
    )


def _payment_axis(
    status: str, amount: int, captured: int, refunded: int, *, disputed: int = 0, dispute_lost: int = 0
) -> str:
    """``disputed`` while a dispute is open (app/disputes); ``charged_back`` once one was lost (the money left
    the store); a won or withdrawn dispute leaves the axis as the rest of the ledger says."""
    if disputed:
        return "disputed"
    if dispute_lost:
        return "charged_back"
    if status in ("declined", "failed"):
        return "unpaid"
    if status == "voided":
        return "voided"
    if refunded and refunded >= captured:
        return "refunded"
    if refunded:
        return "partially_refunded"
    if captured >= amount or (captured and status in ("captured", "refunded")):
        return "paid"  # in full, or in part with the rest released (a capture is final)
    if captured:
        return "partially_paid"  # captured in part, the rest still authorised
    return "authorized" if status == "authorized" else "unpaid"


@dataclass(frozen=True)
class PaymentFees:
    """What a new payment costs (app/payments/fees.py) and the Connect account it is made for."""

    processing_fee_minor: int = 0
    application_fee_minor: int = 0
    connected_account: str = ""


class PaymentLedger:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        bind_store(session, store_id)

    def open_intent(
        self,
        *,
        snapshot_id: uuid.UUID | None,
        provider: str,
        capture_method: str,
        result: ProviderResult,
        idempotency_key: str,
        order_id: uuid.UUID | None = None,
        fees: PaymentFees | None = None,
    ) -> PaymentIntent:
        """A new intent with its ``authorize`` row. ``snapshot_id`` is None for a card at a POS reader (no quote)."""
        fees = fees or PaymentFees()
        intent = PaymentIntent(
            processing_fee_minor=fees.processing_fee_minor,
            application_fee_minor=fees.application_fee_minor,
            connected_account=fees.connected_account,
            id=uuid.uuid4(),
            snapshot_id=snapshot_id,
            order_id=order_id,
            provider=provider,
            provider_ref=result.provider_ref,
            status=str(result.status),
            capture_method=capture_method,
            currency=result.amount.currency,
            amount_minor=result.amount.amount_minor,
            captured_minor=result.captured.amount_minor,
            refunded_minor=result.refunded.amount_minor,
            card_brand=result.brand,
            card_last4=result.last4,
        )
        self.session.add(intent)
        self.session.add(self._transaction(intent.id, "authorize", result, idempotency_key))
        return intent

    def record(
        self,
        intent: PaymentIntent,
        kind: TxKind,
        result: ProviderResult,
        idempotency_key: str,
        *,
        tx_id: uuid.UUID | None = None,
        reason: str = "",
        actor: str = "",
    ) -> PaymentTransaction:
        """Append a transaction and bring the intent's status and totals up to the provider's answer.

        The row's amount is what this step moved (a capture's or refund's own amount, not the running
        total), so the ledger's sums give the intent's totals (:func:`ledger_totals`)."""
        tx = self._transaction(intent.id, kind, result, idempotency_key, moved=_moved(kind, intent, result))
        if tx_id is not None:
            tx.id = tx_id
        tx.reason, tx.actor = reason[:500], actor[:120]
        intent.status = str(result.status)
        intent.captured_minor = result.captured.amount_minor
        intent.refunded_minor = result.refunded.amount_minor
        self.session.add(tx)
        return tx

    async def has_entry(self, intent: PaymentIntent, idempotency_key: str) -> bool:
        """Whether the intent's ledger already holds the row written under ``idempotency_key``."""
        found = await self.session.scalar(
            select(PaymentTransaction.id).where(
                PaymentTransaction.intent_id == intent.id, PaymentTransaction.idempotency_key == idempotency_key
            )
        )
        return found is not None

    def record_failure(
        self,
        intent: PaymentIntent,
        kind: TxKind,
        *,
        tx_id: uuid.UUID,
        key: str,
        amount_minor: int,
        code: str,
        message: str,
        reason: str = "",
        actor: str = "",
    ) -> PaymentTransaction:
        """Append a refused or failed step: nothing moved, the intent is unchanged."""
        tx = PaymentTransaction(
            id=tx_id,
            intent_id=intent.id,
            kind=kind,
            status="failed",
            amount_minor=amount_minor,
            currency=intent.currency,
            provider_ref=intent.provider_ref,
            idempotency_key=key,
            error_code=code[:40],
            raw={"message": message[:500]},
            reason=reason[:500],
            actor=actor[:120],
        )
        self.session.add(tx)
        return tx

    def follow_disputes(self, intent: PaymentIntent, *, disputed_minor: int, fees_minor: int) -> None:
        """The amount under open disputes on this payment and the provider's fees for all of them (app/disputes
        keeps both, the intent's row locked)."""
        intent.disputed_minor = disputed_minor
        intent.dispute_fees_minor = fees_minor

    def record_dispute_loss(
        self, intent: PaymentIntent, *, dispute_ref: str, amount_minor: int, currency: str, raw: dict[str, Any]
    ) -> PaymentTransaction:
        """Append the ``dispute`` row of a lost dispute: its amount left the store. Once per dispute (a unique
        index on the key ``dispute:<provider id>``); the caller checks under the intent's row lock first."""
        tx = PaymentTransaction(
            intent_id=intent.id,
            kind="dispute",
            status="lost",
            amount_minor=amount_minor,
            currency=currency,
            provider_ref=dispute_ref,
            idempotency_key=f"dispute:{dispute_ref}",
            raw=raw,
            reason="dispute lost",
        )
        intent.dispute_lost_minor = (intent.dispute_lost_minor or 0) + amount_minor
        self.session.add(tx)
        return tx

    async def of_order(self, order_id: uuid.UUID) -> list[tuple[PaymentIntent, list[PaymentTransaction]]]:
        """An order's intents, oldest first, each with its transactions in the order they happened."""
        intents = (
            await self.session.scalars(
                select(PaymentIntent).where(PaymentIntent.order_id == order_id).order_by(PaymentIntent.created_at)
            )
        ).all()
        rows = (
            await self.session.scalars(
                select(PaymentTransaction)
                .where(PaymentTransaction.intent_id.in_([i.id for i in intents]))
                .order_by(PaymentTransaction.created_at, PaymentTransaction.id)
            )
        ).all()
        return [(intent, [tx for tx in rows if tx.intent_id == intent.id]) for intent in intents]

    @staticmethod
    def _transaction(
        intent_id: uuid.UUID, kind: TxKind, result: ProviderResult, key: str, *, moved: int | None = None
    ) -> PaymentTransaction:
        return PaymentTransaction(
            intent_id=intent_id,
            kind=kind,
            status=str(result.status),
            amount_minor=result.amount.amount_minor if moved is None else moved,
            currency=result.amount.currency,
            provider_ref=result.provider_ref,
            idempotency_key=key,
            error_code=result.decline_code,
            raw=dict(result.raw),
        )


# A fragment of a composed statement (ADR 0003): runs only when the CTE ``go`` has a row, whose column
# ``intent_id`` names the intent to bring up to the provider's answer (an ``action`` row), or is NULL to
# open one (with its ``authorize`` row). Parameters: :store_id, :order_id and ``payment_params``'.
RECORD_PAYMENT_CTES = """
    intent_opened AS (
        INSERT INTO payment_intents (id, store_id, snapshot_id, order_id, provider, provider_ref, status,
                                     capture_method, currency, amount_minor, captured_minor, refunded_minor,
                                     card_brand, card_last4, version, created_at, updated_at, processing_fee_minor,
                                     application_fee_minor, connected_account)
        SELECT :intent_new_id, :store_id, :intent_snapshot_id, :order_id, :intent_provider, :pay_ref, :pay_status,
               :intent_capture_method, :pay_currency, :pay_amount, :pay_captured, :pay_refunded, :pay_brand,
               :pay_last4, 1, now(), now(), :intent_processing_fee, :intent_application_fee, :intent_connected_account
        FROM go WHERE go.intent_id IS NULL
        RETURNING id
    ), intent_followed AS (
        UPDATE payment_intents i
        SET status = :pay_status, captured_minor = :pay_captured, refunded_minor = :pay_refunded,
            order_id = :order_id, version = i.version + 1, updated_at = now()
        -- by primary key: written as a join with go, the plan read every intent of the store on each checkout
        WHERE i.id = (SELECT intent_id FROM go) AND i.store_id = :store_id
        RETURNING i.id
    ), payment_recorded AS (
        INSERT INTO payment_transactions (id, store_id, intent_id, kind, status, amount_minor, currency, provider_ref,
                                          idempotency_key, error_code, raw, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, x.id, x.kind, :pay_status, :pay_amount, :pay_currency, :pay_ref,
               :pay_key, :pay_error, :pay_raw::jsonb, now(), now()
        FROM (SELECT id, 'authorize' AS kind FROM intent_opened UNION ALL SELECT id, 'action' FROM intent_followed) x
    )
"""


def payment_params(
    *,
    snapshot_id: uuid.UUID,
    provider: str,
    capture_method: str,
    result: ProviderResult,
    idempotency_key: str,
    fees: PaymentFees | None = None,
) -> dict[str, Any]:
    """Parameters of RECORD_PAYMENT_CTES (``intent_new_id`` is the id a newly opened intent gets)."""
    fees = fees or PaymentFees()
    return {
        "intent_processing_fee": fees.processing_fee_minor,
        "intent_application_fee": fees.application_fee_minor,
        "intent_connected_account": fees.connected_account,
        "intent_new_id": uuid.uuid4(),
        "intent_snapshot_id": snapshot_id,
        "intent_provider": provider,
        "intent_capture_method": capture_method,
        "pay_ref": result.provider_ref,
        "pay_status": str(result.status),
        "pay_currency": result.amount.currency,
        "pay_amount": result.amount.amount_minor,
        "pay_captured": result.captured.amount_minor,
        "pay_refunded": result.refunded.amount_minor,
        "pay_brand": result.brand,
        "pay_last4": result.last4,
        "pay_key": idempotency_key,
        "pay_error": result.decline_code,
        "pay_raw": pg.jsonb(dict(result.raw)),
    }


async def give_money_back(
    provider: PaymentProvider,
    *,
    provider_ref: str,
    currency: str,
    captured_minor: int,
    refunded_minor: int,
    key_prefix: str,
    reason: str,
) -> tuple[TxKind, str, ProviderResult]:
    """Refund what is captured and not yet refunded, else void the authorisation. Keyed
    ``<key_prefix>:refund`` / ``:void``, so a retry reaches the same provider result."""
    if captured_minor > refunded_minor:
        key = f"{key_prefix}:refund"
        amount = Money(captured_minor - refunded_minor, currency)
        refund = RefundRequest(provider_ref=provider_ref, amount=amount, idempotency_key=key, reason=reason)
        return "refund", key, await provider.refund(refund)
    key = f"{key_prefix}:void"
    return "void", key, await provider.void(VoidRequest(provider_ref=provider_ref, idempotency_key=key))


def _moved(kind: TxKind, before: PaymentIntent, result: ProviderResult) -> int:
    """What one step moved: a capture or refund the change in its running total; a void what it released."""
    if kind == "capture":
        return result.captured.amount_minor - before.captured_minor
    if kind == "refund":
        return result.refunded.amount_minor - before.refunded_minor
    if kind == "void":
        return before.amount_minor - before.captured_minor
    return result.amount.amount_minor


@dataclass(frozen=True)
class LedgerTotals:
    authorized_minor: int
    captured_minor: int
    refunded_minor: int
    voided: bool
    disputed_lost_minor: int = 0  # taken back by lost disputes (``dispute`` rows)


_SUCCEEDED = ("authorized", "captured", "refunded")


def ledger_totals(transactions: Iterable[PaymentTransaction]) -> LedgerTotals:
    """An intent's totals summed from its ledger rows alone (oldest first); they must equal the intent's.

    An authorisation (or the step that finished one: a 3-D Secure challenge, a delayed success) that
    succeeded sets the authorised amount, and captured it too when its status says so; captures and
    refunds add what they moved; a lost dispute's row adds to what disputes took back; failed rows move nothing."""
    authorized = captured = refunded = lost = 0
    voided = False
    for tx in transactions:
        if tx.status == "failed" or tx.error_code:
            continue
        if tx.kind in ("authorize", "action") and tx.status in _SUCCEEDED:
            authorized = tx.amount_minor
            captured = tx.amount_minor if tx.status == "captured" else captured
        elif tx.kind == "capture":
            captured += tx.amount_minor
        elif tx.kind == "refund":
            refunded += tx.amount_minor
        elif tx.kind == "void" and tx.status == "voided":
            voided = True
        elif tx.kind == "dispute" and tx.status == "lost":
            lost += tx.amount_minor
    return LedgerTotals(authorized, captured, refunded, voided, lost)


def payment_status_of(result: ProviderResult) -> str:
    """The order's payment axis straight from a provider answer (the same rules as the intent's)."""
    return _payment_axis(
        str(result.status), result.amount.amount_minor, result.captured.amount_minor, result.refunded.amount_minor
    )


def is_success(result: ProviderResult) -> bool:
    return result.status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED)
