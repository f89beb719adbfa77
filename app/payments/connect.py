"""Stripe Connect for a store: onboarding its connected account, tracking its status, reading its payouts.

Kept in ``stores.settings`` (read through :class:`CommerceSettings`): ``connect_account``,
``connect_status`` (not_started | pending | enabled | restricted) and ``connect_requirements_due``
(what the provider still wants, shown on the payouts page). The status changes when the owner
comes back from onboarding (:meth:`ConnectService.refresh`, polling the provider) and when the
provider says so (:func:`apply_account_update`, for ``account.updated`` webhooks).

The platform fee (``platform_fee_bps`` + ``platform_fee_fixed_minor``) is set by the platform owner
with ``till platform fee`` (:func:`set_platform_fee`); no store API or page writes it.

A store whose provider has no Connect gets :class:`ConnectUnavailable` (409), never a crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.errors import NotFound, TillError, ValidationFailed
from app.core.outbox import emit
from app.core.tenancy import bind_store, system_scope
from app.payments.capabilities import ConnectedAccount, OnboardingLink, Payout, SupportsConnect
from app.payments.credentials import load_credentials
from app.payments.provider import PaymentError, ProviderTimeout
from app.payments.registry import ProviderNotReady, provider_for
from app.stores.commerce import CommerceSettings
from app.stores.models import Store

__all__ = [
    "MAX_FEE_BPS",
    "ConnectService",
    "ConnectState",
    "ConnectUnavailable",
    "PayoutSplit",
    "account_from_event",
    "account_idempotency_key",
    "apply_account_update",
    "connect_state",
    "fee_percent",
    "set_platform_fee",
    "store_for_account",
]

log = structlog.get_logger(__name__)

MAX_FEE_BPS = 10_000
REQUIREMENTS_KEY = "connect_requirements_due"


class ConnectUnavailable(TillError):
    """The store's payment provider cannot do this (no Connect, not configured, or it refused)."""

    status_code = 409
    title = "Payouts not available"
    code = "connect_unavailable"


class ProviderUnreachable(TillError):
    status_code = 503
    title = "Payment provider unavailable"
    code = "provider_unavailable"


@dataclass(frozen=True)
class ConnectState:
    account_id: str  # "" before onboarding started
    status: str  # not_started | pending | enabled | restricted
    charges_enabled: bool = False
    payouts_enabled: bool = False
    requirements_due: tuple[str, ...] = ()


@dataclass(frozen=True)
class PayoutSplit:
    upcoming: list[Payout]  # pending or in transit, newest first
    past: list[Payout]  # paid, failed or canceled, newest first


def account_idempotency_key(store_id: uuid.UUID) -> str:
    """One connected account per store: every attempt to create it carries this key."""
    return f"connect-account:{store_id}"


def connect_state(store: Store) -> ConnectState:
    """What the store's settings say (no provider call). Only the status and what is due are kept, so the
    two flags are read from the status; :meth:`ConnectService.refresh` gives the provider's own."""
    commerce = CommerceSettings.of(store.settings)
    if not commerce.connect_account:
        return ConnectState(account_id="", status="not_started")
    enabled = commerce.connect_status == "enabled"
    return ConnectState(
        account_id=commerce.connect_account,
        status=commerce.connect_status,
        charges_enabled=enabled or commerce.connect_status == "restricted",
        payouts_enabled=enabled,
        requirements_due=tuple(str(r) for r in store.settings.get(REQUIREMENTS_KEY, ())),
    )


def _state_of(account: ConnectedAccount) -> ConnectState:
    return ConnectState(
        account_id=account.id,
        status=account.status,
        charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled,
        requirements_due=account.requirements_due,
    )


