"""The stores domain's rules: stores, staff sign-in, memberships, API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.services import parse_price
from app.core import audit, pg
from app.core.db import detached
from app.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from app.core.outbox import emit
from app.core.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from app.core.ratelimit import SIGNIN_PER_EMAIL, SIGNIN_PER_IP
from app.core.rbac import Principal, Role, StoreRef
from app.core.tenancy import bind_store, system_scope
from app.stores.commerce import CommerceSettings
from app.stores.models import ApiToken, Membership, Store, User

TOKEN_PREFIX = "till_"  # noqa: S105
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TIMEZONES = frozenset(available_timezones())
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def is_valid_email(email: str) -> bool:
    return bool(_EMAIL.match(email))


def session_auth(password_hash: str) -> str:
    """A staff session's fingerprint of the password it was opened with: a changed password ends older sessions."""
    return hashlib.sha256(b"till-session:" + password_hash.encode()).hexdigest()[:32]


def staff_principal(store: Store, user: User, role: Role, stores: tuple[StoreRef, ...] = ()) -> Principal:
    return Principal(
        kind="staff",
        store_id=store.id,
        store_slug=store.slug,
        store_name=store.name,
        currency=store.currency,
        timezone=store.timezone,
        role=role,
        display_name=user.name,
        user_id=user.id,
        email=user.email,
        stores=stores,
    )


def _principal(membership: Membership, stores: tuple[StoreRef, ...]) -> Principal:
    return staff_principal(membership.store, membership.user, Role(membership.role), stores)


@dataclass(frozen=True)
class SignIn:
    user_id: uuid.UUID
    store_id: uuid.UUID


@dataclass(frozen=True)
class SessionCaller:
    principal: Principal
    auth: str  # session_auth() of the user's current password


class StaffAccessService:
    """Who may act, for which store. Reads across stores on purpose (system scope)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        system_scope(session)

    async def sign_in(self, redis: Redis, email: str, password: str, client_ip: str) -> SignIn:
        email = normalise_email(email)
        fields: dict[str, str] = {}
        if not email:
            fields["email"] = "Enter your e-mail address."
        if not password:
            fields["password"] = "Enter your password."  # noqa: S105
        if fields:
            raise ValidationFailed("Enter your e-mail and password.", fields=fields)
        wait = max(await SIGNIN_PER_EMAIL.locked_for(redis, email), await SIGNIN_PER_IP.locked_for(redis, client_ip))
        if wait:
            minutes = max(1, round(wait / 60))
            raise TooManyRequests(
                f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                retry_after=wait,
            )
        user = await self.session.scalar(select(User).where(User.email == email))
        if not verify_password(user.password_hash if user else None, password) or user is None or not user.is_active:
            await SIGNIN_PER_EMAIL.record_failure(redis, email)
            await SIGNIN_PER_IP.record_failure(redis, client_ip)
            raise ValidationFailed(
                "That e-mail and password do not match.", fields={"password": "Wrong e-mail or password."}
            )
        memberships = await self._memberships(user.id)
        if not memberships:
            raise ValidationFailed("Your account has no store yet. Ask the store owner to add you.")
        memberships = [m for m in memberships if m.deactivated_at is None]
        if not memberships:
            raise ValidationFailed("Your access has been turned off. Ask the store owner to turn it back on.")
        await SIGNIN_PER_EMAIL.clear(redis, email)
        user.last_signed_in_at = datetime.now(UTC)
        return SignIn(user_id=user.id, store_id=memberships[0].store_id)

    async def _memberships(self, user_id: uuid.UUID) -> list[Membership]:
        rows = await self.session.scalars(
            select(Membership).where(Membership.user_id == user_id).order_by(Membership.created_at)
        )
        return list(rows)

    async def principal_for_session(self, user_id: uuid.UUID, store_id: uuid.UUID) -> Principal | None:
        caller = await self.resolve_session(user_id, store_id)
        return caller.principal if caller else None

    async def resolve_session(
        self, user_id: uuid.UUID, store_id: uuid.UUID, auth: str | None = None
    ) -> SessionCaller | None:
        """The caller of a staff session, or None: a deactivated membership or user counts at once, and a session
        whose password fingerprint (``auth``) no longer matches was opened before the password changed."""
        memberships = [m for m in await self._memberships(user_id) if m.user.is_active and m.deactivated_at is None]
        stores = tuple(StoreRef(m.store.id, m.store.slug, m.store.name, Role(m.role)) for m in memberships)
        current = next((m for m in memberships if m.store_id == store_id), None)
        if current is None:
            return None
        current_auth = session_auth(current.user.password_hash)
        if auth is not None and not secrets.compare_digest(auth, current_auth):
            return None
        return SessionCaller(_principal(current, stores), current_auth)


_BEARER_CALLER_SQL = """
    SELECT t.id AS token_id, t.name AS token_name, t.role, t.last_used_at,
           s.id, s.name, s.slug, s.currency, s.timezone, s.settings, s.created_at, s.updated_at
    FROM api_tokens t JOIN stores s ON s.id = t.store_id
    WHERE t.secret_hash = $1 AND t.revoked_at IS NULL
