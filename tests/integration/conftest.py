"""Integration fixtures: a real PostgreSQL + Redis, the app through Litestar's test client."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.db import create_engine, dispose, session_maker
from app.core.rbac import Role
from app.main import create_app
from app.stores.models import Store, User
from app.stores.services import UserService
from tests.servers import provision_servers

PASSWORD = "correct horse battery"
TENANT_TABLES = "stores, users, memberships, api_tokens, idempotency_keys, outbox_events"


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    with provision_servers() as urls:
        yield urls


@pytest.fixture(scope="session")
def settings(server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    database_url, redis_url = server_urls
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        secret_key="test-secret-key-" + "x" * 32,
        data_dir=Path(tmp_path_factory.mktemp("till-data")),
        env="test",
        default_store="demo",
        log_level="WARNING",
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    assert settings.database_url
    engine = create_engine(settings.database_url)
    yield engine
    await dispose(engine)


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_maker(engine)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url or "")
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def clean_state(engine: AsyncEngine, settings: Settings) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TENANT_TABLES} CASCADE"))
    client = Redis.from_url(settings.redis_url or "")
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        client.follow_redirects = False  # tests assert on the 303s themselves
        yield client


@dataclass
class StaffMember:
    store: Store
    user: User
    role: Role
    email: str


class World:
    """Creates stores and staff straight through the services."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def store(self, slug: str | None = None, *, currency: str = "EUR") -> Store:
        slug = slug or f"shop-{uuid.uuid4().hex[:8]}"
        async with self.sessions() as session, session.begin():
            return await UserService(session).create_store(
                name=slug.title(), slug=slug, currency=currency, timezone="Europe/Berlin"
            )

    async def staff(self, store: Store, role: Role = Role.OWNER, email: str | None = None) -> StaffMember:
        email = email or f"{role.value}-{uuid.uuid4().hex[:6]}@example.com"
        async with self.sessions() as session, session.begin():
            service = UserService(session)
            user = await service.create_user(email=email, name=f"{role.value.title()} Person", password=PASSWORD)
            await service.add_member(store, user, role)
        return StaffMember(store=store, user=user, role=role, email=email)


@pytest.fixture
def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    return World(sessions)


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


async def sign_in(client: AsyncTestClient[Litestar], email: str, password: str = PASSWORD) -> None:
    page = await client.get("/signin")
    response = await client.post(
        "/signin",
        data={"email": email, "password": password, "_csrf_token": csrf_from(page.text), "next": "/staff"},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/staff"


async def issue_token(world: World, store: Store, role: Role = Role.OWNER) -> str:
    from app.stores.services import ApiTokenService

    async with world.sessions() as session, session.begin():
        _, secret = await ApiTokenService.for_store(session, store.id).issue(name="test", role=role, created_by=None)
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}
