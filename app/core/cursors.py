"""Keyset page cursors: (moment, id) of the last row, opaque to clients (URL-safe base64)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from app.core.errors import ValidationFailed


def encode_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (moment, id) a cursor names; a 422 naming ``cursor`` for anything we did not give out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, row_id = raw.split("|")
        at = datetime.fromisoformat(moment)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("This page link is not valid.", fields={"cursor": "Not a cursor we gave."}) from exc