"""
_BEARER_MARK_USED_SQL = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND store_id = $3"
_STORE_COLUMNS = ("id", "name", "slug", "currency", "timezone", "settings", "created_at", "updated_at")


@dataclass(frozen=True)
class BearerCaller:
    principal: Principal
    store: Store  # detached: read with the token, so an API handler need not read it again


async def caller_for_token(conn: pg.Connection, raw_token: str) -> BearerCaller | None:
    """The caller behind a bearer token and its store (one raw statement: every /api request pays for it, unless
    app.stores.token_cache kept it)."""
    row = await bearer_row(conn, raw_token)
    return caller_from_row(row) if row is not None else None


async def bearer_row(conn: pg.Connection, raw_token: str) -> dict[str, Any] | None:
    """The row of an unrevoked token with its store's columns; stamps ``last_used_at`` at most once a minute."""
    if not raw_token.startswith(TOKEN_PREFIX):
        return None
    row = await conn.fetchrow(_BEARER_CALLER_SQL, token_hash(raw_token))
    if row is None:
        return None
    now = datetime.now(UTC)
    if row["last_used_at"] is None or now - row["last_used_at"] > TOKEN_TOUCH_INTERVAL:
        await conn.execute(_BEARER_MARK_USED_SQL, row["token_id"], now, row["id"])
    return dict(row)


def caller_from_row(row: dict[str, Any]) -> BearerCaller:
    """A fresh caller (its own detached Store) from :func:`bearer_row`'s row."""
    store = detached(Store, {column: row[column] for column in _STORE_COLUMNS})
    principal = Principal(
        kind="token",
        store_id=store.id,
        store_slug=store.slug,
        store_name=store.name,
        currency=store.currency,
        timezone=store.timezone,
        role=Role(row["role"]),
        display_name=f"API token {row['token_name']}",
        token_id=row["token_id"],
    )
    return BearerCaller(principal, store)


def token_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


