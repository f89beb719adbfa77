"""Settings from the environment: the only place that reads ``os.environ``.

With no ``DATABASE_URL`` / ``REDIS_URL`` the embedded servers under ``TILL_DATA_DIR``
are used (``till up`` starts them and passes their URLs down to its children).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

Environment = Literal["dev", "test", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("dev", "test", "production")


class ConfigError(Exception):
    """A setting has a bad value. The message is one line a person can act on."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    redis_url: str | None
    secret_key: str
    data_dir: Path
    env: Environment
    default_store: str
    log_level: str
    # Keys that encrypt secrets at rest (app/core/encryption.py): (version, 32 raw bytes), newest first.
    # Empty: version 1 is derived from SECRET_KEY. Never in a repr.
    encryption_keys: tuple[tuple[int, bytes], ...] = field(default=(), repr=False)
    # Where the Stripe SDK sends requests: None is api.stripe.com; tests and local runs point it at localstripe.
    stripe_api_base: str | None = None
    # This app's own base URL, for what it sends itself (the sandbox's webhooks, through /webhooks/sandbox).
    public_url: str = "http://127.0.0.1:8000"
    # The platform's Stripe webhook signing secret (Connect events: /webhooks/stripe). None: that route is off.
    stripe_platform_webhook_secret: str | None = field(default=None, repr=False)
    # Whether anyone may open a store at /start (TILL_SIGNUP=open|closed; open by default except in production).
    signup_open: bool = True
    # Outbound e-mail (app/notifications): ``smtp://user:pass@host:port`` (STARTTLS when offered) or ``smtps://``
    # (TLS from the start). None: dev/test write .eml files to <data_dir>/outbox; production marks mail failed.
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str = "Till <till@localhost>"
    # WhatsApp receipts (app/receipts/channels/whatsapp.py): off unless all four are set. The Cloud API's base
    # with the phone number id (https://graph.facebook.com/v21.0/<phone number id>), its access token, the app
    # secret that signs status webhooks, and the approved template's name. Secrets never in a repr.
    whatsapp_api_url: str | None = None
    whatsapp_token: str | None = field(default=None, repr=False)
    whatsapp_app_secret: str | None = field(default=None, repr=False)
    whatsapp_template: str = "receipt"
    # Media (app/media): None stores files under <data_dir>/media; ``s3://KEY:SECRET@host:port/bucket?region=..``
    # (or ``s3://bucket`` with the AWS default credentials) uses S3-compatible object storage. Never in a repr.
    media_storage_url: str | None = field(default=None, repr=False)
    media_quota_bytes: int = 1024**3  # per store, unless the store has its own media_quotas row
    media_quota_count: int = 500

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def normalise_database_url(raw: str) -> str:
    """Validate a PostgreSQL URL and return it with the asyncpg driver."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL is not a valid URL ({redact_url(raw)!r}); "
            "expected postgresql://user:password@host:5432/dbname"
        ) from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"DATABASE_URL must be a PostgreSQL URL (postgresql://...), got {url.get_backend_name()!r}")
    if url.get_driver_name() not in ("asyncpg", "psycopg2", "psycopg", ""):
        raise ConfigError(f"DATABASE_URL driver {url.get_driver_name()!r} is not supported; use asyncpg")
    if not url.database:
        raise ConfigError("DATABASE_URL names no database (add /dbname at the end)")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def normalise_redis_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix:// (got {redact_url(raw)!r})")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"REDIS_URL names no host ({redact_url(raw)!r})")
    return raw


def normalise_smtp_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(
            f"SMTP_URL must look like smtp://user:pass@host:587 or smtps://host:465 (got {redact_url(raw)!r})"
        )
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number from 0 to 65535)
    except ValueError:
        raise ConfigError(f"SMTP_URL has a bad port ({redact_url(raw)!r})") from None
    return raw


def validate_mail_from(raw: str) -> str:
    _, address = parseaddr(raw)
    if "@" not in address or "\n" in raw or "\r" in raw:
        raise ConfigError(
            f"MAIL_FROM must be an e-mail address, optionally with a name: 'Shop <shop@example.com>' (got {raw!r})"
        )
    return raw.strip()


def redact_url(raw: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    parts = urlsplit(raw)
    if parts.password:
        return raw.replace(f":{parts.password}@", ":***@", 1)
    return raw


ENCRYPTION_KEY_BYTES = 32


def parse_encryption_keys(raw: str | None) -> tuple[tuple[int, bytes], ...]:
    """``ENCRYPTION_KEYS="2:<base64 of 32 bytes>,1:<base64>"`` → ((2, key), (1, key)), newest first.

    Messages name the entry by its position and version, never its key material."""
    if not raw or not raw.strip():
        return ()
    keys: dict[int, bytes] = {}
    for position, entry in enumerate(raw.split(","), start=1):
        version_text, sep, encoded = entry.strip().partition(":")
        if not sep or not version_text.strip().isdigit() or int(version_text) < 1:
            raise ConfigError(
                f"ENCRYPTION_KEYS entry {position} must look like <version>:<base64 key> with a version from 1 up"
            )
        version = int(version_text)
        if version in keys:
            raise ConfigError(f"ENCRYPTION_KEYS names version {version} twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != ENCRYPTION_KEY_BYTES:
            raise ConfigError(
                f"ENCRYPTION_KEYS version {version} must be {ENCRYPTION_KEY_BYTES} random bytes in base64 "
                "(make one with: python -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())')"
            )
        keys[version] = key
    return tuple(sorted(keys.items(), reverse=True))


def _secret_key(env: Environment, raw: str | None, data_dir: Path) -> str:
    if raw:
        if len(raw) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters long")
        return raw
    if env == "production":
        raise ConfigError("SECRET_KEY must be set when TILL_ENV=production")
    # Development: one random key per data folder, kept so sessions survive restarts.
    key_file = data_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise ConfigError with one clear line on a bad value."""
    env_vars = os.environ if environ is None else environ
    env = env_vars.get("TILL_ENV", "dev")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"TILL_ENV must be one of {', '.join(ENVIRONMENTS)} (got {env!r})")
    data_dir = Path(env_vars.get("TILL_DATA_DIR", ".till")).expanduser().resolve()
    database_url = env_vars.get("DATABASE_URL") or None
    redis_url = env_vars.get("REDIS_URL") or None
    log_level = env_vars.get("TILL_LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"TILL_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got {log_level!r})")
    return Settings(
        database_url=normalise_database_url(database_url) if database_url else None,
        redis_url=normalise_redis_url(redis_url) if redis_url else None,
        secret_key=_secret_key(env, env_vars.get("SECRET_KEY"), data_dir),
        data_dir=data_dir,
        env=env,
        default_store=env_vars.get("TILL_DEFAULT_STORE", "demo"),
        log_level=log_level,
        encryption_keys=parse_encryption_keys(env_vars.get("ENCRYPTION_KEYS")),
        stripe_api_base=env_vars.get("STRIPE_API_BASE") or None,
        public_url=(env_vars.get("PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
        stripe_platform_webhook_secret=env_vars.get("STRIPE_PLATFORM_WEBHOOK_SECRET") or None,
        signup_open=_signup_open(env, env_vars.get("TILL_SIGNUP")),
        smtp_url=normalise_smtp_url(smtp_url) if (smtp_url := env_vars.get("SMTP_URL")) else None,
        mail_from=validate_mail_from(env_vars.get("MAIL_FROM") or "Till <till@localhost>"),
        whatsapp_api_url=(env_vars.get("WHATSAPP_API_URL") or "").rstrip("/") or None,
        whatsapp_token=env_vars.get("WHATSAPP_TOKEN") or None,
        whatsapp_app_secret=env_vars.get("WHATSAPP_APP_SECRET") or None,
        whatsapp_template=env_vars.get("WHATSAPP_TEMPLATE") or "receipt",
        media_storage_url=_media_storage_url(env_vars.get("MEDIA_STORAGE_URL")),
        media_quota_bytes=_positive_int("MEDIA_QUOTA_BYTES", env_vars.get("MEDIA_QUOTA_BYTES"), 1024**3),
        media_quota_count=_positive_int("MEDIA_QUOTA_COUNT", env_vars.get("MEDIA_QUOTA_COUNT"), 500),
    )


def _media_storage_url(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme != "s3" or not (parts.hostname or "").strip():
        raise ConfigError(
            f"MEDIA_STORAGE_URL must look like s3://KEY:SECRET@host:9000/bucket (got {redact_url(raw)!r})"
        )
    return raw.strip()


def _positive_int(name: str, raw: str | None, default: int) -> int:
    if raw is None or not raw.strip():
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a whole number above 0 (got {raw!r})")
    return int(raw)


def _signup_open(env: Environment, raw: str | None) -> bool:
    if raw is None or not raw.strip():
        return env != "production"
    value = raw.strip().lower()
    if value not in ("open", "closed"):
        raise ConfigError(f"TILL_SIGNUP must be open or closed (got {raw!r})")
    return value == "open"
