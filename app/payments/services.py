"""The payments ledger: intents and append-only transactions, written only here."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.money import Money
from app.core.tenancy import bind_store
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.provider import PaymentProvider, PaymentStatus, ProviderResult, RefundRequest, VoidRequest

TxKind = Literal["authorize", "capture", "void", "refund", "action"]


def order_payment_status(intent: PaymentIntent) -> str:
    """The order's payment axis, derived from the intent's running totals."""
    return _payment_axis(intent.status, intent.amount_minor, intent.captured_minor, intent.refunded_minor)


def _payment_axis(status: str, amount: int, captured: int, refunded: int) -> str:
    if status in ("declined", "failed"):
        return "unpaid"
    if status == "voided":
        return "voided"
    if refunded and refunded >= captured:
        return "refunded"
    if refunded:
        return "partially_refunded"
    if captured >= amount:
        return "paid"
    if captured:
        return "partially_paid"
    return "authorized" if status == "authorized" else "unpaid"


class PaymentLedger:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        bind_store(session, store_id)

    def open_intent(
        self,
        *,
        snapshot_id: uuid.UUID,
        provider: str,
        capture_method: str,
        result: ProviderResult,
        idempotency_key: str,
        order_id: uuid.UUID | None = None,
    ) -> PaymentIntent:
        intent = PaymentIntent(
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

    def record(self, intent: PaymentIntent, kind: TxKind, result: ProviderResult, idempotency_key: str) -> None:
        """Append a transaction and bring the intent's status and totals up to the provider's answer."""
        intent.status = str(result.status)
        intent.captured_minor = result.captured.amount_minor
        intent.refunded_minor = result.refunded.amount_minor
        self.session.add(self._transaction(intent.id, kind, result, idempotency_key))

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
    def _transaction(intent_id: uuid.UUID, kind: TxKind, result: ProviderResult, key: str) -> PaymentTransaction:
        amount = _amount_of(kind, result)
        return PaymentTransaction(
            intent_id=intent_id,
            kind=kind,
            status=str(result.status),
            amount_minor=amount.amount_minor,
            currency=amount.currency,
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
                                     card_brand, card_last4, version, created_at, updated_at)
        SELECT :intent_new_id, :store_id, :intent_snapshot_id, :order_id, :intent_provider, :pay_ref, :pay_status,
               :intent_capture_method, :pay_currency, :pay_amount, :pay_captured, :pay_refunded, :pay_brand,
               :pay_last4, 1, now(), now()
        FROM go WHERE go.intent_id IS NULL
        RETURNING id
    ), intent_followed AS (
        UPDATE payment_intents i
        SET status = :pay_status, captured_minor = :pay_captured, refunded_minor = :pay_refunded,
            order_id = :order_id, version = i.version + 1, updated_at = now()
        FROM go WHERE i.id = go.intent_id AND i.store_id = :store_id
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
) -> dict[str, Any]:
    """Parameters of RECORD_PAYMENT_CTES (``intent_new_id`` is the id a newly opened intent gets)."""
    return {
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


def _amount_of(kind: TxKind, result: ProviderResult) -> Money:
    """What a transaction of ``kind`` moved: captures and refunds carry their totals, the rest the amount."""
    return {"capture": result.captured, "refund": result.refunded}.get(kind, result.amount)


def payment_status_of(result: ProviderResult) -> str:
    """The order's payment axis straight from a provider answer (the same rules as the intent's)."""
    return _payment_axis(
        str(result.status), result.amount.amount_minor, result.captured.amount_minor, result.refunded.amount_minor
    )


def is_success(result: ProviderResult) -> bool:
    return result.status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED)