class UserService:
    """Creating staff accounts (CLI, seed, owners adding staff)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        system_scope(session)

    async def create_store(self, *, name: str, slug: str, currency: str, timezone: str = "UTC") -> Store:
        validate_store_fields(name=name, timezone=timezone, currency=currency, slug=slug)
        if await self.session.scalar(select(Store.id).where(Store.slug == slug)):
            raise Conflict(f"A store with the address {slug!r} exists already.", fields={"slug": "Taken."})
        store = Store(name=name.strip(), slug=slug, currency=currency, timezone=timezone, settings={})
        self.session.add(store)
        await self.session.flush()
        return store

    async def create_user(self, *, email: str, name: str, password: str) -> User:
        email = normalise_email(email)
        fields: dict[str, str] = {}
        if not _EMAIL.match(email):
            fields["email"] = "Enter a valid e-mail address."
        if len(password) < MIN_PASSWORD_LENGTH:
            fields["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
        if not name.strip():
            fields["name"] = "Enter a name."
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        if await self.session.scalar(select(User.id).where(User.email == email)):
            raise Conflict("A user with that e-mail exists already.", fields={"email": "Taken."})
        user = User(email=email, name=name.strip(), password_hash=hash_password(password))
        self.session.add(user)
        await self.session.flush()
        return user

    async def add_member(self, store: Store, user: User, role: Role) -> Membership:
        membership = Membership(store_id=store.id, user_id=user.id, role=role)
        self.session.add(membership)
        await self.session.flush()
        return membership


def validate_store_fields(
    *,
    name: str | None = None,
    timezone: str | None = None,
    currency: str | None = None,
    slug: str | None = None,
) -> None:
    fields: dict[str, str] = {}
    if name is not None and not (1 <= len(name.strip()) <= 120):
        fields["name"] = "Enter a name of 1 to 120 characters."
    if timezone is not None and timezone not in _TIMEZONES:
        fields["timezone"] = "Choose a time zone such as Europe/Berlin."
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        fields["currency"] = "Use a three-letter ISO-4217 code such as EUR."
    if slug is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}", slug):
        fields["slug"] = "Use 2–63 lowercase letters, digits and dashes."
    if fields:
        raise ValidationFailed("Check the highlighted fields.", fields=fields)


BOARD_DELAY_MAX = 24 * 60


def _board_delay_minutes(value: int | str | None) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= BOARD_DELAY_MAX:
        raise ValidationFailed(
            "Check the highlighted fields.",
            fields={"board_delay_minutes": f"Enter whole minutes from 1 to {BOARD_DELAY_MAX}."},
        )
    return int(text)


def _refund_threshold(value: int | str | None) -> int | str | None:
    """``None``: not given; ``""``: no approval needed; else minor units from a number or a form's "50.00"."""
    if value is None or value == "":
        return value
    minor = value if isinstance(value, int) else parse_price(value)
    if minor is None or minor < 0:
        raise ValidationFailed(
            "Check the highlighted fields.",
            fields={"refund_approval_threshold": "Enter an amount such as 50.00, or leave it empty."},
        )
    return minor


