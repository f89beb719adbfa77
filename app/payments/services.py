"""The payments ledger: intents and append-only transactions, written only here."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

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
        amount = {
            "capture": result.captured,
            "refund": result.refunded,
        }.get(kind, result.amount)
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
