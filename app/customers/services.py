"""Shopper accounts per store: sign up, sign in, and the guest record made at checkout."""

from __future__ import annotations

import re
import uuid
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, TooManyRequests, ValidationFailed
from app.core.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from app.core.ratelimit import FailureLimit
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.payments.capabilities import SupportsCustomers

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
SHOPPER_SIGNIN = FailureLimit("shopper-signin", limit=8, window_s=15 * 60)


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


class CustomerService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def get(self, customer_id: uuid.UUID) -> Customer | None:
        return await self.session.get(Customer, customer_id)

    async def provider_customer(self, customer_id: uuid.UUID, provider: SupportsCustomers) -> str:
        """The customer's id at Stripe: reused while it exists there, else made (keyed by our id) and kept."""
        customer = await self.get(customer_id)
        if customer is None:
            return ""
        ref = await provider.ensure_customer(
            email=customer.email,
            name=customer.name,
            existing_ref=customer.stripe_customer_id,
            idempotency_key=f"customer:{customer.id}",
        )
        if ref != customer.stripe_customer_id:
            customer.stripe_customer_id = ref
        return ref

    async def sign_up(self, *, email: str, name: str, password: str) -> Customer:
        email = normalise_email(email)
        fields: dict[str, str] = {}
        if not EMAIL.match(email):
            fields["email"] = "Enter a valid e-mail address."
        if not name.strip():
            fields["name"] = "Enter your name."
        if len(password) < MIN_PASSWORD_LENGTH:
            fields["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        existing = await self.session.scalar(select(Customer).where(Customer.email == email))
        if existing is not None and existing.has_account:
            raise Conflict(
                "An account with this e-mail exists. Sign in instead.", fields={"email": "Already registered."}
            )
        customer = existing or Customer(email=email)
        customer.name, customer.password_hash = name.strip(), hash_password(password)
        self.session.add(customer)
        await self.session.flush()
        return customer

    async def sign_in(self, redis: Redis, *, email: str, password: str) -> Customer:
        email = normalise_email(email)
        subject = f"{self.store_id}:{email}"
        wait = await SHOPPER_SIGNIN.locked_for(redis, subject)
        if wait:
            raise TooManyRequests("Too many attempts. Try again in a few minutes.", retry_after=wait)
        customer = await self.session.scalar(select(Customer).where(Customer.email == email))
        if customer is None or not verify_password(customer.password_hash, password):
            await SHOPPER_SIGNIN.record_failure(redis, subject)
            raise ValidationFailed(
                "That e-mail and password do not match.", fields={"password": "Wrong e-mail or password."}
            )
        await SHOPPER_SIGNIN.clear(redis, subject)
        return customer


# A fragment of a composed statement (ADR 0003): runs only when the CTE ``go`` has a row. The order's
# customer is then COALESCE(:customer_id, (SELECT id FROM customer)): the signed-in shopper, or a guest
# record by e-mail. Parameters: see ``guest_customer_params``.
GUEST_CUSTOMER_CTE = """
    customer AS (
        INSERT INTO customers (id, store_id, email, phone, name, created_at, updated_at)
        SELECT :customer_new_id, :store_id, :customer_email, :customer_phone, '', now(), now()
        WHERE :customer_id::uuid IS NULL AND EXISTS (SELECT 1 FROM go)
        ON CONFLICT (store_id, email) DO UPDATE SET phone = EXCLUDED.phone, updated_at = now()
        RETURNING id
    )
"""


def guest_customer_params(*, email: str, phone: str, customer_id: uuid.UUID | None) -> dict[str, Any]:
    return {
        "customer_new_id": uuid.uuid4(),
        "customer_email": email,
        "customer_phone": phone,
        "customer_id": customer_id,
    }
