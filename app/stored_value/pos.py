"""Gift cards and store credit at the POS (issue 15): the sale's stored-value tenders resolved to accounts (spent
in the sale's own statement, app/stored_value/fragments.py), and the tablet's gift card lookup
``GET /pos/api/gift-cards/lookup`` (cashiers; the lookup limiter per register address and per store).

Online, an unknown code or a customer without store credit is a 422 naming the tender; at sync the sale was made
already, so it is recorded with a conflict for the managers' review and nothing is spent from that tender.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol
from urllib.parse import parse_qs

import msgspec
from litestar import Router, asgi
from litestar.types import Receive, Scope, Send
from redis.asyncio import Redis

from app.core import pg
from app.core.errors import NotFound, NotSignedIn, TillError, TooManyRequests, ValidationFailed
from app.core.hot_path import HOT_PATH, header, send_json, send_problem
from app.stored_value import codes
from app.stored_value.instruments import Tender, find_gift_card
from app.stored_value.ledger import Account, account_of
from app.stored_value.lookup import lookup
from app.stored_value.loyalty.pos import pos_points_tender
from app.stores.access import SESSION_AUTH, SESSION_USER
from app.stores.access import SESSION_STORE as SESSION_STORE_ID
from app.stores.services import session_auth

_CREDIT = """
    SELECT id, kind, unit, customer_id, code_last4, status, expires_at, balance_minor, held_minor, issued_minor, note,
           created_at
    FROM stored_value_accounts WHERE store_id = $1 AND customer_id = $2 AND kind = 'store_credit'
"""


class _Till(Protocol):
    @property
    def store_id(self) -> uuid.UUID: ...
    @property
    def currency(self) -> str: ...
    @property
    def register_id(self) -> uuid.UUID: ...


class _Sale(Protocol):
    customer_id: uuid.UUID | None

    @property
    def tenders(self) -> Sequence[Any]: ...


async def pos_tenders(
    conn: pg.Connection,
    redis: Redis,
    till: _Till,
    sale: _Sale,
    settled: Sequence[Any],
    conflict: Callable[..., None],
    *,
    online: bool,
) -> list[Tender]:
    """The sale's gift card / store credit tenders as accounts to spend (``settled``: its tenders as they pay)."""
    out: list[Tender] = []
    for i, (given, paid) in enumerate(zip(sale.tenders, settled, strict=True)):
        if paid.kind not in ("gift_card", "store_credit", "loyalty"):
            continue
        if paid.kind == "loyalty":  # the customer's points (app/stored_value/loyalty/pos.py)
            points = await pos_points_tender(conn, till.store_id, sale.customer_id, paid.amount_minor)
            if isinstance(points, str):
                conflict(f"tenders.{i}.kind", points, kind="stored_value_unknown", instrument="loyalty",
                         wanted_minor=paid.amount_minor)  # fmt: skip
            else:
                out.append(points)
            continue
        account: Account | None = None
        if paid.kind == "gift_card":
            code = given.code or ""
            if not codes.normalise(code):
                conflict(f"tenders.{i}.code", "Enter the gift card's 16-symbol code.", kind="stored_value_unknown",
                         instrument="gift_card", wanted_minor=paid.amount_minor)  # fmt: skip
                continue
            if online:
                account = await lookup(conn, redis, till.store_id, code, client=f"register:{till.register_id}",
                                       channel="pos")  # fmt: skip
            else:  # the sale happened: no limiter, it is recorded whatever the code
                account = await find_gift_card(conn, till.store_id, code)
            missing = "No gift card has this code."
        else:
            row = await conn.fetchrow(_CREDIT, till.store_id, sale.customer_id) if sale.customer_id else None
            account = account_of(row) if row is not None else None
            missing = "Choose the customer whose store credit pays." if sale.customer_id is None else (
                "This customer has no store credit.")  # fmt: skip
        if account is None:
            conflict(f"tenders.{i}.code" if paid.kind == "gift_card" else f"tenders.{i}.kind", missing,
                     kind="stored_value_unknown", instrument=paid.kind, wanted_minor=paid.amount_minor)  # fmt: skip
            continue
        if account.unit != till.currency:
            conflict(f"tenders.{i}.kind", f"It holds {account.unit}.", kind="stored_value_unknown",
                     instrument=paid.kind, wanted_minor=paid.amount_minor)  # fmt: skip
            continue
        if any(t.account_id == account.id for t in out):
            raise ValidationFailed("The same gift card twice on one sale.", fields={f"tenders.{i}.code": "Twice."})
        label = f"Gift card •••• {account.code_last4}" if paid.kind == "gift_card" else "Store credit"
        out.append(Tender(paid.kind, account.id, paid.amount_minor, paid.amount_minor, label))
    return out


