"""The setup checklist on the staff home: what a new store still has to do before and after going live."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.services import CatalogService
from app.core.audit import AuditEntry
from app.stores.commerce import CommerceSettings
from app.stores.details import Profile, is_live
from app.stores.models import Store

# A settings page counts as done once its owner saved it (the defaults a new store starts with are a guess).
_REVIEWED = {"hours": "settings.hours", "tax": "settings.tax", "shipping": "settings.shipping"}


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    detail: str
    href: str
    done: bool
    needed_to_go_live: bool = False


async def checklist(session: AsyncSession, store: Store) -> list[Step]:
    """The steps in order, each with whether it is done. The session is bound to ``store``."""
    reviewed = set(
        await session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.in_(list(_REVIEWED.values()))).distinct()
        )
    )
    profile = Profile.of(store.settings)
    commerce = CommerceSettings.of(store.settings)
    has_product = await CatalogService(session, store.id).has_products_for_sale()
    provider = str(store.settings.get("payment_provider", ""))
    payment_detail = {
        "": "Choose how shoppers pay. Until then the sandbox takes test cards only: no real money moves.",
        "sandbox": "The sandbox: test cards only, no real money moves. Connect Stripe to take real payments.",
        "stripe": "Stripe takes the payments.",
    }.get(provider, f"{provider} takes the payments.")
    return [
        Step(
            "details",
            "Store details",
            "Address, contact e-mail, colour and logo shoppers see.",
            "/staff/settings",
            profile.complete,
            needed_to_go_live=True,
        ),
        Step(
            "hours",
            "Opening hours and pickup times",
            "When you are open and when shoppers may collect.",
            "/staff/settings/hours",
            _REVIEWED["hours"] in reviewed,
        ),
        Step(
            "currency",
            "Currency and country",
            f"{store.currency}, {commerce.country}. Fixed once the first order exists.",
            "/staff/settings#currency",
            True,
        ),
        Step(
            "tax",
            "Tax",
            "Rates, tax classes, prices with or without tax.",
            "/staff/settings/tax",
            "settings.tax" in reviewed,
        ),
        Step(
            "shipping",
            "Shipping and pickup",
            "Pickup, delivery zones and rates, local delivery.",
            "/staff/settings/shipping",
            _REVIEWED["shipping"] in reviewed,
        ),
        Step("payments", "Payments", payment_detail, "/staff/settings/payments", bool(provider)),
        Step(
            "product",
            "First product",
            "Add a product with its price and stock.",
            "/staff/products/new",
            has_product,
            needed_to_go_live=True,
        ),
        Step(
            "live",
            "Go live",
            "Open your storefront to shoppers. Until then it says “opening soon”.",
            "/staff#go-live",
            is_live(store),
        ),
    ]


def missing_to_go_live(steps: list[Step]) -> list[str]:
    return [step.title.lower() for step in steps if step.needed_to_go_live and not step.done]
