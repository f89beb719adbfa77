"""The loyalty settings page's form: text as typed ↔ ``Program``'s JSON shape, errors under the form's names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from app.core.errors import ValidationFailed
from app.core.money import amount_text, parse_amount
from app.stored_value.loyalty.program import BPS, CHECK, MAX_TIERS, Program, validate_program

_WHOLE = re.compile(r"^\s*\d{1,9}\s*$")
_TIER_FIELD = re.compile(r"^tiers\.(\d+)\.(name|threshold|multiplier_bps)$")
_FORM_NAMES = {"redeem_value_minor": "redeem_value"}


def form_values(program: Program, currency: str) -> dict[str, str]:
    values = {
        "enabled": "on" if program.enabled else "",
        "points_per_unit": str(program.points_per_unit),
        "expiry_days": "" if program.expiry_days is None else str(program.expiry_days),
        "redeem_points": str(program.redeem_points),
        "redeem_value": amount_text(program.redeem_value_minor, currency),
        "min_redeem_points": str(program.min_redeem_points),
    }
    for i, tier in enumerate(program.tiers):
        values[f"tier-{i}-name"] = tier.name
        values[f"tier-{i}-threshold"] = str(tier.threshold)
        values[f"tier-{i}-multiplier"] = _multiplier_text(tier.multiplier_bps)
    return values


def _multiplier_text(bps: int) -> str:
    return str((Decimal(bps) / BPS).normalize().quantize(Decimal("0.01")))


def tier_rows(values: Mapping[str, str]) -> list[int]:
    """The tier rows the form shows: those typed or saved, plus one empty row to add a tier (up to the maximum)."""
    rows = sorted({int(m.group(1)) for k in values if (m := re.match(r"^tier-(\d+)-", k)) and int(m.group(1)) < 50})
    filled = [
        i
        for i in rows
        if any(values.get(f"tier-{i}-{f}", "").strip() for f in ("name", "threshold", "multiplier"))
        or i == (rows[0] if rows else 0)
    ]
    if len(filled) < MAX_TIERS:
        filled.append((max(rows) + 1) if rows else 0)
    return filled


def form_errors(fields: Mapping[str, str], rows: list[int]) -> dict[str, str]:
    """The validator's dotted field names under the form's names (``tiers.1.threshold`` → ``tier-<row>-threshold``)."""
    out: dict[str, str] = {}
    for name, message in fields.items():
        match = _TIER_FIELD.match(name)
        if match:
            index, part = int(match.group(1)), match.group(2)
            row = rows[index] if index < len(rows) else index
            out[f"tier-{row}-{'multiplier' if part == 'multiplier_bps' else part}"] = message
        else:
            out[_FORM_NAMES.get(name, name)] = message
    return out


def program_from_form(form: Mapping[str, str], currency: str) -> Program:
    """The form as a checked program, or ValidationFailed with every wrong field under its form name."""
    fields: dict[str, str] = {}

    def whole(name: str, *, optional: bool = False) -> int | None:
        text = form.get(name, "").strip()
        if not text and optional:
            return None
        if not _WHOLE.match(text):
            fields[name] = "A whole number."
            return None
        return int(text)

    value_text = form.get("redeem_value", "").strip()
    redeem_value = parse_amount(value_text, currency)
    if redeem_value is None or redeem_value <= 0:
        fields["redeem_value"] = f"An amount in {currency} above 0, such as {amount_text(100, currency)}."
    rows: list[int] = []
    tiers: list[dict[str, Any]] = []
    for row in tier_rows(form):
        name = form.get(f"tier-{row}-name", "").strip()
        threshold_text = form.get(f"tier-{row}-threshold", "").strip()
        multiplier_text = form.get(f"tier-{row}-multiplier", "").strip()
        if form.get(f"tier-{row}-remove") or not (name or threshold_text or multiplier_text):
            continue
        threshold = whole(f"tier-{row}-threshold")
        try:
            multiplier = Decimal(multiplier_text.replace(",", ".") or "1")
            bps = int(multiplier * BPS)
            if multiplier != Decimal(bps) / BPS:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            fields[f"tier-{row}-multiplier"] = "A multiplier such as 1 or 1.5."
            bps = BPS
        rows.append(row)
        tiers.append({"name": name, "threshold": threshold if threshold is not None else 0, "multiplier_bps": bps})
    payload = {
        "enabled": bool(form.get("enabled")),
        "points_per_unit": whole("points_per_unit"),
        "expiry_days": whole("expiry_days", optional=True),
        "redeem_points": whole("redeem_points"),
        "redeem_value_minor": redeem_value if redeem_value and redeem_value > 0 else 1,
        "min_redeem_points": whole("min_redeem_points"),
    }
    try:
        program = validate_program({**payload, "tiers": tiers})
    except ValidationFailed as exc:
        checked = {k: v for k, v in form_errors(exc.fields, rows).items() if k not in fields}
        fields.update(checked)
        if "tiers" in fields:
            fields["tier-" + str(rows[0] if rows else 0) + "-name"] = fields.pop("tiers")
        raise ValidationFailed(CHECK, fields=fields) from exc
    if fields:
        raise ValidationFailed(CHECK, fields=fields)
    return program


__all__ = ["form_errors", "form_values", "program_from_form", "tier_rows"]
