"""The tax settings page's form ↔ ``validate_tax_settings``'s JSON shape, and its errors back to the fields.

Pure. The form (``templates/tax/settings.html``) has rows, so it needs no JavaScript to add or remove one:

- ``prices_include_tax``: "yes" / "no";
- ``classes-N-name`` and ``classes-N-remove`` per tax class row N (the last row, left empty, adds one);
- ``default_class`` and ``shipping_tax_class``: a class row's N (shipping may also be ``exempt``);
- ``jurisdictions-M-country|region|name|remove`` per jurisdiction row M, and ``jurisdictions-M-rate-N``: the
  rate in percent for class row N (empty: the default class's rate applies there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import ValidationFailed
from app.tax.settings import (
    CHECK_FIELDS,
    EXEMPT_CLASS,
    format_rate_percent,
    parse_rate_percent,
    tax_classes_of,
    validate_tax_settings,
)

__all__ = ["TaxFormReading", "read_tax_form", "row_indexes", "tax_form_values", "tax_settings_from_form"]

_JURISDICTION_FIELDS = ("country", "region", "name")
_RATE_KEY = re.compile(r"jurisdictions-\d{1,4}-rate-(\d{1,4})")


def _indexes(form: Mapping[str, str], prefix: str) -> list[int]:
    pattern = re.compile(rf"{prefix}-(\d{{1,4}})-")
    return sorted({int(m.group(1)) for key in form if (m := pattern.match(key))})


def _text(form: Mapping[str, str], key: str) -> str:
    return (form.get(key) or "").strip()


@dataclass
class TaxFormReading:
    """A submitted form read into the JSON shape, with what the form alone could tell was wrong."""

    payload: dict[str, Any]
    errors: dict[str, str]  # by form field name
    class_rows: dict[int, str] = field(default_factory=dict)  # class row → name, removed rows included
    kept_class_rows: list[int] = field(default_factory=list)  # the payload's class k is row kept_class_rows[k]
    jurisdiction_rows: list[int] = field(default_factory=list)  # the payload's jurisdiction i is row […][i]

    def field_for(self, path: str) -> str:
        """The form field showing a ``validate_tax_settings`` (or service) error at ``path``."""
        parts = path.split(".")
        if path in ("prices_include_tax", "shipping_tax_class"):
            return path
        if path == "rules.default_class":
            return "default_class"
        if parts[:2] == ["rules", "classes"] and len(parts) == 3:
            if parts[2].isdigit() and int(parts[2]) < len(self.kept_class_rows):
                return f"classes-{self.kept_class_rows[int(parts[2])]}-name"
            row = next((r for r, name in self.class_rows.items() if name == parts[2]), None)
            return f"classes-{row}-name" if row is not None else "classes"
        if parts[:2] == ["rules", "jurisdictions"] and len(parts) >= 3 and parts[2].isdigit():
            i = int(parts[2])
            if i >= len(self.jurisdiction_rows):
                return "jurisdictions"
            row = self.jurisdiction_rows[i]
            if len(parts) == 4 and parts[3] in _JURISDICTION_FIELDS:
                return f"jurisdictions-{row}-{parts[3]}"
            if len(parts) == 5 and parts[3] == "rates":
                column = next((r for r in self.kept_class_rows if self.class_rows[r] == parts[4]), None)
                if column is not None:
                    return f"jurisdictions-{row}-rate-{column}"
            return f"jurisdictions-{row}"
        if path in ("rules.classes", "rules.jurisdictions"):
            return parts[1]
        return "form"

    def form_errors(self, fields: Mapping[str, str]) -> dict[str, str]:
        """``fields`` by dotted path → by form field; an error the form found itself is kept first."""
        mapped = dict(self.errors)
        for path, message in fields.items():
            mapped.setdefault(self.field_for(path), message)
        return mapped


def read_tax_form(form: Mapping[str, str]) -> TaxFormReading:
    """The form's values in ``validate_tax_settings``'s shape; the rates parsed from percent."""
    errors: dict[str, str] = {}
    jurisdiction_indexes = _indexes(form, "jurisdictions")

    def column_used(n: int) -> bool:
        return any(_text(form, f"jurisdictions-{m}-rate-{n}") for m in jurisdiction_indexes)

    class_rows: dict[int, str] = {}
    kept: list[int] = []
    for n in sorted({*_indexes(form, "classes"), *_rate_columns(form)}):
        name = _text(form, f"classes-{n}-name")
        class_rows[n] = name
        if form.get(f"classes-{n}-remove"):
            continue
        if not name:
            if column_used(n):
                errors[f"classes-{n}-name"] = "Name this class, or clear its rates."
            continue
        kept.append(n)

    def class_at(choice: str, key: str, *, allow_exempt: bool = False) -> str | None:
        if allow_exempt and choice == EXEMPT_CLASS:
            return EXEMPT_CLASS
        row = int(choice) if choice.isdigit() else None
        if row is not None and row in class_rows and row not in kept and class_rows[row]:
            errors[key] = f"“{class_rows[row]}” is being removed; choose another class first."
        return class_rows.get(row) if row in kept else None

    include = {"yes": True, "no": False}.get(_text(form, "prices_include_tax"))
    if include is None:
        errors["prices_include_tax"] = "Say whether your prices include tax."
    jurisdictions: list[dict[str, Any]] = []
    rows: list[int] = []
    for m in jurisdiction_indexes:
        texts = [_text(form, f"jurisdictions-{m}-{name}") for name in _JURISDICTION_FIELDS]
        rate_keys = {n: f"jurisdictions-{m}-rate-{n}" for n in class_rows}
        if form.get(f"jurisdictions-{m}-remove") or not any(texts + [_text(form, k) for k in rate_keys.values()]):
            continue
        rates: dict[str, int] = {}
        for n in kept:
            text = _text(form, rate_keys[n])
            if not text:
                continue
            try:
                rates[class_rows[n]] = parse_rate_percent(text)
            except ValueError as exc:
                errors[rate_keys[n]] = str(exc)
        country, region, name = texts
        jurisdictions.append({"country": country, "region": region, "name": name, "rates": rates})
        rows.append(m)
    classes = [class_rows[n] for n in kept]
    payload = {
        "prices_include_tax": include,
        "shipping_tax_class": class_at(_text(form, "shipping_tax_class"), "shipping_tax_class", allow_exempt=True),
        "rules": {
            "default_class": class_at(_text(form, "default_class"), "default_class"),
            "classes": classes,
            "jurisdictions": jurisdictions,
        },
    }
    if not classes:
        errors.setdefault("classes", "Keep at least one tax class.")
    return TaxFormReading(payload, errors, class_rows, kept, rows)


def tax_settings_from_form(form: Mapping[str, str]) -> tuple[dict[str, Any], TaxFormReading]:
    """The settings to save from a submitted form, or ``ValidationFailed`` keyed by form field names."""
    reading = read_tax_form(form)
    try:
        settings = validate_tax_settings(reading.payload)
    except ValidationFailed as exc:
        raise ValidationFailed(CHECK_FIELDS, fields=reading.form_errors(exc.fields)) from exc
    if reading.errors:
        raise ValidationFailed(CHECK_FIELDS, fields=reading.errors)
    return settings, reading


def tax_form_values(payload: Mapping[str, Any]) -> dict[str, str]:
    """The form's values for settings in ``validate_tax_settings``'s shape (as ``tax_payload_of`` gives)."""
    rules = payload.get("rules") or {}
    classes = tax_classes_of(rules)
    values = {
        "prices_include_tax": "yes" if payload.get("prices_include_tax") else "no",
        "default_class": str(classes.index(rules["default_class"])) if rules.get("default_class") in classes else "",
    }
    shipping = payload.get("shipping_tax_class")
    values["shipping_tax_class"] = (
        EXEMPT_CLASS if shipping == EXEMPT_CLASS else str(classes.index(shipping)) if shipping in classes else ""
    )
    for n, name in enumerate(classes):
        values[f"classes-{n}-name"] = name
    for m, jurisdiction in enumerate(rules.get("jurisdictions") or []):
        for key in _JURISDICTION_FIELDS:
            values[f"jurisdictions-{m}-{key}"] = str(jurisdiction.get(key) or "")
        rates = jurisdiction.get("rates") or {}
        for n, name in enumerate(classes):
            values[f"jurisdictions-{m}-rate-{n}"] = format_rate_percent(rates[name]) if name in rates else ""
    return values


def row_indexes(values: Mapping[str, str], prefix: str) -> list[int]:
    """The rows of ``prefix`` to show: every row with something in it, then one empty row to add another."""
    present = _indexes(values, prefix)
    if prefix == "classes":
        used = [n for n in present if _text(values, f"classes-{n}-name") or _rates_in_column(values, n)]
    else:
        used = [m for m in present if any(_text(values, k) for k in values if k.startswith(f"{prefix}-{m}-"))]
    return [*used, (max(present) + 1) if present else 0]


def _rate_columns(form: Mapping[str, str]) -> set[int]:
    """The class rows some jurisdiction row has a rate field for."""
    return {int(m.group(1)) for key in form if (m := _RATE_KEY.fullmatch(key))}


def _rates_in_column(values: Mapping[str, str], n: int) -> bool:
    return any(_text(values, f"jurisdictions-{m}-rate-{n}") for m in _indexes(values, "jurisdictions"))