def _save(session: AsyncSession, store: Store, changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into the store's settings (a new dict, so the JSON column is written) and tell
    the outbox, as StoreService does for the store's own settings."""
    changed = {k: v for k, v in changes.items() if store.settings.get(k) != v}
    if changed:
        store.settings = {**store.settings, **changed}
        emit(
            session, "store.updated", aggregate_type="store", aggregate_id=store.id, payload=changed, store_id=store.id
        )


def _record(session: AsyncSession, store: Store, account: ConnectedAccount) -> ConnectState:
    before = CommerceSettings.of(store.settings).connect_status
    _save(
        session,
        store,
        {
            "connect_account": account.id,
            "connect_status": account.status,
            REQUIREMENTS_KEY: list(account.requirements_due),
        },
    )
    if before != account.status:
        log.info("connect.status_changed", store_id=str(store.id), account=account.id, status=account.status)
    return _state_of(account)


def _absolute(link: OnboardingLink, return_url: str) -> OnboardingLink:
    """A provider serving its onboarding from this app (the sandbox) gives a path: make it absolute on the
    return URL's origin, so an API caller gets a URL it can open."""
    if not link.url.startswith("/"):
        return link
    origin = urlsplit(return_url)
    return OnboardingLink(url=f"{origin.scheme}://{origin.netloc}{link.url}", expires_at=link.expires_at)


def _provider_refused(exc: PaymentError) -> TillError:
    if isinstance(exc, ProviderTimeout):
        return ProviderUnreachable("The payment provider did not answer. Try again in a moment.")
    return ConnectUnavailable(f"The payment provider refused: {exc.message or exc.code}.")


class ConnectService:
    """Connect for the signed-in store. The session is bound to that store."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID, *, redis: Redis, settings: Settings) -> None:
        self.session = session
        self.store_id = store_id
        self.redis = redis
        self.settings = settings
        bind_store(session, store_id)

    async def store(self, *, for_update: bool = False) -> Store:
        query = select(Store).where(Store.id == self.store_id)
        store = await self.session.scalar(query.with_for_update() if for_update else query)
        if store is None:
            raise NotFound("No such store.")
        return store

    async def _connect(self, store: Store) -> SupportsConnect:
        commerce = CommerceSettings.of(store.settings)
        name = commerce.payment_provider
        credentials = (
            await load_credentials(self.session, store.id, "stripe", commerce.payment_mode)
            if name == "stripe"
            else None
        )
        try:
            provider: object = provider_for(store, self.redis, self.settings, credentials=credentials)
        except ProviderNotReady as exc:
            raise ConnectUnavailable(f"Payouts need a payment provider with Connect: {exc.detail}") from exc
        if not isinstance(provider, SupportsConnect):
            raise ConnectUnavailable(f"The payment provider {name!r} does not support payouts to stores (Connect).")
        return provider

    async def state(self) -> ConnectState:
        return connect_state(await self.store())

    async def start_onboarding(self, *, email: str, return_url: str, refresh_url: str) -> OnboardingLink:
        """The link to the provider's onboarding: creates the store's account the first time (once, by key)."""
        store = await self.store(for_update=True)  # two owners clicking at once make one account
        provider = await self._connect(store)
        commerce = CommerceSettings.of(store.settings)
        try:
            if commerce.connect_account:
                try:
                    link = await provider.onboarding_link(
                        commerce.connect_account, refresh_url=refresh_url, return_url=return_url
                    )
                    return _absolute(link, return_url)
                except PaymentError as exc:
                    if exc.code != "unknown_account":
                        raise
                    log.warning("connect.account_lost", store_id=str(store.id), account=commerce.connect_account)
            account = await provider.create_account(
                email=email, country=commerce.country, idempotency_key=account_idempotency_key(store.id)
            )
            _record(self.session, store, account)
            link = await provider.onboarding_link(account.id, refresh_url=refresh_url, return_url=return_url)
            return _absolute(link, return_url)
        except PaymentError as exc:
            raise _provider_refused(exc) from exc

    async def resume_onboarding(self, *, return_url: str, refresh_url: str) -> OnboardingLink | None:
        """A fresh link for an account that exists (an expired link's refresh URL); None before onboarding."""
        store = await self.store()
        if not CommerceSettings.of(store.settings).connect_account:
            return None
        provider = await self._connect(store)
        try:
            link = await provider.onboarding_link(
                CommerceSettings.of(store.settings).connect_account, refresh_url=refresh_url, return_url=return_url
            )
            return _absolute(link, return_url)
        except PaymentError as exc:
            raise _provider_refused(exc) from exc

    async def refresh(self) -> ConnectState:
        """Ask the provider how the account stands (polling) and keep its status."""
        store = await self.store(for_update=True)
        account_id = CommerceSettings.of(store.settings).connect_account
        if not account_id:
            return connect_state(store)
        provider = await self._connect(store)
        try:
            account = await provider.get_account(account_id)
        except PaymentError as exc:
            raise _provider_refused(exc) from exc
        return _record(self.session, store, account)

    async def payouts(self, *, limit: int = 20) -> PayoutSplit:
        """The account's payouts from the provider, upcoming and past; none before onboarding."""
        store = await self.store()
        account_id = CommerceSettings.of(store.settings).connect_account
        if not account_id:
            return PayoutSplit(upcoming=[], past=[])
        provider = await self._connect(store)
        try:
            payouts = await provider.list_payouts(account_id, limit=limit)
        except PaymentError as exc:
            raise _provider_refused(exc) from exc
        return PayoutSplit(upcoming=[p for p in payouts if p.upcoming], past=[p for p in payouts if not p.upcoming])


def account_from_event(obj: Mapping[str, Any]) -> ConnectedAccount:
    """A Stripe-shaped ``account`` object (an ``account.updated`` event's ``data.object``) as a ConnectedAccount."""
    account_id = obj.get("id")
    if not isinstance(account_id, str) or not account_id:
        raise ValueError("an account object needs an id")
    requirements = obj.get("requirements") or {}
    due = requirements.get("currently_due") or () if isinstance(requirements, Mapping) else ()
    return ConnectedAccount(
        id=account_id,
        charges_enabled=bool(obj.get("charges_enabled")),
        payouts_enabled=bool(obj.get("payouts_enabled")),
        details_submitted=bool(obj.get("details_submitted")),
        requirements_due=tuple(str(r) for r in due),
    )


async def store_for_account(session: AsyncSession, account_id: str, *, for_update: bool = False) -> Store | None:
    """The store whose connected account is ``account_id`` (system scope: found by its account)."""
    system_scope(session)
    query = select(Store).where(Store.settings["connect_account"].as_string() == account_id)
    store: Store | None = await session.scalar(query.with_for_update() if for_update else query)
    return store


async def apply_account_update(session: AsyncSession, account: ConnectedAccount) -> Store | None:
    """The provider says how ``account`` stands now (``account.updated``): keep it on the store that owns
    the account. Returns that store, or None when no store has this account (ignore the event).

    Puts ``session`` in system scope (the store is found by its account); the caller commits."""
    store = await store_for_account(session, account.id, for_update=True)
    if store is None:
        return None
    _record(session, store, account)
    return store


async def set_platform_fee(session: AsyncSession, *, slug: str, bps: int, fixed_minor: int) -> Store:
    """The platform owner's fee on each of the store's payments (``till platform fee``); stores cannot set it."""
    fields: dict[str, str] = {}
    if not 0 <= bps <= MAX_FEE_BPS:
        fields["bps"] = f"Use basis points from 0 to {MAX_FEE_BPS} (100 bps = 1 %)."
    if fixed_minor < 0:
        fields["fixed"] = "Use a fixed fee of 0 or more, in minor units (cents)."
    if fields:
        raise ValidationFailed("Check the platform fee.", fields=fields)
    system_scope(session)
    store = await session.scalar(select(Store).where(Store.slug == slug).with_for_update())
    if store is None:
        raise NotFound(f"No store with slug {slug!r}.")
    _save(session, store, {"platform_fee_bps": bps, "platform_fee_fixed_minor": fixed_minor})
    return store


def fee_percent(bps: int) -> str:
    """Basis points as a percentage with two decimals, exactly (150 → ``1.50 %``)."""
    return f"{bps // 100}.{bps % 100:02d} %"
