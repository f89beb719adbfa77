"""One checkout paying part with a gift card, in a process of its own that stops right after the provider took
the card's part, so a test can kill it (SIGKILL): the card is charged, the stock reserved, the gift card held,
nothing else recorded.

    python -m tests.integration.stored_value_crash STORE_ID SNAPSHOT_ID CODE    (settings from the environment)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

from redis.asyncio import Redis

from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings, load_settings
from app.core.db import create_engine, session_maker
from app.payments.provider import CardDetails
from app.payments.registry import sandbox_webhook_secret
from app.stored_value.instruments import TenderRequest
from app.stores.models import Store
from tests.integration.crashing_checkout import ROOT, StopsAfterAuthorising


async def charge_then_kill(settings: Settings, store_id: uuid.UUID, snapshot_id: uuid.UUID, code: str) -> str:
    """Run the checkout in its own process, kill it once the card is charged; the payment's reference."""
    assert settings.database_url and settings.redis_url
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SECRET_KEY": settings.secret_key,
        "TILL_ENV": "test",
        "TILL_DATA_DIR": str(settings.data_dir),
        "TILL_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, str(store_id), str(snapshot_id), code,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        said = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    finally:
        process.kill()
        await process.wait()
    assert said.startswith(b"authorised "), said
    assert process.returncode == -signal.SIGKILL
    return said.split()[1].decode()


async def main(store_id: uuid.UUID, snapshot_id: uuid.UUID, code: str) -> None:
    settings = load_settings()
    assert settings.database_url and settings.redis_url
    sessions = session_maker(create_engine(settings.database_url))
    async with sessions() as session:
        store = await session.get(Store, store_id)
    assert store is not None
    provider = StopsAfterAuthorising(
        Redis.from_url(settings.redis_url), webhook_secret=sandbox_webhook_secret(settings)
    )
    card = CardDetails("4242424242424242", 12, 2034, "123")
    payment = PaymentInput(card=card, tenders=(TenderRequest("gift_card", code=code),))
    await CheckoutSaga(sessions, store, provider).complete(snapshot_id, "killed", payment, fingerprint="f")


if __name__ == "__main__":
    asyncio.run(main(uuid.UUID(sys.argv[1]), uuid.UUID(sys.argv[2]), sys.argv[3]))
