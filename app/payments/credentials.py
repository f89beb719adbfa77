"""A store's provider credentials (Stripe keys), encrypted at rest (Invariant 9).

One row per store + provider + mode (``test`` | ``live``). The secret key and the webhook signing secret
are AES-GCM ciphertexts (app/core/encryption.py) bound to their row and field, so a ciphertext copied to
another store, mode or column fails to decrypt. What a person sees after saving is a hint
(``sk_test_…4242``), the publishable key (public by design) and when and by whom they were saved.

``load_credentials`` is what the provider registry calls; ``rotate_credentials`` is ``till keys rotate``.
Nothing here logs a key, and no error message repeats one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.encryption import EncryptionError, Keyring, current_keyring
from app.core.errors import ValidationFailed
from app.core.outbox import emit
from app.core.tenancy import TenantMixin, bind_store, system_scope
from app.stores.commerce import CommerceSettings
from app.stores.services import StoreService

Mode = Literal["test", "live"]
MODES: tuple[Mode, ...] = ("test", "live")
PAYMENT_PROVIDERS = ("sandbox", "stripe")  # what a store may choose on /staff/settings/payments
PROVIDERS_WITH_KEYS = ("stripe",)
_KEY_BODY = re.compile(r"^[A-Za-z0-9_]{10,240}$")


class ProviderCredential(TenantMixin, UUIDv7AuditBase):
    """One provider's keys for one store and mode. Secrets only as ciphertext; ``*_hint`` is for display."""

    __tablename__ = "provider_credentials"
    __store_index__ = False  # the unique key starts with store_id
    __table_args__ = (
        UniqueConstraint("store_id", "provider", "mode"),
        CheckConstraint("mode IN ('test', 'live')", name="mode_known"),
        CheckConstraint("key_version >= 1", name="key_version_positive"),
    )

    provider: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(4))
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    webhook_secret_ciphertext: Mapped[str] = mapped_column(Text)
    key_version: Mapped[int] = mapped_column(Integer)  # the key both ciphertexts are under
    secret_hint: Mapped[str] = mapped_column(String(40))
    webhook_secret_hint: Mapped[str] = mapped_column(String(40))
    publishable_key: Mapped[str] = mapped_column(String(255))
    updated_by: Mapped[str] = mapped_column(String(120), default="")
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


def _context(store_id: uuid.UUID, provider: str, mode: str, column: str) -> str:
    """Associated data: a ciphertext only decrypts in the row and column it was written for."""
    return f"provider_credentials/{store_id}/{provider}/{mode}/{column}"


def hint(secret: str) -> str:
    """``sk_test_…4242``: the key's kind and its last four characters, nothing more."""
    parts = secret.split("_")
    prefix = "_".join(parts[:2]) + "_" if len(parts) > 2 else parts[0] + "_"
    return f"{prefix}…{secret[-4:]}"


@dataclass(frozen=True)
class StripeCredentials:
    """Decrypted keys for one call site. Its repr (and so any log line or traceback) shows hints only."""

    secret_key: str = field(repr=False)
    publishable_key: str
    webhook_secret: str = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"StripeCredentials(secret_key={hint(self.secret_key)!r}, publishable_key={self.publishable_key!r}, "
            f"webhook_secret={hint(self.webhook_secret)!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class CredentialHint:
    """What the settings page shows about saved keys."""

    provider: str
    mode: Mode
    secret_hint: str
    publishable_key: str
    webhook_secret_hint: str
    updated_at: datetime
    updated_by: str
    key_version: int

    @property
    def publishable_hint(self) -> str:
        return hint(self.publishable_key)

    @classmethod
    def of(cls, row: ProviderCredential) -> CredentialHint:
        return cls(
            provider=row.provider,
            mode="live" if row.mode == "live" else "test",
            secret_hint=row.secret_hint,
            publishable_key=row.publishable_key,
            webhook_secret_hint=row.webhook_secret_hint,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
            key_version=row.key_version,
        )


def _check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ValidationFailed("Choose test or live mode.", fields={"mode": "Choose test or live."})
    return "live" if mode == "live" else "test"


def _check_provider(provider: str) -> str:
    if provider not in PROVIDERS_WITH_KEYS:
        raise ValidationFailed("Only Stripe takes keys here.", fields={"provider": "Choose Stripe."})
    return provider


