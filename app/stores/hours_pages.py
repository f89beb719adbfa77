"""/staff/settings/hours (managers and owners): opening hours, closed dates and pickup times.

One form for the week and the pickup settings (preparation time, slot interval, days ahead), with a live preview of
the next pickup times computed from what is typed; closed dates are added and removed one at a time. Every change
goes through ``StoreService.set_settings({"hours": ...}, action="settings.hours")``: validated first
(app/stores/hours.py), so a refused form (422, the values kept, each problem next to its field) writes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.money import Money
from app.core.rbac import Role, principal_of, require_role
from app.shipping.providers import BuiltinShipping
from app.stores.hours import (
    DAY_NAMES,
    DAYS,
    DEFAULT_PICKUP,
    FORM_RANGES,
    INTERVALS,
    MAX_RANGES,
    Hours,
    day_label,
    hours_from,
    hours_of,
    parse_hours_form,
    pickup_preview,
)
from app.stores.models import Store
from app.stores.services import StoreService

FormData = URLEncodedBody[dict[str, str]]
DbSession = NamedDependency[AsyncSession]
PAGE = "/staff/settings/hours"
MANAGER = {"min_role": Role.MANAGER}
ACTION = "settings.hours"
_STARTING_VALUES = {key: str(value) for key, value in DEFAULT_PICKUP.items()}


def _preview(values: dict[str, str], store: Store) -> str:
    """The next pickup times for the hours in the form (with the saved closed dates), or why there are none."""
    try:
        hours = hours_from(parse_hours_form(values))
    except ValidationFailed:
        return "Fix the highlighted fields to see the next pickup times."
    return pickup_preview(hours, datetime.now(UTC), store.timezone)


def _pickup_offered(store: Store) -> bool:
    """Whether the shipping settings offer pickup at all (their flag; hours only say when)."""
    shipping = BuiltinShipping.from_settings(store.settings, store.currency)
    rates = shipping.quote_rates(destination=None, items=[], subtotal=Money(0, store.currency))
    return any(rate.code == "pickup" for rate in rates)


class HoursSettingsController(Controller):
    path = PAGE
    guards = [require_role]
    include_in_schema = False

    async def _store(self, request: Request[Any, Any, Any], db_session: AsyncSession) -> tuple[StoreService, Store]:
        stores = StoreService(db_session, principal_of(request).store_id)
        return stores, await stores.get()

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        _, store = await self._store(request, db_session)
        hours = hours_of(store.settings)
        saved = hours.form_values() if hours else dict(_STARTING_VALUES)
        shown = {**values, "closed_dates": saved.get("closed_dates", "")} if values is not None else saved
        used = [n for n in range(1, MAX_RANGES + 1) for day in DAYS if shown.get(f"{day}_open_{n}", "").strip()]
        today = datetime.now(ZoneInfo(store.timezone)).date()
        closed = sorted(hours.closed_dates) if hours else []
        context = {
            "me": principal_of(request),
            "store": store,
            "has_hours": hours is not None,
            "pickup_offered": _pickup_offered(store),
            "values": shown,
            "errors": errors or {},
            "days": list(zip(DAYS, DAY_NAMES, strict=True)),
            "ranges": list(range(1, max([FORM_RANGES, *used]) + 1)),
            "intervals": INTERVALS,
            "closed": [{"iso": d.isoformat(), "label": day_label(d), "past": d < today} for d in closed],
            "preview": _preview(shown, store),
        }
        return Template("staff/hours.html", context=context, status_code=status_code)

    async def _save(self, request: Request[Any, Any, Any], stores: StoreService, hours: dict[str, Any]) -> None:
        await stores.set_settings({"hours": hours}, actor=principal_of(request), action=ACTION)

    @get("/", opt=MANAGER)
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await self._page(request, db_session)

    @post("/", opt=MANAGER, status_code=303, media_type=MediaType.HTML)
    async def save(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Template | Redirect:
        """The week and the pickup settings; the closed dates stay as saved (they change one at a time)."""
        stores, store = await self._store(request, db_session)
        form = {k: v for k, v in data.items() if k not in ("closed_dates", "closed_date_new", "remove_closed")}
        try:
            hours = parse_hours_form({**form, "closed_dates": _saved_closed(store)})
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(request, db_session, values=form, errors=errors, status_code=422)
        await self._save(request, stores, hours)
        flash(request, "Opening hours saved.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/preview", opt=MANAGER, status_code=200, media_type=MediaType.HTML)
    async def preview(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Template:
        """The preview line for the form as typed (HTMX, on every change); writes nothing."""
        _, store = await self._store(request, db_session)
        text = _preview({**data, "closed_dates": _saved_closed(store)}, store)
        return Template("staff/_hours_preview.html", context={"preview": text})

    @post("/closed", opt=MANAGER, status_code=303, media_type=MediaType.HTML)
    async def add_closed(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        stores, store = await self._store(request, db_session)
        hours = hours_of(store.settings)
        new = data.get("closed_date_new", "")
        try:
            if hours is None:
                raise ValidationFailed(
                    "Save your opening hours first.", fields={"closed_date_new": "Save your opening hours first."}
                )
            if not new.strip():
                raise ValidationFailed("Choose a date.", fields={"closed_date_new": "Choose a date."})
            changed = parse_hours_form({**hours.form_values(), "closed_date_new": new})
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
            return await self._page(
                request, db_session, values={**_saved(hours), "closed_date_new": new}, errors=errors, status_code=422
            )
        await self._save(request, stores, changed)
        flash(request, f"Closed on {day_label(date.fromisoformat(new.strip()))}.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/closed/remove", opt=MANAGER, status_code=303, media_type=MediaType.HTML)
    async def remove_closed(self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession) -> Redirect:
        stores, store = await self._store(request, db_session)
        hours = hours_of(store.settings)
        day = data.get("remove_closed", "")
        if hours is not None:
            await self._save(request, stores, parse_hours_form({**hours.form_values(), "remove_closed": day}))
        flash(request, "That date is open again, as the weekly hours say.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/clear", opt=MANAGER, status_code=303, media_type=MediaType.HTML)
    async def clear(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        """No opening hours: always open, pickups as soon as they are ready (as before any hours were set)."""
        stores, _ = await self._store(request, db_session)
        await stores.set_settings({"hours": None}, actor=principal_of(request), action=ACTION)
        flash(request, "Opening hours removed: the shop counts as always open.", category="success")
        return Redirect(PAGE, status_code=303)


def _saved(hours: Hours | None) -> dict[str, str]:
    return hours.form_values() if hours else dict(_STARTING_VALUES)


def _saved_closed(store: Store) -> str:
    hours = hours_of(store.settings)
    return hours.form_values()["closed_dates"] if hours else ""
