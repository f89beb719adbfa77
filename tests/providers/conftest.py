"""Provider tests: real Redis (TEST_REDIS_URL's server, database 11; or an embedded Valkey), flushed around every test,
and one localstripe server for the session (the Stripe provider's contract tests run against it).

These tests need no PostgreSQL, so they live outside ``tests/integration`` (whose autouse fixture
provisions one).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from app.core.embedded import EmbeddedServers
from app.payments.providers import StripeProvider
from app.payments.sandbox import SandboxProvider
from tests.localstripe import STRIPE_TEST_KEY, STRIPE_WEBHOOK_SECRET, localstripe_server
from tests.servers import ROOT

WEBHOOK_SECRET = "whsec_sandbox_test"
BASE_URL = "https://shop.example"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield urlunsplit(urlsplit(configured)._replace(path="/11"))
        return
    embedded = EmbeddedServers(ROOT / ".till" / "test-servers")
    yield embedded.start_valkey().rsplit("/", 1)[0] + "/11"
    embedded.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def sandbox(redis: Redis) -> SandboxProvider:
    return SandboxProvider(redis, webhook_secret=WEBHOOK_SECRET, base_url=BASE_URL + "/")


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A localstripe server of our own for the session (empty store), stopped at the end."""
    with localstripe_server(tmp_path_factory.mktemp("localstripe")) as url:
        yield url


@pytest.fixture
async def stripe_local(localstripe_url: str) -> AsyncIterator[StripeProvider]:
    """The Stripe provider pointed at localstripe (no retries: a failure shows at once)."""
    provider = StripeProvider(
        STRIPE_TEST_KEY,
        webhook_secret=STRIPE_WEBHOOK_SECRET,
        api_base=localstripe_url,
        max_network_retries=0,
        localstripe=True,
    )
    yield provider
    await provider.aclose()