def validate_stripe_keys(mode: Mode, secret_key: str, publishable_key: str, webhook_secret: str) -> None:
    """Check the shape of Stripe keys for a mode. Messages name the expected prefix, never the value."""
    other: Mode = "live" if mode == "test" else "test"
    fields: dict[str, str] = {}
    checks = (
        ("secret_key", secret_key, (f"sk_{mode}_", f"rk_{mode}_"), (f"sk_{other}_", f"rk_{other}_"), "secret key"),
        ("publishable_key", publishable_key, (f"pk_{mode}_",), (f"pk_{other}_",), "publishable key"),
        ("webhook_secret", webhook_secret, ("whsec_",), (), "webhook signing secret"),
    )
    for name, value, prefixes, wrong_mode, label in checks:
        expected = " or ".join(f"{p}…" for p in prefixes)
        if not value:
            fields[name] = f"Enter the {label}."
        elif value.startswith(wrong_mode):
            fields[name] = f"That is a {other} key; the {mode} form takes {mode} keys ({expected})."
        elif not value.startswith(prefixes):
            fields[name] = f"A {mode}-mode {label} starts with {expected}"
        elif not _KEY_BODY.match(value.split("_", 2 if name != "webhook_secret" else 1)[-1]):
            fields[name] = f"That does not look like a whole {label}; copy it again from the Stripe dashboard."
    if fields:
        raise ValidationFailed(
            "Check the highlighted keys. Nothing was saved; enter the secret fields again.", fields=fields
        )


class ProviderCredentialService:
    """The signed-in store's provider keys. The only writer of ``provider_credentials``."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID, *, keyring: Keyring | None = None) -> None:
        self.session = session
        self.store_id = store_id
        self.keyring = keyring or current_keyring()
        bind_store(session, store_id)

    async def _row(self, provider: str, mode: str) -> ProviderCredential | None:
        row: ProviderCredential | None = await self.session.scalar(
            select(ProviderCredential).where(ProviderCredential.provider == provider, ProviderCredential.mode == mode)
        )
        return row

    async def save(
        self,
        *,
        provider: str,
        mode: str,
        secret_key: str,
        publishable_key: str,
        webhook_secret: str,
        updated_by: str = "",
        updated_by_id: uuid.UUID | None = None,
    ) -> CredentialHint:
        """Validate and store (or replace) one mode's keys; ``ValidationFailed`` writes nothing."""
        provider, checked_mode = _check_provider(provider), _check_mode(mode)
        secret_key, publishable_key, webhook_secret = (
            secret_key.strip(),
            publishable_key.strip(),
            webhook_secret.strip(),
        )
        validate_stripe_keys(checked_mode, secret_key, publishable_key, webhook_secret)
        row = await self._row(provider, checked_mode)
        if row is None:
            row = ProviderCredential(provider=provider, mode=checked_mode, store_id=self.store_id)
            self.session.add(row)
        row.secret_ciphertext = self.keyring.encrypt(
            secret_key, context=_context(self.store_id, provider, checked_mode, "secret")
        )
        row.webhook_secret_ciphertext = self.keyring.encrypt(
            webhook_secret, context=_context(self.store_id, provider, checked_mode, "webhook_secret")
        )
        row.key_version = self.keyring.newest_version
        row.secret_hint = hint(secret_key)
        row.webhook_secret_hint = hint(webhook_secret)
        row.publishable_key = publishable_key
        row.updated_by = updated_by[:120]
        row.updated_by_id = updated_by_id
        await self.session.flush()
        self._emit("payment_credentials.saved", provider, checked_mode)
        return CredentialHint.of(row)

    async def remove(self, provider: str, mode: str) -> bool:
        """Forget one mode's keys. Returns whether there were any. Keys in use cannot be removed."""
        row = await self._row(_check_provider(provider), _check_mode(mode))
        if row is None:
            return False
        in_use = CommerceSettings.of((await StoreService(self.session, self.store_id).get()).settings)
        if in_use.payment_provider == provider and in_use.payment_mode == mode:
            raise ValidationFailed(
                f"The store takes payments with these {mode} keys. "
                "Switch to the sandbox or the other mode first, then remove them."
            )
        await self.session.delete(row)
        await self.session.flush()
        self._emit("payment_credentials.removed", provider, mode)
        return True

    def _emit(self, event_type: str, provider: str, mode: str) -> None:
        """The event says which keys changed, never what they are."""
        payload = {"provider": provider, "mode": mode}
        emit(self.session, event_type, aggregate_type="store", aggregate_id=self.store_id, payload=payload)

    async def hints(self, provider: str) -> dict[Mode, CredentialHint]:
        """The saved keys per mode, as hints (no decryption)."""
        rows = await self.session.scalars(select(ProviderCredential).where(ProviderCredential.provider == provider))
        return {hint_.mode: hint_ for hint_ in (CredentialHint.of(row) for row in rows)}

    async def has(self, provider: str, mode: str) -> bool:
        return await self._row(provider, mode) is not None

    async def choose(self, *, provider: str, mode: str) -> None:
        """Set the store's payment provider and mode; a provider that takes keys needs them for that mode."""
        fields: dict[str, str] = {}
        if provider not in PAYMENT_PROVIDERS:
            fields["provider"] = "Choose the sandbox or Stripe."
        if mode not in MODES:
            fields["mode"] = "Choose test or live."
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        if provider in PROVIDERS_WITH_KEYS and not await self.has(provider, mode):
            label = "live" if mode == "live" else "test"
            raise ValidationFailed(
                f"Add your Stripe {label} keys below before using Stripe in {label} mode.",
                fields={"provider": f"Stripe has no {label} keys yet."},
            )
        await StoreService(self.session, self.store_id).set_payment(provider=provider, mode=mode)

    async def load(self, provider: str, mode: str) -> StripeCredentials | None:
        row = await self._row(provider, mode)
        if row is None:
            return None
        return StripeCredentials(
            secret_key=self.keyring.decrypt(
                row.secret_ciphertext, context=_context(self.store_id, provider, mode, "secret")
            ),
            publishable_key=row.publishable_key,
            webhook_secret=self.keyring.decrypt(
                row.webhook_secret_ciphertext, context=_context(self.store_id, provider, mode, "webhook_secret")
            ),
        )


