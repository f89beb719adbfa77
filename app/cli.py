"""`till`: up, serve, worker, db, seed, store, user, keys."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from app.config import ConfigError, Settings, load_settings, redact_url

if TYPE_CHECKING:
    from app.payments.credentials import RotationResult

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    click.echo(f"till: {message}", err=True)
    sys.exit(2)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]


def _reachable(host: str) -> str:
    """Where this machine reaches a server listening on ``host``: loopback for "every interface"."""
    try:
        return "127.0.0.1" if ipaddress.ip_address(host).is_unspecified else host
    except ValueError:  # a name
        return host


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class Services:
    """The database and Redis this command uses: from the URLs, or embedded ones it starts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: Any = None

    def __enter__(self) -> Settings:
        # uvicorn re-raises the SIGTERM it shut down on; its default action ends the process on the spot, before
        # `till up` stops its worker and the embedded servers. As an exception it unwinds through them instead.
        if threading.current_thread() is threading.main_thread():  # only there can Python handle signals
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        database_url, redis_url = self.settings.database_url, self.settings.redis_url
        if database_url is None or redis_url is None:
            from app.core.embedded import EmbeddedServers

            self.embedded = EmbeddedServers(self.settings.data_dir)
            if database_url is None:
                database_url = self.embedded.start_postgres()
            if redis_url is None:
                redis_url = self.embedded.start_valkey()
            # Children (the worker, uvicorn's app factory) read the same settings from the environment.
            os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = database_url, redis_url
            os.environ.setdefault("TILL_DATA_DIR", str(self.settings.data_dir))
        return _settings()

    def __exit__(self, *exc: object) -> None:
        if self.embedded is not None:
            self.embedded.stop()


async def _check_database(settings: Settings, *, need_migrated: bool) -> None:
    import asyncpg

    from app.core.db import create_engine, migration_problem, migration_state

    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1)
    where = redact_url(settings.database_url)
    try:
        current, head = await migration_state(engine)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"cannot reach the database at {where}: {reason}")
    except Exception as exc:
        cause = exc.__cause__ or exc
        reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        fail(f"cannot reach the database at {where}: {reason}")
    finally:
        await engine.dispose()
    problem = migration_problem(current, head)
    if need_migrated and problem:
        fail(problem)


async def _check_redis(settings: Settings) -> None:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(settings.redis_url or "", socket_connect_timeout=3)
    try:
        await client.ping()  # type: ignore[misc]  # redis-py types ping as sync-or-async
    except (RedisError, OSError) as exc:
        fail(f"cannot reach Redis at {redact_url(settings.redis_url or '')}: {exc}")
    finally:
        await client.aclose()


def _migrate(settings: Settings, revision: str = "head") -> None:
    from alembic import command

    from app.core.db import alembic_config

    assert settings.database_url is not None
    command.upgrade(alembic_config(settings.database_url), revision)


async def _seed(settings: Settings) -> bool:
    from app.core.db import create_engine, session_maker
    from app.seed import seed_demo

    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with session_maker(engine)() as session, session.begin():
            return await seed_demo(session)
    finally:
        await engine.dispose()


