"""Shopper accounts: sign up, sign in, sign out, order history."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.core.errors import TillError
from app.customers.services import CustomerService
from app.orders.services import OrderService
from app.stored_value.loyalty.points import shopper_points
from app.stored_value.shop import shopper_credit
from app.storefront.controllers._common import (
    DbSession,
    FormData,
    customer_key,
    shop_context,
    shop_store,
)


class AccountController(Controller):
    include_in_schema = False

    @get("/s/{slug:str}/account")
    async def account(self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession) -> Template:
        store = await shop_store(request, db_session, slug)
        context = await shop_context(request, db_session, store)
        customer_id = context["customer_id"]
        customer = await CustomerService(db_session, store.id).get(customer_id) if customer_id else None
        orders = await OrderService(db_session, store.id).of_customer(customer_id) if customer else []
        points = await shopper_points(db_session, store.id, customer.id) if customer else None
        context.update(customer=customer, orders=orders, points=points, values={}, errors={}, mode="signin")
        context["store_credit"] = await shopper_credit(request, db_session, store) if customer else None
        return Template("storefront/account.html", context=context)

    @post("/s/{slug:str}/account/{action:str}", status_code=303, media_type=MediaType.HTML)
    async def account_action(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        action: FromPath[str],
        data: FormData,
        db_session: DbSession,
    ) -> Template | Redirect:
        store = await shop_store(request, db_session, slug)
        customers = CustomerService(db_session, store.id)
        session = dict(request.session) if isinstance(request.scope.get("session"), dict) else {}
        try:
            if action == "signup":
                customer = await customers.sign_up(
                    email=data.get("email", ""), name=data.get("name", ""), password=data.get("password", "")
                )
            elif action == "signin":
                customer = await customers.sign_in(
                    request.app.state.redis, email=data.get("email", ""), password=data.get("password", "")
                )
            elif action == "signout":
                session.pop(customer_key(store), None)
                request.set_session(session)
                return Redirect(f"/s/{store.slug}", status_code=303)
            else:
                return Redirect(f"/s/{store.slug}/account", status_code=303)
        except TillError as exc:
            context = await shop_context(request, db_session, store)
            context.update(
                customer=None,
                orders=[],
                mode=action,
                values={"email": data.get("email", ""), "name": data.get("name", "")},
                errors={"form": exc.detail, **exc.fields},
            )
            return Template("storefront/account.html", context=context, status_code=exc.status_code)
        session[customer_key(store)] = str(customer.id)
        request.set_session(session)
        return Redirect(f"/s/{store.slug}/account", status_code=303)
