"""Opening a store: the platform operator's CLI, the /start sign-up, and an owner's next store.

A new store starts closed to shoppers (``settings["live"] = False``: the storefront says "opening soon")
with the tax table of its country, pickup as its only delivery method, and the sandbox payment provider,
so its owner can try every page before going live from the setup checklist.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from babel.numbers import list_currencies
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, ValidationFailed
from app.core.outbox import emit
from app.core.rbac import Principal, Role
from app.core.tenancy import system_scope
from app.shipping.addresses import SUPPORTED_COUNTRIES
from app.stores.models import Store, User
from app.stores.services import UserService, normalise_email, validate_store_fields
from app.tax.defaults import prices_include_tax_for, tax_rules_for_country

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
# Addresses Till itself serves under /s/…, or that read as someone else's: never a shop's slug.
RESERVED_SLUGS = frozenset(
    {"admin", "api", "demo-store", "schema", "signin", "start", "static", "staff", "till", "www"}
)
_CURRENCIES = frozenset(list_currencies())

NEW_STORE_SHIPPING: dict[str, Any] = {
    "pickup": {"enabled": True, "label": "Pickup in store"},
    "flat": {"enabled": False, "label": "Standard shipping", "amount_minor": 0},
    "free_over_minor": None,
    "zones": [],
    "local_delivery": {"enabled": False, "label": "Local delivery", "postal_codes": [], "amount_minor": 0},
}


@dataclass(frozen=True)
class NewStore:
    name: str
    slug: str
    currency: str
    country: str
    timezone: str


def slugify(name: str) -> str:
    """A store address from its name: "Bakery Nord" → "bakery-nord" (accents dropped, 63 characters at most)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:63].rstrip("-")


def new_store_fields(store: NewStore) -> dict[str, str]:
    """Field errors of a new store's form (empty when it is fine); the slug's availability is checked apart."""
    fields: dict[str, str] = {}
    try:
        validate_store_fields(name=store.name, timezone=store.timezone, slug=store.slug or "-")
    except ValidationFailed as exc:
        fields.update({("store_name" if key == "name" else key): message for key, message in exc.fields.items()})
    if not store.slug:
        fields["slug"] = "Choose the address of your shop, such as bakery-nord."
    elif store.slug in RESERVED_SLUGS:
        fields["slug"] = "This address is reserved. Choose another."
    if store.currency not in _CURRENCIES:
        fields["currency"] = "Choose a currency such as EUR, SEK or USD."
    if store.country not in SUPPORTED_COUNTRIES:
        fields["country"] = "Choose the country your shop is in."
    return fields


def initial_settings(country: str) -> dict[str, Any]:
    """A new store's settings: its country's tax table, pickup only, not live yet."""
    return {
        "country": country,
        "prices_include_tax": prices_include_tax_for(country),
        "tax": tax_rules_for_country(country),
        "shipping": NEW_STORE_SHIPPING,
        "live": False,
    }


class OnboardingService:
    """Creates stores and their first owner. Reads across stores on purpose (slugs, e-mails are global)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        system_scope(session)

    async def slug_problem(self, slug: str) -> str | None:
        """Why ``slug`` cannot be a new store's address, or None when it is free."""
        slug = slug.strip().lower()
        if not slug:
            return "Choose the address of your shop, such as bakery-nord."
        if not SLUG.fullmatch(slug):
            return "Use 2–63 lowercase letters, digits and dashes, starting with a letter or digit."
        if slug in RESERVED_SLUGS:
            return "This address is reserved. Choose another."
        if await self.session.scalar(select(Store.id).where(Store.slug == slug)):
            return "This address is taken. Choose another."
        return None

    async def create_store(self, new: NewStore, owner: User, *, actor: Principal | None = None) -> Store:
        """The store, its owner's membership, an audit row and a ``store.created`` event, in the caller's
        transaction. Raises ValidationFailed (field errors) or Conflict (slug taken) and writes nothing."""
        new = NewStore(
            name=new.name.strip(),
            slug=new.slug.strip().lower(),
            currency=new.currency.strip().upper(),
            country=new.country.strip().upper(),
            timezone=new.timezone.strip(),
        )
        fields = new_store_fields(new)
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        problem = await self.slug_problem(new.slug)
        if problem:
            raise Conflict(problem, fields={"slug": problem})
        users = UserService(self.session)
        store = await users.create_store(name=new.name, slug=new.slug, currency=new.currency, timezone=new.timezone)
        store.settings = initial_settings(new.country)
        await users.add_member(store, owner, Role.OWNER)
        emit(
            self.session,
            "store.created",
            aggregate_type="store",
            aggregate_id=store.id,
            payload={"slug": store.slug, "currency": store.currency, "country": new.country},
            store_id=store.id,
        )
        audit.record(
            self.session,
            actor,
            "store.created",
            target_type="store",
            target_id=store.id,
            details={"name": store.name, "slug": store.slug, "currency": store.currency, "owner": owner.email},
            store_id=store.id,
        )
        return store

    async def sign_up(self, new: NewStore, *, name: str, email: str, password: str) -> tuple[Store, User]:
        """A new merchant: their staff account and their first store, together or not at all."""
        fields: dict[str, str] = {}
        store_fields = new_store_fields(
            NewStore(new.name.strip(), new.slug.strip().lower(), new.currency, new.country, new.timezone)
        )
        fields.update(store_fields)
        if "slug" not in fields:
            problem = await self.slug_problem(new.slug)
            if problem:
                fields["slug"] = problem
        if await self.session.scalar(select(User.id).where(User.email == normalise_email(email))):
            fields["email"] = "An account with this e-mail exists. Sign in and add a store from your staff home."
        try:
            user = await UserService(self.session).create_user(email=email, name=name, password=password)
        except (ValidationFailed, Conflict) as exc:
            fields = {**exc.fields, **fields}
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        store = await self.create_store(new, user)
        return store, user

    async def owner(self, user_id: uuid.UUID) -> User:
        user = await self.session.get(User, user_id)
        assert user is not None
        return user