class StoreService:
    """The signed-in store's own settings. The session is bound to that store."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def get(self) -> Store:
        store = await self.session.get(Store, self.store_id)
        if store is None:
            raise NotFound("No such store.")
        return store

    async def update(
        self,
        *,
        name: str | None = None,
        timezone: str | None = None,
        board_delay_minutes: int | str | None = None,
        refund_approval_threshold: int | str | None = None,
    ) -> Store:
        """Change what is given; a form's text for ``board_delay_minutes`` is checked like a number, and for
        ``refund_approval_threshold`` like an amount ("" removes the threshold: no approval needed)."""
        validate_store_fields(name=name, timezone=timezone)
        delay = _board_delay_minutes(board_delay_minutes)
        threshold = _refund_threshold(refund_approval_threshold)
        store = await self.get()
        changed: dict[str, Any] = {}
        if name is not None and name.strip() != store.name:
            store.name = changed["name"] = name.strip()
        if timezone is not None and timezone != store.timezone:
            store.timezone = changed["timezone"] = timezone
        if delay is not None and delay != CommerceSettings.of(store.settings).board_delay_minutes:
            store.settings = {**store.settings, "board_delay_minutes": delay}
            changed["board_delay_minutes"] = delay
        current_threshold = CommerceSettings.of(store.settings).refund_approval_threshold_minor
        new = None if threshold == "" else threshold
        if threshold is not None and new != current_threshold:
            store.settings = {**store.settings, "refund_approval_threshold_minor": new}
            changed["refund_approval_threshold_minor"] = new
        if changed:
            emit(self.session, "store.updated", aggregate_type="store", aggregate_id=store.id, payload=changed)
        return store

    async def set_settings(
        self, changes: dict[str, Any], *, actor: Principal | None, action: str = "store.settings_changed"
    ) -> Store:
        """Replace top-level keys of ``stores.settings`` (``{"tax": {...}}``, ``{"hours": {...}}``) with values a
        domain has validated already; emits ``store.updated`` with the changed keys. The audit row is written
        for every save, with the changed keys (none when the values were saved as they were): a merchant who
        reviewed the defaults and saved them has done that setup step."""
        store = await self.get()
        changed = {key: value for key, value in changes.items() if store.settings.get(key) != value}
        if changed:
            store.settings = {**store.settings, **changed}
            emit(self.session, "store.updated", aggregate_type="store", aggregate_id=store.id, payload=changed)
        audit.record(self.session, actor, action, target_type="store", target_id=store.id, details=changed)
        return store

    async def set_payment(self, *, provider: str, mode: str) -> Store:
        """Which payment provider the store uses and with which keys (``payment_provider``, ``payment_mode``).

        The payments domain checks the choice first (app/payments/credentials.py): the provider exists and
        has keys for the mode."""
        if mode not in ("test", "live"):
            raise ValidationFailed("Choose test or live mode.", fields={"mode": "Choose test or live."})
        store = await self.get()
        current = CommerceSettings.of(store.settings)
        changed: dict[str, Any] = {}
        # The first save records the choice even when it is the default (the setup checklist's payments step).
        if provider != current.payment_provider or "payment_provider" not in store.settings:
            changed["payment_provider"] = provider
        if mode != current.payment_mode or "payment_mode" not in store.settings:
            changed["payment_mode"] = mode
        if changed:
            store.settings = {**store.settings, **changed}
            emit(self.session, "store.updated", aggregate_type="store", aggregate_id=store.id, payload=changed)
        return store


class ApiTokenRepository(SQLAlchemyAsyncRepository[ApiToken]):
    model_type = ApiToken


class ApiTokenService(SQLAlchemyAsyncRepositoryService[ApiToken, ApiTokenRepository]):
    """API tokens of the session's store. The secret is shown once; only its hash is kept."""

    repository_type = ApiTokenRepository

    @classmethod
    def for_store(cls, session: AsyncSession, store_id: uuid.UUID) -> ApiTokenService:
        bind_store(session, store_id)
        return cls(session=session)

    @property
    def _session(self) -> AsyncSession:
        session = self.repository.session
        assert isinstance(session, AsyncSession)
        return session

    async def list_tokens(self) -> list[ApiToken]:
        return list(await self.repository.get_many(order_by=[("created_at", True)]))

    async def get_token(self, token_id: uuid.UUID) -> ApiToken:
        token = await self.repository.get_one_or_none(id=token_id)
        if token is None:
            raise NotFound("No such API token.")
        return token

    async def issue(self, *, name: str, role: Role | str, created_by: uuid.UUID | None) -> tuple[ApiToken, str]:
        name = name.strip()
        fields: dict[str, str] = {}
        if not (1 <= len(name) <= 80):
            fields["name"] = "Enter a name of 1 to 80 characters."
        try:
            role = Role(role)
        except ValueError:
            fields["role"] = f"Choose one of: {', '.join(r.value for r in Role)}."
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        prefix = secrets.token_hex(4)
        raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        token = await self.repository.add(
            ApiToken(
                name=name,
                prefix=prefix,
                secret_hash=token_hash(raw),
                role=Role(role),
                created_by_id=created_by,
            )
        )
        emit(self._session, "api_token.issued", aggregate_type="api_token", aggregate_id=token.id)
        return token, raw

    async def revoke_created_by(self, user_id: uuid.UUID) -> list[ApiToken]:
        """Revoke every active token this person issued in the store (they were deactivated)."""
        tokens = await self.repository.get_many(ApiToken.created_by_id == user_id, ApiToken.revoked_at.is_(None))
        return [await self.revoke(token.id) for token in tokens]

    async def revoke(self, token_id: uuid.UUID) -> ApiToken:
        token = await self.get_token(token_id)
        if token.revoked_at is None:
            token.revoked_at = datetime.now(UTC)
            emit(
                self._session,
                "api_token.revoked",
                aggregate_type="api_token",
                aggregate_id=token.id,
            )
        return token


async def store_by_slug(session: AsyncSession, slug: str) -> Store:
    """Public lookup for the storefront; binds the session to that store."""
    store = await session.scalar(select(Store).where(Store.slug == slug))
    if store is None:
        raise NotFound("No shop at this address.")
    bind_store(session, store.id)
    return store
