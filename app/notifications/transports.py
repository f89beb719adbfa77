"""How an e-mail leaves: SMTP (aiosmtplib) when SMTP_URL is set, else, outside production, a folder of .eml files.

A transport only sends; the delivery service (services.py) records attempts and outcomes around it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from app.config import Settings

SMTP_TIMEOUT_S = 20.0  # per SMTP command; the whole send is capped by the delivery service as well
NO_SMTP = "No SMTP server is configured (SMTP_URL)"


class Transport(Protocol):
    @property
    def name(self) -> str:
        """Recorded on the message: "smtp" | "outbox"."""

    async def send(self, message: EmailMessage) -> None:
        """Hand the message over; raise on any failure."""


class PermanentFailure(Exception):
    """The server refused the message for good (a 5xx answer): trying again would not help."""


@dataclass(frozen=True)
class SmtpTransport:
    """``smtp://user:pass@host:587`` (STARTTLS when the server offers it) or ``smtps://user:pass@host:465``."""

    url: str
    name: str = "smtp"

    async def send(self, message: EmailMessage) -> None:
        parts = urlsplit(self.url)
        implicit_tls = parts.scheme == "smtps"
        try:
            await aiosmtplib.send(
                message,
                hostname=parts.hostname,
                port=parts.port or (465 if implicit_tls else 587),
                username=unquote(parts.username) if parts.username else None,
                password=unquote(parts.password) if parts.password else None,
                use_tls=implicit_tls,
                start_tls=None if not implicit_tls else False,  # None: upgrade when the server offers STARTTLS
                timeout=SMTP_TIMEOUT_S,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"Recipient refused: {exc.recipients[0] if exc.recipients else exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"SMTP {exc.code}: {exc.message}") from exc
            raise


@dataclass(frozen=True)
class FolderTransport:
    """Development and tests: each message becomes ``<folder>/<message id>.eml`` (sending again overwrites it)."""

    folder: Path
    name: str = "outbox"

    async def send(self, message: EmailMessage) -> None:
        message_id = str(message.get("X-Till-Message", "")) or make_msgid().strip("<>")
        path = self.folder / f"{message_id}.eml"
        await asyncio.to_thread(_write, path, message.as_bytes())


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)  # a reader never sees half a message


def outbox_folder(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


def transport_for(settings: Settings) -> Transport | None:
    """SMTP when configured; the dev folder outside production; None (nothing can send) in production."""
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url)
    if settings.is_production:
        return None
    return FolderTransport(outbox_folder(settings))


@dataclass(frozen=True)
class Envelope:
    """What the delivery service hands a transport, built from an OutboundMessage row."""

    message_id: str
    sender: str
    to: str
    subject: str
    text: str
    html: str

    def to_email(self) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = self.to
        email["Subject"] = self.subject
        email["Date"] = format_datetime(datetime.now(UTC))
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "till.invalid"
        # The same Message-ID on every attempt: a receiving server or mailbox can recognise a repeat.
        email["Message-ID"] = f"<{self.message_id}@{domain}>"
        email["X-Till-Message"] = self.message_id
        email.set_content(self.text)
        if self.html:
            email.add_alternative(self.html, subtype="html")
        return email
