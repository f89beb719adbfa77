"""Staff catalog pages (manager+): product list with search, create/edit with variants, stock adjustment."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.services import CatalogService, ProductInput, variant_inputs_from_form
from app.core.errors import ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.inventory.services import ADJUSTMENT_REASONS, InventoryService
from app.stores.services import StoreService
from app.tax.settings import EXEMPT_CLASS, default_tax_class, store_tax_classes

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]


def _product_input(form: dict[str, str]) -> ProductInput:
    raw_category = form.get("category_id", "")
    try:
        category_id = uuid.UUID(raw_category) if raw_category else None
    except ValueError:
        category_id = uuid.UUID(int=0)  # reported as "Choose a category."
    return ProductInput(
        name=form.get("name", ""),
        slug=form.get("slug", "").strip(),
        description=form.get("description", ""),
        category_id=category_id,
        tax_class=form.get("tax_class", ""),
        image=form.get("image", ""),
        is_active=form.get("is_active") == "on",
        variants=variant_inputs_from_form(form),
    )


class CatalogAdminController(Controller):
    path = "/staff/products"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get("/")
    async def list_products(
        self, request: Request[Any, Any, Any], db_session: DbSession, q: FromQuery[str | None] = None
    ) -> Template:
        me = principal_of(request)
        products = await CatalogService(db_session, me.store_id).browse(
            search=(q or "").strip() or None, include_inactive=True
        )
        template = "catalog/_rows.html" if request.headers.get("hx-request") == "true" else "catalog/list.html"
        return Template(template, context={"me": me, "products": products, "q": q or ""})

    @get("/new")
    async def new_product(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        store = await StoreService(db_session, principal_of(request).store_id).get()
        values = {"tax_class": default_tax_class(store.settings), "is_active": "on", "variants-0-weight_grams": "0"}
        return await self._form(request, db_session, values=values, errors={}, product=None, rows=1)

    @post("/new", status_code=303, media_type=MediaType.HTML)
    async def create_product(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        return await self._save(request, data, db_session, None)

    @get("/{product_id:uuid}")
    async def edit_product(
        self, request: Request[Any, Any, Any], product_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        me = principal_of(request)
        view = await CatalogService(db_session, me.store_id).product(product_id)
        p = view.product
        values: dict[str, str] = {
            "name": p.name,
            "slug": p.slug,
            "description": p.description,
            "tax_class": p.tax_class,
            "image": p.image,
            "category_id": str(p.category_id or ""),
            "is_active": "on" if p.is_active else "",
        }
        for i, v in enumerate(view.variants):
            values.update(
                {
                    f"variants-{i}-id": str(v.variant.id),
                    f"variants-{i}-sku": v.variant.sku,
                    f"variants-{i}-options": "; ".join(f"{k}: {val}" for k, val in v.variant.options.items()),
                    f"variants-{i}-price": _minor_to_text(v.variant.price_minor),
                    f"variants-{i}-compare_at": _minor_to_text(v.variant.compare_at_minor)
                    if v.variant.compare_at_minor
                    else "",
                    f"variants-{i}-weight_grams": str(v.variant.weight_grams),
                }
            )
        return await self._form(request, db_session, values=values, errors={}, product=view, rows=len(view.variants))

    @post("/{product_id:uuid}", status_code=303, media_type=MediaType.HTML)
    async def update_product(
        self, request: Request[Any, Any, Any], product_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        return await self._save(request, data, db_session, product_id)

    @post("/{product_id:uuid}/stock", status_code=303, media_type=MediaType.HTML)
    async def adjust_stock(
        self, request: Request[Any, Any, Any], product_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        try:
            variant_id = uuid.UUID(data.get("variant_id", ""))
            delta = int(data.get("delta", "0") or 0)
        except ValueError:
            variant_id, delta = uuid.UUID(int=0), 0
        try:
            level = await InventoryService(db_session, me.store_id).adjust(
                variant_id, delta, data.get("reason", ""), note=data.get("note", ""), actor_id=me.user_id
            )
        except ValidationFailed as exc:
            view = await CatalogService(db_session, me.store_id).product(product_id)
            return await self._form(
                request,
                db_session,
                values={},
                errors={},
                product=view,
                rows=len(view.variants),
                stock_errors={"form": exc.detail, **exc.fields},
                stock_values=data,
                status_code=422,
            )
        flash(request, f"Stock changed by {delta:+d}; {level.on_hand} on hand now.", category="success")
        return Redirect(f"/staff/products/{product_id}", status_code=303)

    async def _save(
        self,
        request: Request[Any, Any, Any],
        data: dict[str, str],
        db_session: AsyncSession,
        product_id: uuid.UUID | None,
    ) -> Template | Redirect:
        me = principal_of(request)
        catalog = CatalogService(db_session, me.store_id)
        tax_classes = store_tax_classes((await StoreService(db_session, me.store_id).get()).settings)
        try:
            product = await catalog.save_product(_product_input(data), product_id, tax_classes=tax_classes)
        except ValidationFailed as exc:
            view = await catalog.product(product_id) if product_id else None
            rows = max(len(variant_inputs_from_form(data)), 1)
            return await self._form(
                request,
                db_session,
                values=data,
                errors={"form": exc.detail, **exc.fields},
                product=view,
                rows=rows,
                status_code=422,
            )
        flash(request, f"Saved “{product.name}”.", category="success")
        return Redirect(f"/staff/products/{product.id}", status_code=303)

    async def _form(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        *,
        values: dict[str, str],
        errors: dict[str, str],
        product: Any,
        rows: int,
        stock_errors: dict[str, str] | None = None,
        stock_values: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        me = principal_of(request)
        catalog = CatalogService(db_session, me.store_id)
        movements = {}
        if product is not None:
            inventory = InventoryService(db_session, me.store_id)
            movements = {v.variant.id: await inventory.movements(v.variant.id, limit=5) for v in product.variants}
        return Template(
            "catalog/form.html",
            context={
                "me": me,
                "values": values,
                "errors": errors,
                "product": product,
                "rows": rows + 1,
                "categories": await catalog.categories(),
                "tax_classes": await _tax_class_choices(db_session, me.store_id, values.get("tax_class", "")),
                "reasons": ADJUSTMENT_REASONS,
                "stock_errors": stock_errors or {},
                "stock_values": stock_values or {},
                "movements": movements,
            },
            status_code=status_code,
        )


async def _tax_class_choices(db_session: AsyncSession, store_id: uuid.UUID, current: str) -> list[tuple[str, str]]:
    """(value, label) for the product form: the store's own tax classes (its tax settings), then exempt."""
    classes = store_tax_classes((await StoreService(db_session, store_id).get()).settings)
    choices = [(c, "exempt (no tax)" if c == EXEMPT_CLASS else c) for c in classes]
    if current and current not in classes:
        choices.append((current, f"{current} (not a tax class any more: choose another)"))
    return choices


def _minor_to_text(amount: int | None) -> str:
    if amount is None:
        return ""
    return f"{amount // 100}.{amount % 100:02d}"
