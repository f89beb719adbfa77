"""Staff pages for gift cards and store credit (managers): gift cards listed and searched (last 4, note, customer
e-mail), issued one or in bulk (the codes shown once, with a CSV of them made in the page, never stored), one
card's ledger, adjust with a reason, disable / enable; store credit issued to a customer by e-mail with a reason,
and every customer's balance.

Plain forms: a success answers 303 (issuing answers the page with the codes, once); a refusal re-renders the form
with each message next to its field and status 422, and nothing is written.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import TillError, ValidationFailed
from app.core.money import parse_amount
from app.core.rbac import Principal, Role, principal_of, require_role
from app.stored_value.ledger import Ledger
from app.stored_value.purchases import gift_card_products, product_choices, set_gift_card_products
from app.stored_value.refunds import refund_to, set_refund_to
from app.stored_value.services import CannotReplace, GiftCardService, IssuedCard, StoreCreditService
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]
BASE = "/staff/gift-cards"
CREDIT = "/staff/store-credit"


def parse_expiry(text: str, timezone: str) -> datetime | None:
    """A last day (YYYY-MM-DD, the store's time) → the end of that day in UTC; "" → None (never expires)."""
    text = text.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("Enter a date.", fields={"expires_on": "Enter a date (YYYY-MM-DD)."}) from None
    end = datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(timezone)).astimezone(UTC)
    if end <= datetime.now(UTC):
        raise ValidationFailed("That day is past.", fields={"expires_on": "Choose a day after today."})
    return end


def parse_money(text: str, currency: str, field: str = "amount", *, signed: bool = False) -> int:
    amount = parse_amount(text, currency)
    if amount is None or (amount <= 0 and not signed) or amount == 0:
        words = "Enter a non-zero amount, like 10 or -2.50." if signed else "Enter an amount, like 25 or 12.50."
        raise ValidationFailed(words, fields={field: words})
    return amount


def codes_csv(cards: list[IssuedCard], currency: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["code", "last4", "amount", "currency", "expires_at"])
    for card in cards:
        expires = card.account.expires_at.isoformat() if card.account.expires_at else ""
        writer.writerow([card.code, card.account.code_last4, str(card.account.issued_minor), currency, expires])
    return out.getvalue()


def _errors(exc: ValidationFailed) -> dict[str, str]:
    return {"form": exc.detail, **exc.fields}


def _replace_errors(exc: TillError) -> dict[str, str]:
    """The replace form's messages (its own keys, so the adjust form on the same page stays clean)."""
    return {"replace_form": exc.detail, **{f"replace_{k}": v for k, v in exc.fields.items()}}