async def load_credentials(
    session: AsyncSession, store_id: uuid.UUID, provider: str, mode: str, *, keyring: Keyring | None = None
) -> StripeCredentials | None:
    """A store's decrypted keys for a provider and mode, or None when none are saved.

    Binds ``session`` to ``store_id``. Raises ``app.core.encryption.DecryptionFailed`` /
    ``UnknownKeyVersion`` when a stored value was tampered with or its key is gone (never a wrong key)."""
    return await ProviderCredentialService(session, store_id, keyring=keyring).load(provider, mode)


@dataclass(frozen=True)
class RotationResult:
    newest_version: int
    rotated: int  # rows re-encrypted now
    current: int  # rows that were under the newest key already


async def rotate_credentials(session: AsyncSession, keyring: Keyring) -> RotationResult:
    """Re-encrypt every store's credentials under the newest key (``till keys rotate``). Idempotent.

    Rows are locked while they change; a row that cannot be decrypted stops the rotation (and its
    transaction) with the row's id in the message, so nothing is half-rotated."""
    system_scope(session)
    rows = await session.scalars(select(ProviderCredential).order_by(ProviderCredential.id).with_for_update())
    rotated = current = 0
    for row in rows:
        if row.key_version == keyring.newest_version and all(
            keyring.is_current(value) for value in (row.secret_ciphertext, row.webhook_secret_ciphertext)
        ):
            current += 1
            continue
        secret_ctx = _context(row.store_id, row.provider, row.mode, "secret")
        webhook_ctx = _context(row.store_id, row.provider, row.mode, "webhook_secret")
        try:
            row.secret_ciphertext = keyring.rotate(row.secret_ciphertext, context=secret_ctx)
            row.webhook_secret_ciphertext = keyring.rotate(row.webhook_secret_ciphertext, context=webhook_ctx)
        except EncryptionError as exc:
            raise type(exc)(f"provider credential {row.id} (store {row.store_id}): {exc}") from None
        row.key_version = keyring.newest_version
        rotated += 1
    await session.flush()
    return RotationResult(newest_version=keyring.newest_version, rotated=rotated, current=current)
