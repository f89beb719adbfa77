"""Shopper pages: browse, product, cart (HTMX), checkout, payment, order status, account."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.cart.services import CartService
from app.catalog.services import CatalogService
from app.checkout.factory import checkout_saga
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import CheckoutExpired, CheckoutSaga, Outcome, PaymentInput
from app.config import Settings
from app.core.errors import TillError, ValidationFailed
from app.core.idempotency import request_hash
from app.core.money import Money
from app.customers.services import CustomerService
from app.orders.services import OrderService
from app.payments.provider import CardDetails
from app.shipping.providers import BuiltinShipping
from app.stores.commerce import CommerceSettings
from app.stores.models import Store
from app.stores.services import store_by_slug

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]
CART_COOKIE = "till_cart"
CHECKOUT_FIELDS = ("email", "phone", "shipping", "name", "line1", "line2", "city", "region", "postal_code", "country")


def _cart_token(request: Request[Any, Any, Any]) -> str | None:
    return request.cookies.get(CART_COOKIE)


def _customer_key(store: Store) -> str:
    return f"customer:{store.id}"


def _customer_id(request: Request[Any, Any, Any], store: Store) -> uuid.UUID | None:
    session = request.scope.get("session")
    raw = session.get(_customer_key(store)) if isinstance(session, dict) else None
    return uuid.UUID(raw) if raw else None


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def parse_card(data: dict[str, str]) -> tuple[CardDetails | None, dict[str, str]]:
    """Card fields of the payment form; the raw number lives only in this request's memory."""
    number = "".join(ch for ch in data.get("card_number", "") if ch.isdigit())
    expiry = data.get("card_expiry", "").replace(" ", "")
    cvc = data.get("card_cvc", "").strip()
    errors: dict[str, str] = {}
    if not 12 <= len(number) <= 19:
        errors["card_number"] = "Enter the card number."
    month, _, year = expiry.partition("/")
    if not (month.isdigit() and year.isdigit() and 1 <= int(month) <= 12 and len(year) in (2, 4)):
        errors["card_expiry"] = "Enter the expiry as MM/YY."
    if not (cvc.isdigit() and len(cvc) in (3, 4)):
        errors["card_cvc"] = "Enter the 3 or 4 digit security code."
    if errors:
        return None, errors
    full_year = int(year) + (2000 if len(year) == 2 else 0)
    return CardDetails(
        number=number, exp_month=int(month), exp_year=full_year, cvc=cvc, holder=data.get("card_name", "")
    ), {}


