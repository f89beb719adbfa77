"""Stored value on the hot path (ADR 0003, 0006): CTE fragments that hold tenders inside the statement that claims a
checkout attempt, and capture them inside the statement that places its order.

Holding (step 2, with the attempt's claim): after the caller's stock rows (and promotion rows), the tenders'
account rows are locked in id order (``FOR UPDATE`` re-reads each row as its last committer left it, so two
checkouts spending one card queue on its row and the second sees the first's hold); ``sv_short`` lists every
tender its account cannot cover; the caller gates its holder on it being empty; then ``held_minor`` goes up and
one open hold + one ``hold`` entry per tender are written, only when the holder was claimed.

Capturing (step 3, with the order): the attempt's open holds become ``captured`` with the order's id, the balance
and ``held_minor`` go down, ``capture`` entries are written; the caller gates its placing on every hold of the
attempt still being open (``SV_PLACE_GATE``), so a hold the sweeper released never pays for an order.

Every fragment names ``store_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.core import pg
from app.stored_value.instruments import Tender
from app.stored_value.ledger import HOLD_TTL

# Before the holder. Needs the caller's ``sv_gate`` CTE (a row when the claim may go ahead), whose evaluation
# locks the caller's other rows first. Parameters: :store_id and ``hold_params``.
SV_CHECK_CTES = """
    sv_wanted AS (
        SELECT w.account_id, w.amount, w.value, w.instrument
        FROM jsonb_to_recordset(:sv_tenders::jsonb) AS w(account_id uuid, amount bigint, value bigint, instrument text)
    ), sv_locked AS (
        SELECT a.id, a.balance_minor, a.held_minor, a.status, a.expires_at FROM stored_value_accounts a
        WHERE a.store_id = :store_id AND a.id IN (SELECT account_id FROM sv_wanted) AND EXISTS (SELECT 1 FROM sv_gate)
        ORDER BY a.id FOR UPDATE
    ), sv_short AS (
        SELECT w.account_id, w.instrument,
               CASE WHEN l.id IS NULL OR l.status <> 'active' OR l.expires_at <= now() THEN 'unavailable'
                    ELSE 'insufficient' END AS reason,
               GREATEST(COALESCE(l.balance_minor - l.held_minor, 0), 0) AS spendable
        FROM sv_wanted w LEFT JOIN sv_locked l ON l.id = w.account_id
        WHERE EXISTS (SELECT 1 FROM sv_gate)
          AND (l.id IS NULL OR l.status <> 'active' OR l.expires_at <= now()
               OR l.balance_minor - l.held_minor < w.amount)
    )
