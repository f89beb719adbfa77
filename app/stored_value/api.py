"""/api/v1/admin/gift-cards and /api/v1/admin/store-credit (managers' tokens): issue (the codes are in the answer,
once), list, read with the ledger, adjust with a reason, disable / enable; store credit issued to a customer.
Errors are problem+json naming each field. Accepts Idempotency-Key (a retried issue answers the same codes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.idempotency import OWN_KEYS
from app.core.rbac import Role, principal_of, require_role
from app.stored_value.ledger import Account, Entry, Ledger
from app.stored_value.refunds import DESTINATIONS, StoredValueRefunds
from app.stored_value.services import GiftCardService, StoreCreditService
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]


class GiftCardIn(msgspec.Struct, forbid_unknown_fields=True):
    amount_minor: int
    count: int = 1
    expires_at: datetime | None = None
    note: str = ""


class AdjustIn(msgspec.Struct, forbid_unknown_fields=True):
    amount_minor: int
    reason: str


class StatusIn(msgspec.Struct, forbid_unknown_fields=True):
    status: str


class ReplaceIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


class StoreCreditIn(msgspec.Struct, forbid_unknown_fields=True):
    amount_minor: int
    reason: str
    customer_id: uuid.UUID | None = None
    email: str = ""


class AccountOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    unit: str
    last4: str
    status: str
    usable: bool
    expires_at: datetime | None
    balance_minor: int
    held_minor: int
    spendable_minor: int
    issued_minor: int
    note: str
    customer_id: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        return cls(
            a.id, a.kind, a.unit, a.code_last4, a.status, a.usable(), a.expires_at, a.balance_minor, a.held_minor,
            a.spendable_minor, a.issued_minor, a.note, a.customer_id, a.created_at,
        )  # fmt: skip


class IssuedOut(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(description="Shown this once; Till keeps only an HMAC of it")]
    card: AccountOut


class ReplacedOut(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(description="The new card's code, shown this once; Till keeps only an HMAC")]
    card: Annotated[AccountOut, msgspec.Meta(description="The new card, holding the old card's balance")]
    replaced: Annotated[AccountOut, msgspec.Meta(description="The old card: disabled, its balance 0")]
    moved_minor: int


class EntryOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    amount_minor: int
    delta_minor: int
    reason: str
    actor: str
    order_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    pos_sale_id: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, e: Entry) -> EntryOut:
        return cls(
            e.id, e.kind, e.amount_minor, e.delta_minor, e.reason, e.actor, e.order_id, e.attempt_id, e.pos_sale_id,
            e.created_at,
        )  # fmt: skip


class CardDetailOut(msgspec.Struct):
    card: AccountOut
    entries: list[EntryOut]


class GiftCardsAdminApiController(Controller):
    path = "/api/v1/admin/gift-cards"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["gift cards"]

    @post(
        "/",
        summary="Issue gift cards (1 to 1000 of one amount)",
        description="201 with each card and its code, shown this once (Till keeps an HMAC, never the code). 422 "
        "names the field (amount, count, expires_at). Accepts Idempotency-Key.",
        status_code=201,
    )
    async def issue(
        self, request: Request[Any, Any, Any], data: JSONBody[GiftCardIn], db_session: DbSession
    ) -> list[IssuedOut]:
        me = principal_of(request)
        if data.expires_at is not None and data.expires_at <= datetime.now(UTC):
            raise ValidationFailed("The expiry is in the past.", fields={"expires_at": "Must be in the future."})
        cards = await GiftCardService(db_session, me.store_id).issue(
            data.amount_minor, me.currency, principal=me, count=data.count, expires_at=data.expires_at,
            note=data.note[:200],
        )  # fmt: skip
        return [IssuedOut(c.code, AccountOut.of(c.account)) for c in cards]

    @get("/", summary="Gift cards, newest first")
    async def list_cards(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        q: Annotated[
            str, QueryParameter(description="Last 4 of the code, part of the note, or a customer e-mail")
        ] = "",
    ) -> list[AccountOut]:
        me = principal_of(request)
        return [AccountOut.of(a) for a in await GiftCardService(db_session, me.store_id).search(q)]

    @get("/{account_id:uuid}", summary="One gift card with its ledger (newest first)")
    async def get_card(
        self, request: Request[Any, Any, Any], account_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> CardDetailOut:
        me = principal_of(request)
        card = await GiftCardService(db_session, me.store_id).get(account_id)
        entries = await Ledger(db_session, me.store_id).entries(account_id)
        return CardDetailOut(AccountOut.of(card), [EntryOut.of(e) for e in entries])

    @post(
        "/{account_id:uuid}/adjustments",
        summary="Add to or take off a balance, with a reason",
        description="409 insufficient_balance when it would go below what is held or spent. Accepts Idempotency-Key.",
        status_code=201,
    )
    async def adjust(
        self,
        request: Request[Any, Any, Any],
        account_id: FromPath[uuid.UUID],
        data: JSONBody[AdjustIn],
        db_session: DbSession,
    ) -> EntryOut:
        me = principal_of(request)
        entry = await GiftCardService(db_session, me.store_id).adjust(
            account_id, data.amount_minor, data.reason, principal=me
        )
        return EntryOut.of(entry)

    @post(
        "/{account_id:uuid}/replace",
        summary="Replace a gift card: a new code carrying the old card's balance; the old card disabled",
        description="For a card whose code was lost (a till sale's answer that never reached the tablet, a lost "
        "card). One ledger transfer: an adjust out of the old card and an issue into the new one, audited "
        "(gift_card.replaced). 201 with the new code, shown this once. 409 gift_card_not_replaceable for a "
        "disabled (e.g. replaced already), expired or empty card, or one a checkout holds now; 422 without a "
        "reason. Two requests at once move the balance once (the second gets the 409). The answer carries a code, "
        "which Till never stores, so no Idempotency-Key answer is kept for this call: a repeat gets the 409.",
        status_code=201,
        opt={OWN_KEYS: True},
        cache_control=CacheControlHeader(no_store=True),
    )
    async def replace(
        self,
        request: Request[Any, Any, Any],
        account_id: FromPath[uuid.UUID],
        data: JSONBody[ReplaceIn],
        db_session: DbSession,
    ) -> ReplacedOut:
        me = principal_of(request)
        done = await GiftCardService(db_session, me.store_id).replace(account_id, data.reason, principal=me)
        return ReplacedOut(
            done.card.code, AccountOut.of(done.card.account), AccountOut.of(done.replaced), done.moved_minor
        )

    @post("/{account_id:uuid}/status", summary="Disable or enable a gift card (status: disabled | active)")
    async def set_status(
        self,
        request: Request[Any, Any, Any],
        account_id: FromPath[uuid.UUID],
        data: JSONBody[StatusIn],
        db_session: DbSession,
    ) -> AccountOut:
        me = principal_of(request)
        if data.status not in ("active", "disabled"):
            raise ValidationFailed("Unknown status.", fields={"status": "active or disabled"})
        return AccountOut.of(
            await GiftCardService(db_session, me.store_id).set_status(account_id, data.status, principal=me)
        )


class RefundIn(msgspec.Struct, forbid_unknown_fields=True):
    amount_minor: int
    reason: str
    destination: str | None = None  # original | store_credit; default: the store's setting


class RefundOut(msgspec.Struct):
    refunded_minor: int
    left_minor: Annotated[int, msgspec.Meta(description="Not taken by stored value: the card's part to refund")]
    destination: str
    parts: list[tuple[str, int]]


class StoredValueRefundsApiController(Controller):
    path = "/api/v1/admin/orders"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["gift cards"]

    @post(
        "/{order_id:uuid}/stored-value-refunds",
        summary="Refund an order's stored value: to the gift cards / store credit / points it was paid with, or to "
        "the customer's store credit",
        description="destination defaults to the store's setting (stored_value.refund_to). left_minor is what "
        "stored value did not take (refund it to the card). 422 names the field. Accepts Idempotency-Key.",
        status_code=201,
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        data: JSONBody[RefundIn],
        db_session: DbSession,
    ) -> RefundOut:
        me = principal_of(request)
        if data.destination is not None and data.destination not in DESTINATIONS:
            raise ValidationFailed("Unknown destination.", fields={"destination": "original or store_credit"})
        store = await db_session.get(Store, me.store_id)
        result = await StoredValueRefunds(db_session, me.store_id).refund(
            order_id, data.amount_minor, data.reason, principal=me,
            destination="store_credit" if data.destination == "store_credit" else (
                "original" if data.destination else None),
            settings=store.settings if store else None,
        )  # fmt: skip
        return RefundOut(result.refunded_minor, result.left_minor, result.destination, result.parts)


class StoreCreditAdminApiController(Controller):
    path = "/api/v1/admin/store-credit"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["store credit"]

    @post(
        "/",
        summary="Give a customer store credit, with a reason",
        description="By customer_id or email. 422 names the field. Accepts Idempotency-Key.",
        status_code=201,
    )
    async def issue(
        self, request: Request[Any, Any, Any], data: JSONBody[StoreCreditIn], db_session: DbSession
    ) -> AccountOut:
        me = principal_of(request)
        service = StoreCreditService(db_session, me.store_id)
        customer_id = data.customer_id or await service.customer_by_email(data.email)
        await service.issue(customer_id, data.amount_minor, me.currency, data.reason, principal=me)
        account = await service.of_customer(customer_id)
        assert account is not None
        return AccountOut.of(account)

    @get("/", summary="Customers' store credit, largest balance first")
    async def list_credit(self, request: Request[Any, Any, Any], db_session: DbSession) -> list[AccountOut]:
        me = principal_of(request)
        return [AccountOut.of(a) for a, _ in await StoreCreditService(db_session, me.store_id).accounts()]