def _raise_open_files_limit() -> int:
    """Every open board or order page is a socket: lift the soft limit on open files (often 1,024) to the
    hard one. uvicorn itself caps nothing (no limit_concurrency); this is what would. Returns the limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    _raise_open_files_limit()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,  # open SSE streams (the board) never finish on their own
    )


@click.group()
def main() -> None:
    """Till: commerce for independent shops and restaurants."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def up(host: str, port: int) -> None:
    """Start everything: embedded servers (unless URLs are set), migrate, seed, web app and a worker."""
    started = time.monotonic()
    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=False))
        _run(lambda: _check_redis(settings))
        _migrate(settings)
        seeded = _run(lambda: _seed(settings))
        demo_orders: list[str] = []
        if seeded:  # a few orders along the board, so the board and the order list are not empty at first
            from app.seed import seed_demo_orders

            demo_orders = _run(lambda: seed_demo_orders(settings))
        # The worker posts the sandbox bank's webhooks to this app: unless told otherwise, where it listens.
        os.environ.setdefault("PUBLIC_URL", f"http://{_reachable(host)}:{port}")
        worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"])
        try:
            from app.seed import DEMO_ACCOUNTS, DEMO_PASSWORD

            click.echo(
                f"\nTill is starting on http://{host}:{port}  (ready in {time.monotonic() - started:.1f}s"
                f"{', demo store seeded' if seeded else ''}"
                f"{' with orders ' + ', '.join(demo_orders) if demo_orders else ''})\n"
                f"  storefront  http://{host}:{port}/\n"
                f"  staff       http://{host}:{port}/signin   e-mail {DEMO_ACCOUNTS[0].email}  "
                f"password {DEMO_PASSWORD}\n"
                + (f"  your shop   http://{host}:{port}/start\n" if settings.signup_open else "")
                + f"  data        {settings.data_dir}\n"
                "Press Ctrl-C to stop.\n"
            )
            _serve(settings, host, port)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
            click.echo("Till stopped.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="web processes")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the web app (no migrations, no worker)."""
    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        _run(lambda: _check_redis(settings))
        _serve(settings, host, port, workers)


@main.command()
@click.option("--concurrency", default=10, show_default=True, type=int)
def worker(concurrency: int) -> None:
    """Run a SAQ worker and the outbox relay."""
    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        from app.core.logging import configure_logging
        from workers.settings import build_worker

        configure_logging(settings.log_level)
        # SAQ's worker stops itself on SIGINT / SIGTERM, letting running jobs finish for a grace period.
        asyncio.run(build_worker(settings, concurrency=concurrency).start())


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=False))
        _migrate(settings, revision)
        click.echo(f"database upgraded to {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    from alembic import command

    from app.core.db import alembic_config

    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=False))
        assert settings.database_url is not None
        command.downgrade(alembic_config(settings.database_url), revision)
        click.echo(f"database downgraded to {revision}")


@db.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate/--empty", default=True)
def db_revision(message: str, autogenerate: bool) -> None:
    from alembic import command

    from app.core.db import alembic_config

    with Services(_settings()) as settings:
        assert settings.database_url is not None
        command.revision(alembic_config(settings.database_url), message=message, autogenerate=autogenerate)


