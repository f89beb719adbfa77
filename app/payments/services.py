"""The payments ledger: intents and append-only transactions, written only here."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.money import Money
from app.core.tenancy import bind_store
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.provider import PaymentStatus, ProviderResult

TxKind = Literal["authorize", "capture", "void", "refund", "action"]


def order_payment_status(intent: PaymentIntent) -> str:
    """The order's payment axis, derived from the intent's running totals."""
    if intent.status in ("declined", "failed"):
        return "unpaid"
    if intent.status == "voided":
        return "voided"
    if intent.refunded_minor and intent.refunded_minor >= intent.captured_minor:
        return "refunded"
    if intent.refunded_minor:
        return "partially_refunded"
    if intent.captured_minor >= intent.amount_minor:
        return "paid"
    if intent.captured_minor:
        return "partially_paid"
    return "authorized" if intent.status == "authorized" else "unpaid"


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


_OPEN_INTENT = """
    WITH intent AS (
        INSERT INTO payment_intents (id, store_id, snapshot_id, order_id, provider, provider_ref, status,
                                     capture_method, currency, amount_minor, captured_minor, refunded_minor,
                                     card_brand, card_last4, version, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, now(), now())
        RETURNING id
    )
    INSERT INTO payment_transactions (id, store_id, intent_id, kind, status, amount_minor, currency, provider_ref,
                                      idempotency_key, error_code, raw, created_at, updated_at)
    SELECT gen_random_uuid(), $2, id, 'authorize', $7, $10, $9, $6, $15, $16, $17, now(), now() FROM intent
"""
_RECORD = """
    WITH intent AS (
        UPDATE payment_intents
        SET status = $3, captured_minor = $4, refunded_minor = $5, order_id = COALESCE($6, order_id),
            version = version + 1, updated_at = now()
        WHERE id = $1 AND store_id = $2
        RETURNING id
    )
    INSERT INTO payment_transactions (id, store_id, intent_id, kind, status, amount_minor, currency, provider_ref,
                                      idempotency_key, error_code, raw, created_at, updated_at)
    SELECT gen_random_uuid(), $2, id, $7, $3, $8, $9, $10, $11, $12, $13, now(), now() FROM intent
"""


async def open_intent_raw(
    conn: pg.Connection,
    store_id: uuid.UUID,
    *,
    snapshot_id: uuid.UUID,
    order_id: uuid.UUID | None,
    provider: str,
    capture_method: str,
    result: ProviderResult,
    idempotency_key: str,
) -> uuid.UUID:
    """``PaymentLedger.open_intent`` for the raw-SQL checkout path (ADR 0003): intent and its authorize row."""
    intent_id = uuid.uuid4()
    await conn.execute(
        _OPEN_INTENT,
        intent_id,
        store_id,
        snapshot_id,
        order_id,
        provider,
        result.provider_ref,
        str(result.status),
        capture_method,
        result.amount.currency,
        result.amount.amount_minor,
        result.captured.amount_minor,
        result.refunded.amount_minor,
        result.brand,
        result.last4,
        idempotency_key,
        result.decline_code,
        pg.jsonb(dict(result.raw)),
    )
    return intent_id


async def record_raw(
    conn: pg.Connection,
    store_id: uuid.UUID,
    intent_id: uuid.UUID,
    kind: TxKind,
    result: ProviderResult,
    idempotency_key: str,
    *,
    order_id: uuid.UUID | None = None,
) -> None:
    """``PaymentLedger.record`` for the raw-SQL checkout path: the intent follows the provider's answer."""
    amount = _amount_of(kind, result)
    await conn.execute(
        _RECORD,
        intent_id,
        store_id,
        str(result.status),
        result.captured.amount_minor,
        result.refunded.amount_minor,
        order_id,
        kind,
        amount.amount_minor,
        amount.currency,
        result.provider_ref,
        idempotency_key,
        result.decline_code,
        pg.jsonb(dict(result.raw)),
    )


def _amount_of(kind: TxKind, result: ProviderResult) -> Money:
    """What a transaction of ``kind`` moved: captures and refunds carry their totals, the rest the amount."""
    return {"capture": result.captured, "refund": result.refunded}.get(kind, result.amount)


def payment_status_of(result: ProviderResult) -> str:
    """The order's payment axis straight from a provider answer (the same rules as the intent's)."""
    return order_payment_status(
        PaymentIntent(
            status=str(result.status),
            amount_minor=result.amount.amount_minor,
            captured_minor=result.captured.amount_minor,
            refunded_minor=result.refunded.amount_minor,
        )
    )


def is_success(result: ProviderResult) -> bool:
    return result.status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED)
