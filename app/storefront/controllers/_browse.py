"""Browsing and the cart."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template

from app.cart.services import CartService
from app.catalog.services import CatalogService
from app.config import Settings
from app.core import pg
from app.core.errors import NotFound, TillError
from app.media.delivery import gallery, primary_pictures
from app.promotions.engine import normalise_code
from app.promotions.pricing import price_cart
from app.storefront.cache import PAGE_OPT
from app.storefront.controllers._cached import PAGE_SIZE, cached_page
from app.storefront.controllers._common import (
    CART_COOKIE,
    TOO_MANY_CODES,
    DbSession,
    FormData,
    cart_promotions,
    cart_token,
    code_refused,
    code_tries_left,
    customer_id_of,
    is_htmx,
    set_promo_code,
    shop_context,
    shop_store,
)
from app.stores.details import StoreDetailsService
from app.stores.services import store_by_slug


class StorefrontController(Controller):
    include_in_schema = False

    @get("/", name="root")
    async def root(self, request: Request[Any, Any, Any]) -> Redirect:
        settings: Settings = request.app.state.settings
        return Redirect(f"/s/{settings.default_store}", status_code=302)

    # ---- browsing ----------------------------------------------------------------------------------

    @get("/s/{slug:str}", name="storefront_home", opt={PAGE_OPT: True})
    async def home(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        db_session: DbSession,
        category: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Response[Any]:
        """The grid, 48 products a page: the next page loads as the shopper scrolls to its end (htmx, into
        ``#more-products``) or by the "More" link without JavaScript. Served from the page cache (app/storefront/
        cache.py) when it can be."""
        store = await shop_store(request, db_session, slug)
        page = max(1, min(page, 10_000))
        target = request.headers.get("hx-target") if is_htmx(request) else None
        template = {"products": "storefront/_products.html", "more-products": "storefront/_products.html"}.get(
            target or "", "storefront/home.html"
        )

        async def context() -> dict[str, Any]:
            catalog = CatalogService(db_session, store.id)
            search = (q or "").strip() or None
            found = await catalog.browse(
                category=category or None, search=search, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
            )
            query = {k: v for k, v in (("category", category), ("q", search)) if v}
            more_url = f"/s/{store.slug}?{urlencode({**query, 'page': page + 1})}" if len(found) > PAGE_SIZE else ""
            secret = request.app.state.settings.secret_key
            pictures = await primary_pictures(db_session, secret, [p.product.id for p in found[:PAGE_SIZE]])
            return {
                "pictures": pictures,
                "products": found[:PAGE_SIZE],
                "categories": await catalog.categories() if template.endswith("home.html") else [],
                "category": category or "",
                "q": q or "",
                "more": target == "more-products",
                "more_url": more_url,
            }

        return await cached_page(request, db_session, store, template, context)

    @get("/s/{slug:str}/logo.png")
    async def logo(
        self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession
    ) -> Response[bytes]:
        """The store's logo (shown on the "opening soon" page too). Its URL names the content's hash (``?v=``)."""
        store = await store_by_slug(db_session, slug)
        logo = await StoreDetailsService(db_session, store.id).logo()
        if logo is None:
            raise NotFound("This shop has no logo.")
        etag = f'"{logo.sha256[:32]}"'
        headers = {"etag": etag, "cache-control": "public, max-age=86400"}
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        return Response(logo.data, media_type=logo.content_type, headers=headers)

    @get("/s/{slug:str}/p/{product_slug:str}", opt={PAGE_OPT: True})
    async def product(
        self, request: Request[Any, Any, Any], slug: FromPath[str], product_slug: FromPath[str], db_session: DbSession
    ) -> Response[Any]:
        store = await shop_store(request, db_session, slug)

        async def context() -> dict[str, Any]:
            view = await CatalogService(db_session, store.id).product_by_slug(product_slug)
            secret = request.app.state.settings.secret_key
            return {"view": view, "gallery": await gallery(db_session, secret, view.product.id)}

        return await cached_page(request, db_session, store, "storefront/product.html", context)

    @get("/s/{slug:str}/cart/count", cache=False)
    async def cart_count(self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession) -> Template:
        """The shopper's cart count alone (never cached): for a page a shared cache in front served."""
        store = await shop_store(request, db_session, slug)
        view = await CartService(db_session, store.id, store.currency).view(cart_token(request))
        return Template("storefront/_cart_count.html", context={"cart": view}, headers={"cache-control": "no-store"})

    @get("/s/{slug:str}/cart")
    async def cart_page(self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession) -> Template:
        store = await shop_store(request, db_session, slug)
        context = await shop_context(request, db_session, store)
        context.update(await cart_promotions(request, db_session, store, context["cart"]))
        return Template("storefront/cart.html", context=context)

    @post("/s/{slug:str}/cart/code", status_code=200, media_type=MediaType.HTML)
    async def cart_code(
        self, request: Request[Any, Any, Any], slug: FromPath[str], data: FormData, db_session: DbSession
    ) -> Response[Any]:
        """Apply a promotion code to the cart (kept in the session for checkout), or remove it (``remove``). A code
        that does not apply is answered with its reason (422) and changes nothing."""
        store = await shop_store(request, db_session, slug)
        view = await CartService(db_session, store.id, store.currency).view(cart_token(request))
        code = normalise_code(data.get("code", ""))
        message, error, status = "", "", 200
        if data.get("remove"):
            set_promo_code(request, store, None)
            message = "Code removed."
        elif not code:
            error, status = "Enter a code.", 422
        elif not await code_tries_left(request, store):
            error, status = TOO_MANY_CODES, 429
        else:
            applied, _ = await price_cart(
                await pg.reader(db_session), store, view, codes=(code,), customer_id=customer_id_of(request, store)
            )
            error = applied.rejected.get(code, "")
            if error:
                status = 422
                await code_refused(request, store)
            else:
                set_promo_code(request, store, code)
                message = f"Code {code} applied."
        if not is_htmx(request):
            flash(request, error or message, category="error" if error else "success")
            return Redirect(f"/s/{store.slug}/cart", status_code=303)
        context: dict[str, Any] = {"store": store, "cart": view, "message": ""}
        context.update(await cart_promotions(request, db_session, store, view))
        if error:  # the typed code and its reason; the code kept before (if any) stays as it was
            context.update(code_value=code, typed_error=error)
        context["code_message"] = message
        return Template("storefront/_cart.html", context=context, status_code=status)

    @post("/s/{slug:str}/cart/lines", status_code=200, media_type=MediaType.HTML)
    async def add_to_cart(
        self, request: Request[Any, Any, Any], slug: FromPath[str], data: FormData, db_session: DbSession
    ) -> Response[Any]:
        store = await shop_store(request, db_session, slug)
        service = CartService(db_session, store.id, store.currency)
        cart = await service.get_or_create(cart_token(request), customer_id_of(request, store))
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
        if not is_htmx(request):
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
        store = await shop_store(request, db_session, slug)
        service = CartService(db_session, store.id, store.currency)
        cart = await service.find(cart_token(request))
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
        if not is_htmx(request):
            return Redirect(f"/s/{store.slug}/cart", status_code=303)
        view = await service.view(cart_token(request))
        context = {"store": store, "cart": view, "message": message, "oob_count": True}
        context.update(await cart_promotions(request, db_session, store, view))
        return Template("storefront/_cart.html", context=context, status_code=status)

    # ---- checkout ----------------------------------------------------------------------------------
