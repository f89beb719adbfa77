"""The receipts' SAQ jobs (registered in workers/settings.py): tiny, calling app/receipts' services.

- ``create_receipts`` consumes order.placed, order.payment_changed and pos.shift_closed: the receipts they call
  for, each once (a unique source key), with their first delivery queued in the same transaction.
- ``deliver_receipt`` consumes receipt.delivery_queued: one attempt; a failure raises, so SAQ tries again with
  exponential backoff (the relay enqueues consumers with retries=5, retry_backoff).
- ``sweep_receipts`` (cron, every minute) delivers what waited too long: a lost job, a dead worker, a released
  RECEIPTS_PAUSED switch.
"""

from __future__ import annotations

import uuid
from typing import Any

from app.core.outbox import register_consumer
from app.receipts.channels.registry import default_channels
from app.receipts.delivery import ReceiptDeliveries
from app.receipts.services import DELIVERY_QUEUED, create_from_event
from app.webhooks.receipts import exactly_once
from workers.context import TillContext


def deliveries(ctx: TillContext) -> ReceiptDeliveries:
    sessions, settings = ctx["sessions"], ctx["settings"]
    return ReceiptDeliveries(sessions, settings, default_channels(sessions, settings))


@exactly_once
async def create_receipts(ctx: TillContext, *, event: dict[str, Any]) -> str:
    """A paid order, a refund or a closed shift: its receipt (once) and the first delivery."""
    made = await create_from_event(ctx["sessions"], event, default_channels(ctx["sessions"], ctx["settings"]))
    return f"made {made}" if made else "skipped"


@exactly_once
async def deliver_receipt(ctx: TillContext, *, event: dict[str, Any]) -> str:
    job = ctx.get("job")
    final = job is None or not job.retryable
    return await deliveries(ctx).deliver(uuid.UUID(event["aggregate_id"]), final_attempt=final)


async def sweep_receipts(ctx: TillContext) -> int:
    return await deliveries(ctx).sweep()


for _event in ("order.placed", "order.payment_changed", "pos.shift_closed"):
    register_consumer(_event, "create_receipts")
register_consumer(DELIVERY_QUEUED, "deliver_receipt")
