"""Every model, imported once so Alembic and the mappers see the whole schema."""

from app.core.idempotency import IdempotencyKey
from app.core.outbox import OutboxEvent
from app.stores.models import ApiToken, Membership, Store, User

__all__ = ["ApiToken", "IdempotencyKey", "Membership", "OutboxEvent", "Store", "User"]
