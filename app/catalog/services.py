"""Catalog rules: what shoppers can browse, and how managers create and edit products."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import noload

from app.catalog.models import Category, Product, Variant
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.outbox import emit
from app.core.tenancy import bind_store
from app.inventory.services import Availability, InventoryService

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,118}$")
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TAX_CLASSES = ("standard", "reduced", "zero", "exempt")  # the demo rules' classes, and exempt (never taxed)
LOW_STOCK = 3


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:120] or "product"


def parse_price(raw: str) -> int | None:
    """'12.90' or '12,90' or '12' → 1290 minor units; None when it is not a price. No floats."""
    match = re.fullmatch(r"\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*", raw or "")
    if not match:
        return None
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(fraction)


@dataclass(frozen=True)
class VariantView:
    variant: Variant
    stock: Availability

    @property
    def low_stock(self) -> bool:
        return 0 < self.stock.available <= LOW_STOCK

    @property
    def sold_out(self) -> bool:
        return self.stock.available <= 0


@dataclass(frozen=True)
class ProductView:
    product: Product
    variants: list[VariantView] = field(default_factory=list)

    @property
    def from_price(self) -> int:
        return min((v.variant.price_minor for v in self.variants), default=0)

    @property
    def sold_out(self) -> bool:
        return all(v.sold_out for v in self.variants)

    @property
    def option_names(self) -> list[str]:
        return list(self.variants[0].variant.options) if self.variants else []


@dataclass(frozen=True)
class VariantInput:
    sku: str
    options: dict[str, str]
    price: str
    compare_at: str = ""
    weight_grams: str = "0"
    id: uuid.UUID | None = None


@dataclass(frozen=True)
class ProductInput:
    name: str
    slug: str
    description: str
    category_id: uuid.UUID | None
    tax_class: str
    image: str
    is_active: bool
    variants: Sequence[VariantInput]


class CatalogService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def categories(self) -> list[Category]:
        return list(await self.session.scalars(select(Category).order_by(Category.position, Category.name)))

    async def browse(
        self,
        *,
        category: str | None = None,
        search: str | None = None,
        include_inactive: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ProductView]:
        """Products by name; ``limit``/``offset`` take one page of them (the storefront shows 48 at a time)."""
        stmt = select(Product).order_by(Product.name, Product.id).offset(offset).limit(limit)
        if not include_inactive:
            stmt = stmt.where(Product.is_active.is_(True))
        if category:
            stmt = stmt.join(Category, Category.id == Product.category_id).where(Category.slug == category)
        if search:
            pattern = f"%{search.strip()}%"
            stmt = stmt.where(or_(Product.name.ilike(pattern), Product.description.ilike(pattern)))
        products = list(await self.session.scalars(stmt))
        return await self._with_stock(products, include_inactive=include_inactive)

    async def has_products_for_sale(self) -> bool:
        """Whether shoppers would find anything: at least one product for sale."""
        found = await self.session.scalar(select(Product.id).where(Product.is_active.is_(True)).limit(1))
        return found is not None

    async def products_with_tax_class(self, tax_classes: Collection[str]) -> list[Product]:
        """The store's products (for sale or not) of these tax classes, by name; their variants are not loaded."""
        if not tax_classes:
            return []
        stmt = (
            select(Product)
            .where(Product.tax_class.in_(list(tax_classes)))
            .order_by(Product.name)
            .options(noload(Product.variants))
        )
        return list(await self.session.scalars(stmt))

    async def product_by_slug(self, slug: str) -> ProductView:
        product = await self.session.scalar(select(Product).where(Product.slug == slug, Product.is_active.is_(True)))
        if product is None:
            raise NotFound("We could not find that product.")
        return (await self._with_stock([product]))[0]

    async def product(self, product_id: uuid.UUID) -> ProductView:
        product = await self.session.get(Product, product_id)
        if product is None:
            raise NotFound("No such product.")
        return (await self._with_stock([product], include_inactive=True))[0]

    async def _with_stock(self, products: list[Product], *, include_inactive: bool = False) -> list[ProductView]:
        variant_ids = [v.id for p in products for v in p.variants]
        stock = await InventoryService(self.session, self.store_id).availability(variant_ids) if variant_ids else {}
        return [
            ProductView(p, [VariantView(v, stock[v.id]) for v in p.variants if include_inactive or v.is_active])
            for p in products
        ]

    async def variants(self, variant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Variant]:
        rows = await self.session.execute(
            select(Variant, Product)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.id.in_(variant_ids))
            .options(noload(Product.variants))  # these variants only, not every variant of each product
        )
        found: dict[uuid.UUID, Variant] = {}
        for variant, product in rows:
            variant.product = product
            found[variant.id] = variant
        return found

    async def variants_by_sku(self, skus: Sequence[str]) -> dict[str, Variant]:
        """The store's variants with these SKUs (active or not), each with its product loaded."""
        rows = await self.session.execute(
            select(Variant, Product)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.sku.in_(list(skus)))
            .options(noload(Product.variants))
        )
        found: dict[str, Variant] = {}
        for variant, product in rows:
            variant.product = product
            found[variant.sku] = variant
        return found

    async def save_product(
        self, data: ProductInput, product_id: uuid.UUID | None = None, *, tax_classes: Collection[str] = TAX_CLASSES
    ) -> Product:
        """Create or update a product with its variants; every problem is reported at once, per field.

        ``tax_classes``: the classes the store's tax settings define (``app.tax.settings.store_tax_classes``);
        the built-in ones by default."""
        fields = await self._validate(data, product_id, tax_classes)
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        if product_id is None:
            product = Product(variants=[])
            self.session.add(product)
        else:
            product = (await self.product(product_id)).product
        product.name, product.slug = data.name.strip(), data.slug
        product.description, product.category_id = data.description.strip(), data.category_id
        product.tax_class, product.image, product.is_active = data.tax_class, data.image.strip(), data.is_active
        existing = {v.id: v for v in product.variants}
        kept: list[Variant] = []
        for position, item in enumerate(data.variants):
            variant = existing.get(item.id) if item.id else None
            if variant is None:
                variant = Variant(store_id=self.store_id)
            variant.sku, variant.options, variant.position = item.sku.strip(), item.options, position
            variant.price_minor = parse_price(item.price) or 0
            variant.compare_at_minor = parse_price(item.compare_at) if item.compare_at.strip() else None
            variant.weight_grams = int(item.weight_grams or 0)
            kept.append(variant)
        product.variants = kept
        await self.session.flush()
        emit(
            self.session,
            "product.saved",
            aggregate_type="product",
            aggregate_id=product.id,
            payload={"slug": product.slug},
        )
        return product

    async def delete_product(self, product_id: uuid.UUID) -> None:
        """Delete a product with its variants, stock and media rows (cascades; order lines keep their snapshot).
        Its media files are deleted by the worker once this commits (``app.media.services.release_product_media``)."""
        from app.media.services import release_product_media  # media builds on the catalog, not the other way

        product = (await self.product(product_id)).product
        await release_product_media(self.session, self.store_id, product.id)
        slug = product.slug
        await self.session.delete(product)
        await self.session.flush()
        emit(self.session, "product.deleted", aggregate_type="product", aggregate_id=product_id, payload={"slug": slug})

    async def _validate(
        self, data: ProductInput, product_id: uuid.UUID | None, tax_classes: Collection[str]
    ) -> dict[str, str]:
        fields: dict[str, str] = {}
        if not 1 <= len(data.name.strip()) <= 200:
            fields["name"] = "Enter a name of 1 to 200 characters."
        if not _SLUG.match(data.slug):
            fields["slug"] = "Use lowercase letters, digits and dashes."
        elif await self.session.scalar(select(Product.id).where(Product.slug == data.slug, Product.id != product_id)):
            fields["slug"] = "Another product uses this address."
        if data.tax_class not in tax_classes:
            fields["tax_class"] = "Choose a tax class."
        if data.category_id and await self.session.get(Category, data.category_id) is None:
            fields["category_id"] = "Choose a category."
        if not data.variants:
            fields["variants"] = "Add at least one variant."
        skus: set[str] = set()
        for i, item in enumerate(data.variants):
            sku = item.sku.strip()
            if not _SKU.match(sku):
                fields[f"variants.{i}.sku"] = "Use letters, digits, dots, dashes (up to 64)."
            elif sku in skus:
                fields[f"variants.{i}.sku"] = "This SKU appears twice."
            skus.add(sku)
            price = parse_price(item.price)
            if price is None:
                fields[f"variants.{i}.price"] = "Enter a price such as 4.20."
            if item.compare_at.strip():
                compare = parse_price(item.compare_at)
                if compare is None or (price is not None and compare <= price):
                    fields[f"variants.{i}.compare_at"] = "Leave empty, or enter more than the price."
            if not item.weight_grams.strip().isdigit():
                fields[f"variants.{i}.weight_grams"] = "Enter grams as a whole number."
        if skus:
            clash = await self.session.scalar(
                select(Variant.sku).where(Variant.sku.in_(skus), Variant.product_id != product_id).limit(1)
            )
            if clash:
                index = next(i for i, v in enumerate(data.variants) if v.sku.strip() == clash)
                fields[f"variants.{index}.sku"] = "Another product uses this SKU."
        return fields

    async def ensure_category(self, slug: str, name: str, description: str = "", position: int = 0) -> Category:
        category = await self.session.scalar(select(Category).where(Category.slug == slug))
        if category is None:
            category = Category(slug=slug, name=name, description=description, position=position)
            self.session.add(category)
            await self.session.flush()
        return category


def variant_inputs_from_form(form: Mapping[str, str]) -> list[VariantInput]:
    """Rows ``variants-N-field`` of the product form, in order; blank rows are skipped."""
    indexes = sorted({int(m.group(1)) for key in form if (m := re.match(r"variants-(\d+)-", key))})
    rows: list[VariantInput] = []
    for i in indexes:

        def get(name: str, i: int = i) -> str:
            return form.get(f"variants-{i}-{name}", "").strip()

        if not any(get(n) for n in ("sku", "price", "options")):
            continue
        options: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in get("options").split(";"))):
            name, _, value = pair.partition(":")
            if name.strip() and value.strip():
                options[name.strip()] = value.strip()
        raw_id = get("id")
        rows.append(
            VariantInput(
                id=uuid.UUID(raw_id) if raw_id else None,
                sku=get("sku"),
                options=options,
                price=get("price"),
                compare_at=get("compare_at"),
                weight_grams=get("weight_grams") or "0",
            )
        )
    return rows


__all__ = ["CatalogService", "Conflict", "ProductInput", "ProductView", "VariantInput", "VariantView"]