"""
# After the holder. Needs the caller's ``sv_holder`` CTE (the holder's id; a row only when it was claimed).
SV_HOLD_CTES = """
    sv_held AS (
        UPDATE stored_value_accounts a SET held_minor = a.held_minor + w.amount, updated_at = now()
        FROM sv_wanted w
        WHERE a.id = w.account_id AND a.store_id = :store_id AND EXISTS (SELECT 1 FROM sv_holder)
          AND a.id IN (SELECT id FROM sv_locked)
        RETURNING a.id
    ), sv_holds AS (
        INSERT INTO stored_value_holds (id, store_id, account_id, instrument, holder_kind, holder_id, amount_minor,
                                        value_minor, currency, captured_minor, refunded_minor, status, expires_at,
                                        order_id, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, w.account_id, w.instrument, :sv_holder_kind, h.id, w.amount, w.value,
               :sv_currency, 0, 0, 'open', :sv_expires_at, NULL, now(), now()
        FROM sv_wanted w, sv_holder h
        RETURNING id, account_id, amount_minor, holder_id
    ), sv_hold_entries AS (
        INSERT INTO stored_value_entries (id, store_id, account_id, kind, amount_minor, delta_minor, hold_id, reason,
                                          actor, order_id, attempt_id, pos_sale_id, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, account_id, 'hold', amount_minor, 0, id, 'checkout', :sv_actor, NULL,
               holder_id, NULL, now(), now()
        FROM sv_holds
    )
"""
# In the placing statement's ``go`` condition: every hold of the attempt is still open.
SV_PLACE_GATE = """
    AND NOT EXISTS (SELECT 1 FROM stored_value_holds sv WHERE sv.holder_id = :attempt_id AND sv.store_id = :store_id
                    AND sv.status <> 'open')
"""
# After ``go`` in the placing statement: the attempt's holds pay for the order.
SV_CAPTURE_CTES = """
    sv_captured AS (
        UPDATE stored_value_holds h
        SET status = 'captured', captured_minor = h.amount_minor, order_id = :order_id, updated_at = now()
        WHERE h.holder_id = :attempt_id AND h.store_id = :store_id AND h.status = 'open' AND EXISTS (SELECT 1 FROM go)
        RETURNING h.id, h.account_id, h.amount_minor
    ), sv_debited AS (
        UPDATE stored_value_accounts a
        SET balance_minor = a.balance_minor - s.amount, held_minor = a.held_minor - s.amount, updated_at = now()
        FROM (SELECT account_id, sum(amount_minor) AS amount FROM sv_captured GROUP BY account_id) s
        WHERE a.id = s.account_id AND a.store_id = :store_id
    ), sv_capture_entries AS (
        INSERT INTO stored_value_entries (id, store_id, account_id, kind, amount_minor, delta_minor, hold_id, reason,
                                          actor, order_id, attempt_id, pos_sale_id, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, account_id, 'capture', amount_minor, -amount_minor, id, 'order placed',
               'checkout', :order_id, :attempt_id, NULL, now(), now()
        FROM sv_captured
    )
"""


def hold_params(
    tenders: Sequence[Tender],
    *,
    currency: str,
    holder_kind: str = "checkout",
    actor: str = "shopper",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Parameters of SV_CHECK_CTES / SV_HOLD_CTES."""
    return {
        "sv_tenders": pg.jsonb([t.as_param() for t in tenders]),
        "sv_holder_kind": holder_kind,
        "sv_currency": currency,
        "sv_expires_at": (now or datetime.now(UTC)) + HOLD_TTL,
        "sv_actor": actor,
    }


def short_message(short: Sequence[Any], tenders: Sequence[Tender]) -> tuple[str, dict[str, str]]:
    """What a refused hold tells the payer (``sv_short`` rows as [account id, instrument, reason, spendable])."""
    account_id, _instrument, reason, spendable = short[0]
    label = next((t.label for t in tenders if str(t.account_id) == str(account_id)), "This balance")
    if reason == "unavailable":
        words = f"{label} can no longer be used."
    else:
        words = f"{label} has {spendable} left now, less than this order takes from it."
    return f"{words} Please review how you pay.", {"stored_value": words}


def tender_value(tenders: Sequence[Tender]) -> int:
    return sum(t.value_minor for t in tenders)


__all__ = [
    "POS_SV_CLAIM_GATE",
    "POS_SV_CONFLICTS",
    "POS_SV_GATE",
    "POS_SV_SPEND_CTES",
    "SV_CAPTURE_CTES",
    "SV_CHECK_CTES",
    "SV_HOLD_CTES",
    "SV_PLACE_GATE",
    "hold_params",
    "pos_params",
    "short_message",
    "tender_value",
]


# ---- the POS sale statement (app/pos/sales.py): spends captured at once, with the sale ---------------------------

# Before the sale's claim, after its stock rows (and promotion rows) are locked: ``sv_gate`` is the caller's.
POS_SV_GATE = "sv_gate AS (SELECT 1 WHERE EXISTS (SELECT 1 FROM shift_ok) AND (SELECT count(*) FROM stock_short) >= 0)"
# A sale sent online is refused (its claim gated on this) when a balance does not cover its tender; a sale made
# offline was handed over already: it takes what each balance has left and the rest goes to the managers' review
# (``POS_SV_CONFLICTS``, added to the claim's conflicts), never a negative balance.
POS_SV_CLAIM_GATE = " AND NOT EXISTS (SELECT 1 FROM sv_short)"
POS_SV_CONFLICTS = """ || COALESCE((
                SELECT jsonb_agg(jsonb_build_object(
                           'kind', 'stored_value_short', 'instrument', s.instrument, 'account_id', s.account_id,
                           'reason', s.reason, 'wanted_minor', w.value,
                           'available_minor', CASE WHEN s.reason = 'unavailable' THEN 0 ELSE s.spendable END)
                       ORDER BY s.account_id)
                FROM sv_short s JOIN sv_wanted w ON w.account_id = s.account_id), '[]'::jsonb)"""
# After the claim (``sv_holder``: the sale's id, a row only when it was claimed, so a replay spends nothing).
POS_SV_SPEND_CTES = """
    sv_holder AS (SELECT id FROM claim),
    sv_take AS (
        SELECT w.account_id, w.instrument, w.amount AS wanted,
               LEAST(w.amount, GREATEST(l.balance_minor - l.held_minor, 0)) AS amount,
               CASE WHEN w.amount = 0 THEN 0
                    ELSE w.value * LEAST(w.amount, GREATEST(l.balance_minor - l.held_minor, 0)) / w.amount END AS value
        FROM sv_wanted w JOIN sv_locked l ON l.id = w.account_id
        WHERE l.status = 'active' AND (l.expires_at IS NULL OR l.expires_at > now())
    ), sv_spent AS (
        UPDATE stored_value_accounts a SET balance_minor = a.balance_minor - t.amount, updated_at = now()
        FROM sv_take t
        WHERE a.id = t.account_id AND a.store_id = :store_id AND t.amount > 0 AND EXISTS (SELECT 1 FROM sv_holder)
        RETURNING a.id
    ), sv_holds AS (
        INSERT INTO stored_value_holds (id, store_id, account_id, instrument, holder_kind, holder_id, amount_minor,
                                        value_minor, currency, captured_minor, refunded_minor, status, expires_at,
                                        order_id, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, t.account_id, t.instrument, 'pos', h.id, t.amount, t.value,
               :sv_currency, t.amount, 0, 'captured', now(), :order_id, now(), now()
        FROM sv_take t, sv_holder h WHERE t.amount > 0
        RETURNING id, account_id, amount_minor, holder_id
    ), sv_spend_entries AS (
        INSERT INTO stored_value_entries (id, store_id, account_id, kind, amount_minor, delta_minor, hold_id, reason,
                                          actor, order_id, attempt_id, pos_sale_id, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, account_id, 'capture', amount_minor, -amount_minor, id, 'POS sale',
               :sv_actor, :order_id, NULL, holder_id, now(), now()
        FROM sv_holds
    ),"""


def pos_params(tenders: Sequence[Tender], *, currency: str, actor: str) -> dict[str, Any]:
    """Parameters of the POS fragments (with SV_CHECK_CTES)."""
    return {"sv_tenders": pg.jsonb([t.as_param() for t in tenders]), "sv_currency": currency, "sv_actor": actor[:120]}
