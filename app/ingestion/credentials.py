"""A store's ingestion signing secret, encrypted at rest (Invariant 9), shown once, rotatable.

The secret is made here (never typed in), encrypted with the process keyring bound to its row and column,
and shown to the owner once. Rotating keeps the previous secret valid for ``ROTATION_GRACE`` so the app can
switch without refused orders; a second rotation ends that grace at once. What anyone sees afterwards is a
hint (``tis_…a1b2``) and who made it when.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.encryption import EncryptionError, Keyring, current_keyring
from app.core.outbox import emit
from app.core.tenancy import bind_store, system_scope
from app.ingestion.models import IngestionSecret
from app.payments.credentials import RotationResult

SECRET_PREFIX = "tis_"  # noqa: S105  (till ingestion secret: a prefix, not a secret)
ROTATION_GRACE = timedelta(hours=24)


def _context(store_id: uuid.UUID, column: str) -> str:
    return f"ingestion_secrets/{store_id}/{column}"


def hint(secret: str) -> str:
    return f"{SECRET_PREFIX}…{secret[-4:]}"


@dataclass(frozen=True)
class SecretHint:
    hint: str
    updated_at: datetime
    updated_by: str
    previous_valid_until: datetime | None

    @property
    def grace(self) -> bool:
        return self.previous_valid_until is not None and self.previous_valid_until > datetime.now(UTC)


class IngestionSecretService:
    """The signed-in store's ingestion secret. The only writer of ``ingestion_secrets``."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID, *, keyring: Keyring | None = None) -> None:
        self.session = session
        self.store_id = store_id
        self.keyring = keyring or current_keyring()
        bind_store(session, store_id)

    async def _row(self, *, lock: bool = False) -> IngestionSecret | None:
        stmt = select(IngestionSecret)
        row: IngestionSecret | None = await self.session.scalar(stmt.with_for_update() if lock else stmt)
        return row

    async def current(self) -> SecretHint | None:
        row = await self._row()
        if row is None:
            return None
        return SecretHint(row.hint, row.updated_at, row.updated_by, row.previous_valid_until)

    async def rotate(self, *, updated_by: str = "", updated_by_id: uuid.UUID | None = None) -> str:
        """Make a new secret (the first, or a replacement) and return it: the only time it is readable.

        The secret it replaces stays valid for ``ROTATION_GRACE``."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        row = await self._row(lock=True)
        if row is None:
            row = IngestionSecret(store_id=self.store_id)
            self.session.add(row)
        else:  # the current one becomes the previous one, re-encrypted for its new column
            old = self.keyring.decrypt(row.secret_ciphertext, context=_context(self.store_id, "secret"))
            row.previous_ciphertext = self.keyring.encrypt(old, context=_context(self.store_id, "previous"))
            row.previous_valid_until = now + ROTATION_GRACE
        row.secret_ciphertext = self.keyring.encrypt(secret, context=_context(self.store_id, "secret"))
        row.key_version = self.keyring.newest_version
        row.hint = hint(secret)
        row.updated_by = updated_by[:120]
        row.updated_by_id = updated_by_id
        await self.session.flush()
        # The event says that it changed, never what it is.
        emit(self.session, "ingestion_secret.rotated", aggregate_type="store", aggregate_id=self.store_id)
        return secret

    async def end_grace(self) -> None:
        """Stop accepting the previous secret now (the app uses the new one)."""
        row = await self._row(lock=True)
        if row is not None:
            row.previous_ciphertext, row.previous_valid_until = None, None
            await self.session.flush()


_SECRETS_SQL = """
    SELECT secret_ciphertext, previous_ciphertext, previous_valid_until FROM ingestion_secrets WHERE store_id = $1
"""


async def verifying_secrets(
    conn: pg.Connection, store_id: uuid.UUID, *, now: datetime, keyring: Keyring | None = None
) -> list[str]:
    """The secrets a signature may be made with now: the current one, and the previous one during its grace.
    Empty when the store has none (ingestion is not set up)."""
    keyring = keyring or current_keyring()
    row = await conn.fetchrow(_SECRETS_SQL, store_id)
    if row is None:
        return []
    found = [keyring.decrypt(row["secret_ciphertext"], context=_context(store_id, "secret"))]
    if row["previous_ciphertext"] and row["previous_valid_until"] and row["previous_valid_until"] > now:
        found.append(keyring.decrypt(row["previous_ciphertext"], context=_context(store_id, "previous")))
    return found


async def rotate_ingestion_secrets(session: AsyncSession, keyring: Keyring) -> RotationResult:
    """Re-encrypt every store's ingestion secrets under the newest key (part of ``till keys rotate``).

    Idempotent; a row that cannot be decrypted stops it (and its transaction) naming the row."""
    system_scope(session)
    rows = await session.scalars(select(IngestionSecret).order_by(IngestionSecret.id).with_for_update())
    rotated = current = 0
    for row in rows:
        values = [row.secret_ciphertext, *([row.previous_ciphertext] if row.previous_ciphertext else [])]
        if row.key_version == keyring.newest_version and all(keyring.is_current(v) for v in values):
            current += 1
            continue
        try:
            row.secret_ciphertext = keyring.rotate(row.secret_ciphertext, context=_context(row.store_id, "secret"))
            if row.previous_ciphertext:
                row.previous_ciphertext = keyring.rotate(
                    row.previous_ciphertext, context=_context(row.store_id, "previous")
                )
        except EncryptionError as exc:
            raise type(exc)(f"ingestion secret {row.id} (store {row.store_id}): {exc}") from None
        row.key_version = keyring.newest_version
        rotated += 1
    await session.flush()
    return RotationResult(newest_version=keyring.newest_version, rotated=rotated, current=current)