class StoredValuePagesController(Controller):
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get(BASE)
    async def list_cards(
        self, request: Request[Any, Any, Any], db_session: DbSession, q: FromQuery[str] = ""
    ) -> Template:
        me = principal_of(request)
        cards = await GiftCardService(db_session, me.store_id).search(q)
        context = {"me": me, "cards": cards, "q": q, "values": {"count": "1"}, "errors": {}}
        context["refund_to"] = await _refund_to(db_session, me.store_id)
        context |= await _products(db_session, me.store_id)
        partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "card-rows"
        return Template("stored_value/_card_rows.html" if partial else "stored_value/gift_cards.html", context=context)

    @post(f"{BASE}/settings", status_code=303)
    async def save_settings(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Redirect:
        me = principal_of(request)
        await set_refund_to(db_session, me.store_id, data.get("refund_to", ""), principal=me)
        flash(request, "Refund setting saved.", category="success")
        return Redirect(BASE, status_code=303)

    @post(f"{BASE}/products", status_code=303)
    async def save_products(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        me = principal_of(request)
        form = await request.form()
        await set_gift_card_products(db_session, me.store_id, form.getall("product_id", []), principal=me)
        flash(request, "Gift card products saved.", category="success")
        return Redirect(BASE, status_code=303)

    @post(f"{BASE}/issue", status_code=200, media_type=MediaType.HTML)
    async def issue(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Template:
        me = principal_of(request)
        service = GiftCardService(db_session, me.store_id)
        try:
            amount = parse_money(data.get("amount", ""), me.currency)
            count_text = data.get("count", "1").strip() or "1"
            if not count_text.isdigit():
                raise ValidationFailed("Enter how many.", fields={"count": "Enter a whole number, 1 to 1000."})
            expires_at = parse_expiry(data.get("expires_on", ""), me.timezone)
            cards = await service.issue(
                amount,
                me.currency,
                principal=me,
                count=int(count_text),
                expires_at=expires_at,
                note=data.get("note", "").strip()[:200],
            )
        except ValidationFailed as exc:
            context = {"me": me, "cards": await service.search(), "q": "", "values": data, "errors": _errors(exc)}
            context["refund_to"] = await _refund_to(db_session, me.store_id)
            context |= await _products(db_session, me.store_id)
            return Template("stored_value/gift_cards.html", context=context, status_code=422)
        csv_text = codes_csv(cards, me.currency)
        context = {
            "me": me,
            "cards": cards,
            "csv_href": "data:text/csv;charset=utf-8," + quote(csv_text),
            "filename": f"gift-cards-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv",
        }
        return Template("stored_value/issued.html", context=context, headers={"cache-control": "no-store"})

    @get(f"{BASE}/{{account_id:uuid}}")
    async def card(
        self, request: Request[Any, Any, Any], account_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        return await _card_page(request, db_session, account_id, {}, {})

    @post(f"{BASE}/{{account_id:uuid}}/adjust", status_code=303, media_type=MediaType.HTML)
    async def adjust(
        self, request: Request[Any, Any, Any], account_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            amount = parse_money(data.get("amount", ""), me.currency, signed=True)
            await GiftCardService(db_session, me.store_id).adjust(
                account_id, amount, data.get("reason", ""), principal=me
            )
        except ValidationFailed as exc:
            return await _card_page(request, db_session, account_id, data, _errors(exc), 422)
        except TillError as exc:  # below what is held: say so in place
            errors = {"form": exc.detail, "amount": exc.detail}
            return await _card_page(request, db_session, account_id, data, errors, 422)
        flash(request, "Balance adjusted.", category="success")
        return Redirect(f"{BASE}/{account_id}", status_code=303)

    @post(f"{BASE}/{{account_id:uuid}}/replace", status_code=200, media_type=MediaType.HTML)
    async def replace(
        self, request: Request[Any, Any, Any], account_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template:
        """A new code carrying the old card's balance (shown once, not cached); the old card disabled. A refusal
        (no reason; a disabled, expired, empty or held card) re-renders the card with the message in place."""
        me = principal_of(request)
        try:
            done = await GiftCardService(db_session, me.store_id).replace(
                account_id, data.get("replace_reason", ""), principal=me
            )
        except ValidationFailed as exc:
            return await _card_page(request, db_session, account_id, data, _replace_errors(exc), 422)
        except CannotReplace as exc:
            await db_session.rollback()  # refused before any write; let go of the card's row lock at once
            return await _card_page(request, db_session, account_id, data, _replace_errors(exc), 409)
        context = {"me": me, "done": done}
        return Template("stored_value/replaced.html", context=context, headers={"cache-control": "no-store"})

    @post(f"{BASE}/{{account_id:uuid}}/status", status_code=303)
    async def set_status(
        self, request: Request[Any, Any, Any], account_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Redirect:
        me = principal_of(request)
        status = "disabled" if data.get("status") == "disabled" else "active"
        await GiftCardService(db_session, me.store_id).set_status(account_id, status, principal=me)
        flash(request, "Gift card disabled." if status == "disabled" else "Gift card enabled.", category="success")
        return Redirect(f"{BASE}/{account_id}", status_code=303)

    # ---- store credit -------------------------------------------------------------------------------

    @get(CREDIT)
    async def credit(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await _credit_page(request, db_session, {}, {})

    @post(CREDIT, status_code=303, media_type=MediaType.HTML)
    async def issue_credit(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        email = data.get("email", "").strip().lower()
        service = StoreCreditService(db_session, me.store_id)
        try:
            customer_id = await service.customer_by_email(email)
            amount = parse_money(data.get("amount", ""), me.currency)
            await service.issue(customer_id, amount, me.currency, data.get("reason", ""), principal=me)
        except ValidationFailed as exc:
            return await _credit_page(request, db_session, data, _errors(exc), 422)
        flash(request, f"Store credit issued to {email}.", category="success")
        return Redirect(CREDIT, status_code=303)


async def _refund_to(db_session: AsyncSession, store_id: uuid.UUID) -> str:
    store = await db_session.get(Store, store_id)
    return refund_to(store.settings if store else None)


async def _products(db_session: AsyncSession, store_id: uuid.UUID) -> dict[str, Any]:
    store = await db_session.get(Store, store_id)
    return {
        "products": await product_choices(db_session, store_id),
        "gift_products": gift_card_products(store.settings if store else None),
    }


async def _card_page(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    account_id: uuid.UUID,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    me: Principal = principal_of(request)
    service = GiftCardService(db_session, me.store_id)
    card = await service.get(account_id)
    entries = await Ledger(db_session, me.store_id).entries(account_id)
    context = {"me": me, "card": card, "entries": entries, "values": values, "errors": errors}
    return Template("stored_value/gift_card.html", context=context, status_code=status_code)


async def _credit_page(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    me = principal_of(request)
    accounts = await StoreCreditService(db_session, me.store_id).accounts()
    context = {"me": me, "accounts": accounts, "values": values, "errors": errors}
    return Template("stored_value/store_credit.html", context=context, status_code=status_code)