# -- the tablet's lookup, on the hot path ----------------------------------------------------------------------

SESSION_COOKIE = "till_session"  # app/main.py's session config (key)
SESSION_STORE = "sessions"  # its store (app.stores)

_CALLER = """
    SELECT m.role::text AS role, u.password_hash
    FROM memberships m JOIN users u ON u.id = m.user_id
    WHERE m.user_id = $1 AND m.store_id = $2 AND m.deactivated_at IS NULL AND u.is_active
"""


def _cookie(scope: Scope, name: str) -> str:
    raw = header(scope, b"cookie")
    if not raw:
        return ""
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel else ""


async def _store_of_caller(scope: Scope, conn: pg.Connection) -> uuid.UUID | None:
    """The store of the signed-in staff member calling (any role: a cashier may look a card up), or None.

    What the page middleware would do, without it: the session read from its store, then one statement for the
    membership — active, the user active, and the session's password fingerprint still the password's."""
    session_id = _cookie(scope, SESSION_COOKIE)
    if not session_id or session_id == "null":
        return None
    raw = await scope["app"].stores.get(SESSION_STORE).get(session_id)
    if not raw:
        return None
    try:
        data = msgspec.json.decode(raw)
        user_id, store_id = uuid.UUID(str(data[SESSION_USER])), uuid.UUID(str(data[SESSION_STORE_ID]))
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None
    row = await conn.fetchrow(_CALLER, user_id, store_id)
    if row is None:
        return None
    auth = data.get(SESSION_AUTH)
    if isinstance(auth, str) and not secrets.compare_digest(auth, session_auth(row["password_hash"])):
        return None  # the password changed since this session was opened
    return store_id


async def _problem(send: Send, exc: TillError) -> None:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    await send_problem(send, exc.status_code, exc.title, exc.detail, code=exc.code, fields=exc.fields or None,
                       headers=headers)  # fmt: skip


# HOT_PATH passes over Till's own middleware; Litestar's session and CSRF middleware are passed over by their opt
# keys (the session is read here, never re-written; a GET needs no CSRF cookie)
@asgi("/lookup", opt={HOT_PATH: True, "skip_session": True, "exclude_from_csrf": True}, copy_scope=False)
async def lookup_card(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /pos/api/gift-cards/lookup?code=…``: what a card has to spend, before it is taken as a tender.

    Raw ASGI on the hot path (app/core/hot_path.py): the page middleware (correlation id, session read and
    re-write, access with its ORM load of every membership, CSRF cookie, idempotency) is passed over — the request
    metrics are not (counted like any request, no SQL of their own) — and the
    handler does only what this answer needs — the session read, one statement for the caller, the limiter's
    reads, the HMAC lookup — on one pooled connection. Same answers as before: 401 without a staff session, 422
    for a malformed code, 404 for no such card, 429 from the limiter (with Retry-After), else 200."""
    state = scope["app"].state
    try:
        if scope.get("method") != "GET":
            raise TillError("Use GET.")
        async with pg.connection(state.engine) as conn:
            store_id = await _store_of_caller(scope, conn)
            if store_id is None:
                raise NotSignedIn("Sign in first.")
            code = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("code", [""])[0]
            if not codes.normalise(code):
                raise ValidationFailed("Enter the gift card's 16-symbol code.",
                                       fields={"code": "16 letters and digits."})  # fmt: skip
            client = scope.get("client")
            card = await lookup(conn, state.redis, store_id, code, client=client[0] if client else "unknown",
                                channel="pos")  # fmt: skip
        if card is None:
            raise NotFound("No gift card has this code.", fields={"code": "No gift card has this code."})
    except TillError as exc:
        await _problem(send, exc)
        return
    usable = card.usable()
    await send_json(send, 200, {
        "last4": card.code_last4,
        "status": card.status,
        "usable": usable,
        "currency": card.unit,
        "balance_minor": card.balance_minor,
        "spendable_minor": card.spendable_minor if usable else 0,
        "expires_at": card.expires_at.isoformat() if card.expires_at else None,
    }, headers={"cache-control": "no-store"})  # fmt: skip


# The tablet's gift card routes (a Router, so app/main.py lists it as before).
GiftCardPosApiController = Router("/pos/api/gift-cards", route_handlers=[lookup_card], include_in_schema=False)


__all__ = ["GiftCardPosApiController", "pos_tenders"]