class StorefrontController(Controller):
    include_in_schema = False

    @get("/", name="root")
    async def root(self, request: Request[Any, Any, Any]) -> Redirect:
        settings: Settings = request.app.state.settings
        return Redirect(f"/s/{settings.default_store}", status_code=302)

    # ---- browsing ----------------------------------------------------------------------------------

    @get("/s/{slug:str}", name="storefront_home")
    async def home(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        db_session: DbSession,
        category: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
    ) -> Template:
        store = await store_by_slug(db_session, slug)
        catalog = CatalogService(db_session, store.id)
        products = await catalog.browse(category=category or None, search=(q or "").strip() or None)
        context = await self._base(request, db_session, store)
        context.update(products=products, categories=await catalog.categories(), category=category or "", q=q or "")
        template = (
            "storefront/_products.html"
            if _is_htmx(request) and request.headers.get("hx-target") == "products"
            else "storefront/home.html"
        )
        return Template(template, context=context)

    @get("/s/{slug:str}/p/{product_slug:str}")
    async def product(
        self, request: Request[Any, Any, Any], slug: FromPath[str], product_slug: FromPath[str], db_session: DbSession
    ) -> Template:
        store = await store_by_slug(db_session, slug)
        view = await CatalogService(db_session, store.id).product_by_slug(product_slug)
        context = await self._base(request, db_session, store)
        context.update(view=view)
        return Template("storefront/product.html", context=context)

    async def _base(self, request: Request[Any, Any, Any], db_session: AsyncSession, store: Store) -> dict[str, Any]:
        cart = await CartService(db_session, store.id, store.currency).view(_cart_token(request))
        return {"store": store, "cart": cart, "customer_id": _customer_id(request, store)}

    # ---- cart --------------------------------------------------------------------------------------

    @get("/s/{slug:str}/cart")
    async def cart_page(self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession) -> Template:
        store = await store_by_slug(db_session, slug)
        return Template("storefront/cart.html", context=await self._base(request, db_session, store))

    @post("/s/{slug:str}/cart/lines", status_code=200, media_type=MediaType.HTML)
    async def add_to_cart(
        self, request: Request[Any, Any, Any], slug: FromPath[str], data: FormData, db_session: DbSession
    ) -> Response[Any]:
        store = await store_by_slug(db_session, slug)
        service = CartService(db_session, store.id, store.currency)
        cart = await service.get_or_create(_cart_token(request), _customer_id(request, store))
        message, status = "Added to your cart.", 200
        try:
            variant_id = uuid.UUID(data.get("variant_id", ""))
            quantity = int(data.get("quantity", "1") or 1)
            await service.add(cart, variant_id, quantity)
        except ValueError:
            message, status = "Choose an option first.", 422
        except TillError as exc:
            message, status = exc.detail, 422
        cookie = Cookie(
            key=CART_COOKIE,
            value=cart.token,
            path=f"/s/{store.slug}",
            httponly=True,
            samesite="lax",
            max_age=30 * 86400,
        )
        if not _is_htmx(request):
            response: Response[Any] = Redirect(f"/s/{store.slug}/cart", status_code=303)
            response.set_cookie(cookie)
            return response
        view = await service.view(cart.token)
        template = Template(
            "storefront/_added.html",
            context={"store": store, "cart": view, "message": message, "ok": status == 200},
            status_code=status,
            cookies=[cookie],
        )
        return template

    @post("/s/{slug:str}/cart/lines/{variant_id:uuid}", status_code=200, media_type=MediaType.HTML)
    async def change_line(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        variant_id: FromPath[uuid.UUID],
        data: FormData,
        db_session: DbSession,
    ) -> Response[Any]:
        store = await store_by_slug(db_session, slug)
        service = CartService(db_session, store.id, store.currency)
        cart = await service.find(_cart_token(request))
        message = ""
        status = 200
        if cart is not None:
            try:
                quantity = int(data.get("quantity", "0") or 0)
                await service.set_quantity(cart, variant_id, quantity)
            except ValueError:
                message, status = "Enter a whole number.", 422
            except TillError as exc:
                message, status = exc.detail, 422
        if not _is_htmx(request):
            return Redirect(f"/s/{store.slug}/cart", status_code=303)
        view = await service.view(_cart_token(request))
        return Template(
            "storefront/_cart.html",
            context={"store": store, "cart": view, "message": message, "oob_count": True},
            status_code=status,
        )

    # ---- checkout ----------------------------------------------------------------------------------

    @get("/s/{slug:str}/checkout")
    async def checkout_page(
        self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession
    ) -> Template | Redirect:
        store = await store_by_slug(db_session, slug)
        context = await self._base(request, db_session, store)
        if not context["cart"].lines:
            return Redirect(f"/s/{store.slug}/cart", status_code=303)
        values: dict[str, str] = {"shipping": "pickup", "country": CommerceSettings.of(store.settings).country}
        customer_id = context["customer_id"]
        if customer_id:
            customer = await CustomerService(db_session, store.id).get(customer_id)
            if customer:
                values.update(email=customer.email, name=customer.name, phone=customer.phone)
        context.update(values=values, errors={}, delivery=_delivery_options(store))
        return Template("storefront/checkout.html", context=context)

    @post("/s/{slug:str}/checkout", status_code=303, media_type=MediaType.HTML)
    async def create_quote(
        self, request: Request[Any, Any, Any], slug: FromPath[str], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        store = await store_by_slug(db_session, slug)
        shipping = data.get("shipping", "pickup")
        address = {
            k: data.get(k, "") for k in ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
        }
        try:
            snapshot = await QuoteService(db_session, store).create(
                QuoteRequest(
                    cart_token=_cart_token(request) or "",
                    email=data.get("email", ""),
                    phone=data.get("phone", ""),
                    shipping_code=shipping,
                    address=address if shipping != "pickup" else None,
                    customer_id=_customer_id(request, store),
                )
            )
        except ValidationFailed as exc:
            context = await self._base(request, db_session, store)
            errors = {k.removeprefix("address."): v for k, v in exc.fields.items()}
            errors.setdefault("form", exc.detail)
            context.update(
                values={k: data.get(k, "") for k in CHECKOUT_FIELDS}, errors=errors, delivery=_delivery_options(store)
            )
            return Template("storefront/checkout.html", context=context, status_code=422)
        return Redirect(f"/s/{store.slug}/checkout/{snapshot.id}", status_code=303)

    @get("/s/{slug:str}/checkout/{snapshot_id:uuid}")
    async def review(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        snapshot_id: FromPath[uuid.UUID],
        db_session: DbSession,
    ) -> Template:
        store = await store_by_slug(db_session, slug)
        snapshot = await QuoteService(db_session, store).get(snapshot_id)
        context = await self._base(request, db_session, store)
        context.update(snapshot=snapshot, errors={}, values={})
        return Template("storefront/review.html", context=context)

    @post("/s/{slug:str}/checkout/{snapshot_id:uuid}/pay", status_code=303, media_type=MediaType.HTML)
    async def pay(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        snapshot_id: FromPath[uuid.UUID],
        data: FormData,
        db_session: DbSession,
    ) -> Template | Redirect:
        store = await store_by_slug(db_session, slug)
        quotes = QuoteService(db_session, store)
        snapshot = await quotes.get(snapshot_id)
        card, errors = parse_card(data)
        key = data.get("idempotency_key", "")
        if not key:
            errors["form"] = "This form is out of date. Please try again."
        values = {"card_name": data.get("card_name", ""), "card_expiry": data.get("card_expiry", "")}
        context = await self._base(request, db_session, store)
        if errors:
            context.update(snapshot=snapshot, errors=errors, values=values)
            return Template("storefront/review.html", context=context, status_code=422)
        saga = self._saga(request, store)
        await db_session.commit()  # the saga runs its own short transactions; hold none across the provider call
        amount = data.get("amount_minor", "")
        payment = PaymentInput(
            card=card,
            amount_minor=int(amount) if amount.isdigit() else None,
        )
        fingerprint = request_hash("POST", f"/checkout/{snapshot_id}", b"", f"{snapshot_id}:{amount}".encode())
        try:
            outcome = await saga.complete(snapshot_id, key, payment, fingerprint=fingerprint)
        except CheckoutExpired as exc:
            fresh = await quotes.create(
                QuoteRequest(
                    cart_token=_cart_token(request) or "",
                    email=snapshot.email,
                    phone=snapshot.phone,
                    shipping_code=snapshot.shipping["code"],
                    address=snapshot.address,
                    customer_id=snapshot.customer_id,
                )
            )
            context.update(snapshot=fresh, errors={"form": exc.detail}, values=values)
            return Template("storefront/review.html", context=context, status_code=409)
        except TillError as exc:
            context.update(snapshot=snapshot, errors={"form": exc.detail, **exc.fields}, values=values)
            return Template("storefront/review.html", context=context, status_code=exc.status_code)
        return self._after_payment(store, outcome, context, snapshot, values)

    def _after_payment(
        self, store: Store, outcome: Outcome, context: dict[str, Any], snapshot: Any, values: dict[str, str]
    ) -> Template | Redirect:
        if outcome.state == "completed" and outcome.order is not None:
            return Redirect(
                f"/s/{store.slug}/orders/{outcome.order.id}?key={outcome.order.access_token}", status_code=303
            )
        if outcome.state == "awaiting_action" and outcome.action_url:
            return Redirect(outcome.action_url, status_code=303)
        if outcome.state in ("awaiting_payment", "awaiting_action", "started", "reserved"):
            return Redirect(f"/s/{store.slug}/checkout/attempts/{outcome.attempt_id}", status_code=303)
        context.update(snapshot=snapshot, errors={"form": outcome.message or "The payment failed."}, values=values)
        return Template("storefront/review.html", context=context, status_code=402)

    def _saga(self, request: Request[Any, Any, Any], store: Store) -> CheckoutSaga:
        return checkout_saga(request.app.state, store)

    @get("/s/{slug:str}/checkout/attempts/{attempt_id:uuid}")
    async def attempt_page(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        attempt_id: FromPath[uuid.UUID],
        db_session: DbSession,
    ) -> Template | Redirect | Response[Any]:
        store = await store_by_slug(db_session, slug)
        outcome = await self._saga(request, store).outcome(attempt_id)
        if outcome.state == "completed" and outcome.order is not None:
            target = f"/s/{store.slug}/orders/{outcome.order.id}?key={outcome.order.access_token}"
            if _is_htmx(request):
                return Response(content="", status_code=200, headers={"HX-Redirect": target})
            return Redirect(target, status_code=303)
        context = await self._base(request, db_session, store)
        context.update(outcome=outcome)
        return Template("storefront/attempt.html", context=context)

    @get("/s/{slug:str}/checkout/attempts/{attempt_id:uuid}/return")
    async def attempt_return(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        attempt_id: FromPath[uuid.UUID],
        db_session: DbSession,
    ) -> Template | Redirect:
        """Where the 3-D Secure challenge sends the shopper back."""
        store = await store_by_slug(db_session, slug)
        saga = self._saga(request, store)
        await db_session.commit()
        outcome = await saga.resume(attempt_id)
        if outcome.state == "failed":
            snapshot_id = await saga.snapshot_of(attempt_id)
            snapshot = await QuoteService(db_session, store).get(snapshot_id)
            if snapshot is not None:
                context = await self._base(request, db_session, store)
                context.update(snapshot=snapshot, errors={"form": outcome.message}, values={})
                return Template("storefront/review.html", context=context, status_code=402)
        context = await self._base(request, db_session, store)
        return self._after_payment(store, outcome, context, None, {})

    # ---- orders ------------------------------------------------------------------------------------

    @get("/s/{slug:str}/orders/{order_id:uuid}")
    async def order_page(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        order_id: FromPath[uuid.UUID],
        db_session: DbSession,
        key: FromQuery[str | None] = None,
    ) -> Template:
        store = await store_by_slug(db_session, slug)
        order = await OrderService(db_session, store.id).for_shopper(
            order_id, token=key, customer_id=_customer_id(request, store)
        )
        context = await self._base(request, db_session, store)
        context.update(order=order)
        return Template("storefront/order.html", context=context)

    # ---- account -----------------------------------------------------------------------------------

    @get("/s/{slug:str}/account")
    async def account(self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession) -> Template:
        store = await store_by_slug(db_session, slug)
        context = await self._base(request, db_session, store)
        customer_id = context["customer_id"]
        customer = await CustomerService(db_session, store.id).get(customer_id) if customer_id else None
        orders = await OrderService(db_session, store.id).of_customer(customer_id) if customer else []
        context.update(customer=customer, orders=orders, values={}, errors={}, mode="signin")
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
        store = await store_by_slug(db_session, slug)
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
                session.pop(_customer_key(store), None)
                request.set_session(session)
                return Redirect(f"/s/{store.slug}", status_code=303)
            else:
                return Redirect(f"/s/{store.slug}/account", status_code=303)
        except TillError as exc:
            context = await self._base(request, db_session, store)
            context.update(
                customer=None,
                orders=[],
                mode=action,
                values={"email": data.get("email", ""), "name": data.get("name", "")},
                errors={"form": exc.detail, **exc.fields},
            )
            return Template("storefront/account.html", context=context, status_code=exc.status_code)
        session[_customer_key(store)] = str(customer.id)
        request.set_session(session)
        return Redirect(f"/s/{store.slug}/account", status_code=303)


def _delivery_options(store: Store) -> list[dict[str, Any]]:
    """The rates offered before an address is known (pickup): shown as choices on the checkout form."""
    shipping = BuiltinShipping.from_settings(store.settings, store.currency)
    rates = shipping.quote_rates(destination=None, items=[], subtotal=Money(0, store.currency))
    return [{"code": r.code, "label": r.label, "amount": r.amount} for r in rates]
