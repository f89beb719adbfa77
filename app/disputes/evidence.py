"""A dispute's evidence pack: what the order already knows (summary and lines as the receipt, the customer,
payment and ledger, the timeline, fulfilment and tracking), plus the notes and files staff add; and its
submission to the provider.

Files live under ``settings.data_dir / "evidence" / <store id> / <uuid><ext>``: the name on disk is ours,
the type is read from the file's first bytes (PDF, PNG, JPEG; the browser's claim is not trusted), at most
:data:`MAX_FILE_BYTES`. The file is written before its row and removed when the row is not committed, so a
failed upload leaves nothing behind. Files are served only through the staff page's guarded handler.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.tenancy import bind_store
from app.disputes.models import OPEN_STATUSES, Dispute, DisputeEvidence
from app.disputes.services import money_words
from app.orders.models import Order, OrderStatusChange
from app.orders.services import Actor, AuditEntry, OrderService
from app.payments.capabilities import DisputeEvidence as ProviderEvidence
from app.payments.capabilities import DisputeSubmission, SupportsDisputes
from app.payments.order_payments import OrderPayments, order_payments
from app.payments.provider import PaymentError, PaymentProvider

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NOTE_CHARS = 5_000
MAX_TEXT_CHARS = 20_000  # Stripe's limit per text field
# Signature bytes → (content type, extension). Only documents a bank reads: no HTML, SVG or archives.
FILE_TYPES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
ALLOWED_WORDS = "PDF, PNG or JPEG"


@dataclass(frozen=True)
class Fulfilment:
    method: str
    status: str
    carrier: str
    tracking_number: str
    shipped_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class EvidencePack:
    dispute: Dispute
    order: Order | None
    payments: OrderPayments | None
    timeline: list[AuditEntry]
    evidence: list[DisputeEvidence]
    fulfilment: Fulfilment | None

    @property
    def customer_name(self) -> str:
        address = (self.order.address or {}) if self.order else {}
        return str(address.get("name") or "")

    @property
    def address_line(self) -> str:
        address = (self.order.address or {}) if self.order else {}
        parts = [address.get("line1"), address.get("line2"), address.get("postal_code"), address.get("city")]
        text = ", ".join(str(p) for p in parts if p)
        return f"{text}, {address['country']}" if text and address.get("country") else text


def evidence_dir(data_dir: Path, store_id: uuid.UUID) -> Path:
    return data_dir / "evidence" / str(store_id)


def safe_name(name: str) -> str:
    """The uploaded file's name for display only: no path, no control or odd characters, at most 100."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" ._")[:100]
    return cleaned or "evidence"


def sniff(head: bytes) -> tuple[str, str] | None:
    for magic, content_type, ext in FILE_TYPES:
        if head.startswith(magic):
            return content_type, ext
    return None