@main.command()
def seed() -> None:
    """Create the demo store unless it exists."""
    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        created = _run(lambda: _seed(settings))
        click.echo("demo store created" if created else "demo store exists already")


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--store", "store_slug", required=True, help="store slug")
@click.option("--role", type=click.Choice(["owner", "manager", "staff", "cashier"]), default="staff", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def user_create(email: str, name: str, store_slug: str, role: str, password: str) -> None:
    """Create a staff user and add them to a store."""
    from sqlalchemy import select

    from app.core.db import create_engine, session_maker
    from app.core.errors import TillError
    from app.core.rbac import Role
    from app.stores.models import Store
    from app.stores.services import UserService

    async def create(settings: Settings) -> None:
        assert settings.database_url is not None
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with session_maker(engine)() as session, session.begin():
                service = UserService(session)
                store = await session.scalar(select(Store).where(Store.slug == store_slug))
                if store is None:
                    fail(f"no store with slug {store_slug!r}")
                new_user = await service.create_user(email=email, name=name, password=password)
                await service.add_member(store, new_user, Role(role))
        except TillError as exc:
            details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.detail
            fail(details)
        finally:
            await engine.dispose()

    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        _run(lambda: create(settings))
        click.echo(f"created {role} {email} in {store_slug}")


@main.group()
def store() -> None:
    """Stores (tenants)."""


@store.command("create")
@click.option("--name", required=True)
@click.option("--slug", required=True, help="the storefront's address: /s/SLUG")
@click.option("--currency", required=True, help="ISO-4217, e.g. SEK")
@click.option("--country", required=True, help="ISO-3166 alpha-2, e.g. SE")
@click.option("--timezone", required=True, help="IANA, e.g. Europe/Stockholm")
@click.option("--owner-email", required=True, help="an existing staff account, or a new one (asks name and password)")
@click.option("--owner-name", default=None, help="for a new owner account")
def store_create(
    name: str, slug: str, currency: str, country: str, timezone: str, owner_email: str, owner_name: str | None
) -> None:
    """Create a store (not live yet: its owner finishes the setup checklist and goes live)."""
    from sqlalchemy import select

    from app.core.db import create_engine, session_maker
    from app.core.errors import TillError
    from app.stores.models import User
    from app.stores.onboarding import NewStore, OnboardingService
    from app.stores.services import UserService, normalise_email

    async def owner_exists(settings: Settings) -> bool:
        assert settings.database_url is not None
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with session_maker(engine)() as session:
                email = normalise_email(owner_email)
                return await session.scalar(select(User.id).where(User.email == email)) is not None
        finally:
            await engine.dispose()

    async def create(settings: Settings, new_owner: tuple[str, str] | None) -> None:
        assert settings.database_url is not None
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with session_maker(engine)() as session, session.begin():
                onboarding = OnboardingService(session)
                if new_owner is None:
                    owner = await session.scalar(select(User).where(User.email == normalise_email(owner_email)))
                    assert owner is not None
                else:
                    owner = await UserService(session).create_user(
                        email=owner_email, name=new_owner[0], password=new_owner[1]
                    )
                await onboarding.create_store(NewStore(name, slug, currency, country, timezone), owner)
        except TillError as exc:
            fail("; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.detail)
        finally:
            await engine.dispose()

    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        new_owner = None
        if not _run(lambda: owner_exists(settings)):
            owner_name = owner_name or click.prompt("Owner's name")
            password = click.prompt("Owner's password", hide_input=True, confirmation_prompt=True)
            new_owner = (owner_name, password)
        _run(lambda: create(settings, new_owner))
        click.echo(
            f"created store {slug} ({currency}, {country}); owner {owner_email}; not live until its owner goes live"
        )


@main.group()
def keys() -> None:
    """Encryption keys for secrets at rest (ENCRYPTION_KEYS)."""


async def rotate_keys(settings: Settings) -> RotationResult:
    """Re-encrypt every stored secret under the newest key version, in one transaction (idempotent)."""
    from app.core.db import create_engine, session_maker
    from app.core.encryption import keyring_from_settings
    from app.ingestion.credentials import rotate_ingestion_secrets
    from app.payments.credentials import RotationResult, rotate_credentials
    from app.pos.shifts import rotate_offline_keys

    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with session_maker(engine)() as session, session.begin():
            keyring = keyring_from_settings(settings)
            providers = await rotate_credentials(session, keyring)
            ingestion = await rotate_ingestion_secrets(session, keyring)  # the stores' order ingestion secrets
            shifts = await rotate_offline_keys(session, keyring)  # the POS shifts' offline keys
            done = (providers, ingestion, shifts)
            return RotationResult(providers.newest_version, sum(r.rotated for r in done), sum(r.current for r in done))
    finally:
        await engine.dispose()


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt provider credentials with the newest key in ENCRYPTION_KEYS. Prints counts only."""
    from app.core.encryption import EncryptionError

    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        try:
            result = _run(lambda: rotate_keys(settings))
        except EncryptionError as exc:
            fail(f"nothing was rotated: {exc}")
        click.echo(
            f"key version {result.newest_version}: {result.rotated} credential(s) re-encrypted, "
            f"{result.current} already current"
        )


@main.group()
def platform() -> None:
    """The platform owner's settings for stores (stores cannot change these)."""


@platform.command("fee")
@click.option("--store", "store_slug", required=True, help="store slug")
@click.option("--bps", required=True, type=int, help="share of each payment in basis points (100 = 1 %), 0-10000")
@click.option("--fixed", required=True, type=int, help="fixed part per payment in minor units (cents), 0 or more")
def platform_fee(store_slug: str, bps: int, fixed: int) -> None:
    """Set the platform's application fee on a store's payments."""
    from app.core.db import create_engine, session_maker
    from app.core.errors import TillError
    from app.core.money import Money
    from app.payments.connect import fee_percent, set_platform_fee

    async def apply(settings: Settings) -> str:
        assert settings.database_url is not None
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with session_maker(engine)() as session, session.begin():
                store = await set_platform_fee(session, slug=store_slug, bps=bps, fixed_minor=fixed)
                return store.currency
        except TillError as exc:
            fail("; ".join(f"--{k}: {v}" for k, v in exc.fields.items()) or exc.detail)
        finally:
            await engine.dispose()

    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        currency = _run(lambda: apply(settings))
        fixed_text = Money(fixed, currency).format("en_US")
        click.echo(
            f"platform fee for {store_slug}: {fee_percent(bps)} + {fixed_text} per payment ({bps} bps + {fixed})"
        )


@main.group()
def switch() -> None:
    """Kill switches (docs/operations.md): engage, release, list. Without --store: every store (global)."""


def _switch_names() -> list[str]:
    from app.core.kill_switches import Switch

    return [s.value for s in Switch]


async def _switch_apply(settings: Settings, action: str, name: str, store_slug: str | None, reason: str) -> str:
    from redis.asyncio import Redis
    from sqlalchemy import select

    from app.core import kill_switches as ks
    from app.core.db import create_engine, session_maker
    from app.stores.models import Store

    assert settings.database_url is not None and settings.redis_url is not None
    engine = create_engine(settings.database_url, pool_size=1)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with session_maker(engine)() as session:
            async with session.begin():
                store_id = None
                if store_slug is not None:
                    store_id = await session.scalar(select(Store.id).where(Store.slug == store_slug))
                    if store_id is None:
                        fail(f"--store: no store {store_slug!r}")
                change = ks.engage if action == "engage" else ks.release
                changed = await change(
                    session, ks.Switch(name), store_id, principal=None, reason=reason, actor="till CLI"
                )
            await ks.refresh_mirror(session, redis)
        scope = store_slug or "every store (global)"
        verb = "engaged" if action == "engage" else "released"
        if not changed:
            return f"{name} was already {'on' if action == 'engage' else 'off'} for {scope}"
        return f"{name} {verb} for {scope}"
    finally:
        await redis.aclose()
        await engine.dispose()


@switch.command("engage")
@click.argument("name", type=click.Choice(_switch_names()))
@click.option("--store", "store_slug", default=None, help="store slug; without it, every store")
@click.option("--reason", default="", help="why (kept in the audit trail)")
def switch_engage(name: str, store_slug: str | None, reason: str) -> None:
    """Engage a kill switch."""
    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        click.echo(_run(lambda: _switch_apply(settings, "engage", name, store_slug, reason)))


@switch.command("release")
@click.argument("name", type=click.Choice(_switch_names()))
@click.option("--store", "store_slug", default=None, help="store slug; without it, the global switch")
@click.option("--reason", default="", help="why (kept in the audit trail)")
def switch_release(name: str, store_slug: str | None, reason: str) -> None:
    """Release a kill switch."""
    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        click.echo(_run(lambda: _switch_apply(settings, "release", name, store_slug, reason)))


@switch.command("list")
def switch_list() -> None:
    """Every engaged switch."""
    from sqlalchemy import select

    from app.core import kill_switches as ks
    from app.core.db import create_engine, session_maker
    from app.stores.models import Store

    async def listing(settings: Settings) -> list[str]:
        assert settings.database_url is not None
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with session_maker(engine)() as session:
                rows = await ks.all_engaged(session)
                slugs = dict((await session.execute(select(Store.id, Store.slug))).tuples().all()) if rows else {}
                return [
                    f"{row.switch}\t{slugs.get(row.store_id, '?') if row.store_id else 'global'}\t"
                    f"{row.engaged_by}\t{row.created_at:%Y-%m-%d %H:%M}Z\t{row.reason}"
                    for row in rows
                ]
        finally:
            await engine.dispose()

    with Services(_settings()) as settings:
        _run(lambda: _check_database(settings, need_migrated=True))
        lines = _run(lambda: listing(settings))
        click.echo("\n".join(lines) if lines else "no kill switch is engaged")


if __name__ == "__main__":
    main()
