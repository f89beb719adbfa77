"""Jinja2 setup: template folder, filters and globals shared by every page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from markupsafe import Markup

from app.core.idempotency import form_key
from app.core.money import Money

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def money_filter(value: Money | int | None, currency: str | None = None, locale: str = "en_US") -> str:
    """``{{ price|money }}`` for a Money, ``{{ cents|money('EUR') }}`` for minor units."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return value.format(locale)
    if currency is None:
        raise ValueError("money filter needs a currency for a plain integer amount")
    return Money(value, currency).format(locale)


def idempotency_input() -> Markup:
    """Hidden one-time key for forms that move money: a resubmit reuses it, so it never charges twice."""
    return Markup('<input type="hidden" name="idempotency_key" value="{}">').format(form_key())


def local_time(value: datetime, timezone: str, fmt: str = "%d %b %H:%M") -> str:
    """A moment as the store's clock shows it: ``{{ order.placed_at|local(me.timezone) }}``."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return value.astimezone(zone).strftime(fmt)


def contrast_ink(colour: str) -> str:
    """Black or white text, whichever reads better on a ``#rrggbb`` background (WCAG relative luminance)."""

    def channel(pair: str) -> float:
        c = int(pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    try:
        r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    except ValueError:
        return "#ffffff"
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money_filter
    env.filters["local"] = local_time
    env.filters["brand_ink"] = contrast_ink
    env.globals["idempotency_input"] = idempotency_input
    return env


def make_template_config() -> TemplateConfig[Any]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(make_environment()))