class DisputeEvidenceService:
    """The pack, notes and files of one store's disputes (``sessions`` for short transactions of its own)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], store_id: uuid.UUID, data_dir: Path) -> None:
        self.sessions = sessions
        self.store_id = store_id
        self.files = evidence_dir(data_dir, store_id)

    async def pack(self, dispute_id: uuid.UUID) -> EvidencePack:
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            dispute = await _dispute(session, dispute_id)
            evidence = list(
                await session.scalars(
                    select(DisputeEvidence)
                    .where(DisputeEvidence.dispute_id == dispute.id)
                    .order_by(DisputeEvidence.created_at, DisputeEvidence.id)
                )
            )
            if dispute.order_id is None:
                return EvidencePack(dispute, None, None, [], evidence, None)
            payments = await order_payments(session, self.store_id, dispute.order_id)
            order = payments.order
            timeline = await OrderService(session, self.store_id).audit(order.id)
            changes = await OrderService(session, self.store_id).history(order.id)
            return EvidencePack(dispute, order, payments, timeline, evidence, _fulfilment(order, changes))

    async def add_note(self, dispute_id: uuid.UUID, text: str, *, actor: Actor) -> DisputeEvidence:
        text = text.strip()
        if not text:
            raise ValidationFailed("Write the note first.", fields={"note": "Required."})
        if len(text) > MAX_NOTE_CHARS:
            raise ValidationFailed("The note is too long.", fields={"note": f"At most {MAX_NOTE_CHARS} characters."})
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store_id)
            await _editable(session, dispute_id)
            item = DisputeEvidence(
                dispute_id=dispute_id, kind="note", text=text, added_by=actor.label[:120], added_by_id=actor.id
            )
            session.add(item)
        return item

    async def add_file(self, dispute_id: uuid.UUID, content: bytes, filename: str, *, actor: Actor) -> DisputeEvidence:
        """Store an uploaded file (``content`` read up to MAX_FILE_BYTES + 1 by the caller) and its row."""
        if not content:
            raise ValidationFailed("Choose a file to upload.", fields={"file": "The file is empty."})
        if len(content) > MAX_FILE_BYTES:
            raise ValidationFailed(
                "That file is too large.", fields={"file": f"At most {MAX_FILE_BYTES // (1024 * 1024)} MB."}
            )
        kind = sniff(content[:16])
        if kind is None:
            raise ValidationFailed("That file type is not accepted.", fields={"file": f"Upload a {ALLOWED_WORDS}."})
        content_type, ext = kind
        name = f"{uuid.uuid4().hex}{ext}"
        path = self.files / name
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            await _editable(session, dispute_id)  # fail before writing anything
        self.files.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        try:
            async with self.sessions() as session, session.begin():
                bind_store(session, self.store_id)
                await _editable(session, dispute_id)
                item = DisputeEvidence(
                    dispute_id=dispute_id,
                    kind="file",
                    file_path=name,
                    original_name=safe_name(filename),
                    content_type=content_type,
                    size_bytes=len(content),
                    added_by=actor.label[:120],
                    added_by_id=actor.id,
                )
                session.add(item)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return item

    async def file(self, dispute_id: uuid.UUID, evidence_id: uuid.UUID) -> tuple[DisputeEvidence, Path]:
        async with self.sessions() as session:
            bind_store(session, self.store_id)
            item = await session.scalar(
                select(DisputeEvidence).where(
                    DisputeEvidence.id == evidence_id,
                    DisputeEvidence.dispute_id == dispute_id,
                    DisputeEvidence.kind == "file",
                )
            )
        if item is None or "/" in item.file_path or not (self.files / item.file_path).is_file():
            raise NotFound("No such file.")
        return item, self.files / item.file_path

    async def submit(self, dispute_id: uuid.UUID, provider: PaymentProvider, *, actor: Actor) -> DisputeSubmission:
        """Send the pack to the provider (when it takes disputes), then record the submission: after it the
        pack is read-only. No transaction is held across the provider call; a repeat sends the same evidence
        (the provider replays it) and records nothing twice."""
        pack = await self.pack(dispute_id)
        if pack.dispute.evidence_submitted_at is not None:
            raise Conflict("The evidence was already submitted.")
        if not pack.dispute.is_open:
            raise Conflict(f"The dispute is closed ({pack.dispute.status.replace('_', ' ')}).")
        if not pack.evidence:
            raise ValidationFailed("Add at least one note or file before submitting.", fields={"note": "Required."})
        evidence = provider_evidence(pack)
        if isinstance(provider, SupportsDisputes) and pack.dispute.provider == provider.name:
            try:
                submission = await provider.submit_dispute_evidence(pack.dispute.provider_dispute_id, evidence)
            except PaymentError as exc:
                raise Conflict(f"The provider refused the evidence: {exc.message}") from exc
        else:  # recorded here only: staff send it through the provider's dashboard
            submission = DisputeSubmission(pack.dispute.provider_dispute_id, "under_review", submitted=False)
        async with self.sessions() as session, session.begin():
            bind_store(session, self.store_id)
            dispute = await session.scalar(select(Dispute).where(Dispute.id == dispute_id).with_for_update())
            assert dispute is not None
            if dispute.evidence_submitted_at is None:
                now = datetime.now(UTC)
                dispute.evidence_submitted_at = now
                dispute.submitted_by = actor.label[:120]
                dispute.last_event_at = max(dispute.last_event_at, now)  # an older provider event changes nothing
                if dispute.is_open and submission.status in OPEN_STATUSES:
                    dispute.status = submission.status
        return submission


async def _dispute(session: AsyncSession, dispute_id: uuid.UUID) -> Dispute:
    dispute = await session.get(Dispute, dispute_id)
    if dispute is None:
        raise NotFound("No such dispute.")
    return dispute


async def _editable(session: AsyncSession, dispute_id: uuid.UUID) -> Dispute:
    dispute = await _dispute(session, dispute_id)
    if not dispute.can_submit:
        raise Conflict("The evidence was submitted or the dispute is closed: the pack is read-only.")
    return dispute


def _fulfilment(order: Order, changes: list[OrderStatusChange]) -> Fulfilment:
    def first(status: str) -> datetime | None:
        times = [c.created_at for c in changes if c.axis == "fulfilment" and c.to_status == status]
        return min(times) if times else None

    shipping = order.shipping or {}
    return Fulfilment(
        method=order.fulfilment_method,
        status=order.fulfilment_status,
        carrier=str(shipping.get("carrier") or shipping.get("name") or ""),
        tracking_number=str(shipping.get("tracking_number") or ""),
        shipped_at=first("shipped") or first("picked_up"),
        delivered_at=first("delivered") or first("picked_up"),
    )


def provider_evidence(pack: EvidencePack) -> ProviderEvidence:
    """The pack as the provider's text fields: the receipt and the story in ``uncategorized_text``."""
    order, dispute = pack.order, pack.dispute
    notes = [f"- {e.text} ({e.added_by}, {e.created_at:%Y-%m-%d})" for e in pack.evidence if e.kind == "note"]
    files = [f"- {e.original_name} ({e.content_type}, {e.size_bytes} bytes)" for e in pack.evidence if e.kind == "file"]
    lines: list[str] = [f"Dispute {dispute.provider_dispute_id}: {dispute.reason.replace('_', ' ')}, "
                        f"{money_words(dispute.amount_minor, dispute.currency)}."]  # fmt: skip
    products = ""
    if order is not None:
        products = "; ".join(f"{line.quantity} x {line.name} ({line.sku})" for line in order.lines)
        lines += [
            "",
            f"Receipt for order #{order.number}, placed {order.placed_at:%Y-%m-%d %H:%M} UTC via {order.channel}:",
            *(
                f"  {line.quantity} x {line.name}: {money_words(line.total_minor, order.currency)}"
                for line in order.lines
            ),
            f"  Shipping {money_words(order.shipping_minor, order.currency)}, tax "
            f"{money_words(order.tax_minor, order.currency)}, total {money_words(order.total_minor, order.currency)}.",
        ]
    if pack.fulfilment is not None:
        done = pack.fulfilment
        lines += ["", f"Fulfilment: {done.method.replace('_', ' ')}, {done.status.replace('_', ' ')}."]
    if notes:
        lines += ["", "Notes:", *notes]
    if files:
        lines += ["", "Documents held by the merchant:", *files]
    if pack.timeline:
        lines += ["", "Order timeline (oldest first):"]
        lines += [f"  {e.at:%Y-%m-%d %H:%M} {e.summary}" for e in reversed(pack.timeline)]
    text = "\n".join(lines)
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 20] + "\n[...shortened]"
    f = pack.fulfilment
    shipped = f.shipped_at if f else None
    return ProviderEvidence(
        customer_name=pack.customer_name,
        customer_email_address=order.email if order else "",
        billing_address=pack.address_line,
        shipping_address=pack.address_line if f and f.method != "pickup" else "",
        shipping_carrier=f.carrier if f and f.method == "shipping" else "",
        shipping_tracking_number=f.tracking_number if f else "",
        shipping_date=f"{shipped:%Y-%m-%d}" if shipped else "",
        product_description=products[:MAX_TEXT_CHARS],
        uncategorized_text=text,
    )
