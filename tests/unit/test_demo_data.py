from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.catalog.demo_data import CATEGORIES, PRODUCTS, DemoVariant

REPO_ROOT = Path(__file__).resolve().parents[2]
STATIC = REPO_ROOT / "static"
PRODUCT_IMAGES = STATIC / "img" / "products"
ALL_VARIANTS: list[DemoVariant] = [variant for product in PRODUCTS for variant in product.variants]


def test_catalog_is_big_enough() -> None:
    assert len(PRODUCTS) >= 34
    assert sum(1 for product in PRODUCTS if len(product.variants) >= 2) >= 10
    assert 6 <= len(CATEGORIES) <= 8
    assert all(product.variants for product in PRODUCTS)


def test_skus_are_unique() -> None:
    skus = [variant.sku for variant in ALL_VARIANTS]
    assert len(skus) == len(set(skus))
    assert all(sku and sku == sku.strip() for sku in skus)


def test_slugs_are_unique_and_url_safe() -> None:
    for slugs in ([p.slug for p in PRODUCTS], [c.slug for c in CATEGORIES]):
        assert len(slugs) == len(set(slugs))
        for slug in slugs:
            assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug), slug


def test_every_category_referenced_exists_and_has_products() -> None:
    category_slugs = {category.slug for category in CATEGORIES}
    used = {product.category for product in PRODUCTS}
    assert used <= category_slugs, used - category_slugs
    assert category_slugs <= used, category_slugs - used


def test_every_image_exists() -> None:
    for product in PRODUCTS:
        assert product.image.startswith("/static/img/products/"), product.slug
        assert product.image.endswith(".svg"), product.slug
        path = STATIC / product.image.removeprefix("/static/")
        assert path.is_file(), f"{product.slug}: {path} is missing"


def test_prices_are_positive_ints_and_sales_are_discounts() -> None:
    for variant in ALL_VARIANTS:
        assert type(variant.price_minor) is int, variant.sku
        assert variant.price_minor > 0, variant.sku
        if variant.compare_at_minor is not None:
            assert type(variant.compare_at_minor) is int, variant.sku
            assert variant.compare_at_minor > variant.price_minor, variant.sku
    assert any(variant.compare_at_minor is not None for variant in ALL_VARIANTS)


def test_weights_and_stock_are_sane() -> None:
    for variant in ALL_VARIANTS:
        assert type(variant.weight_grams) is int and variant.weight_grams > 0, variant.sku
        assert type(variant.stock) is int and variant.stock >= 0, variant.sku


def test_some_variants_are_low_stock_and_some_sold_out() -> None:
    low = [variant.sku for variant in ALL_VARIANTS if 1 <= variant.stock <= 3]
    sold_out = [variant.sku for variant in ALL_VARIANTS if variant.stock == 0]
    assert 4 <= len(low) <= 6, low
    assert 1 <= len(sold_out) <= 2, sold_out


def test_variants_of_a_product_share_option_names_and_differ() -> None:
    for product in PRODUCTS:
        names = {tuple(variant.options) for variant in product.variants}
        assert len(names) == 1, product.slug
        combos = {tuple(sorted(variant.options.items())) for variant in product.variants}
        assert len(combos) == len(product.variants), f"{product.slug}: duplicate option combinations"
        if len(product.variants) > 1:
            assert names != {()}, f"{product.slug}: several variants need options to tell them apart"
        for variant in product.variants:
            assert all(key and value for key, value in variant.options.items()), variant.sku


def test_tax_classes() -> None:
    assert {product.tax_class for product in PRODUCTS} <= {"standard", "reduced"}
    for product in PRODUCTS:
        if product.category in {"coffee-beans", "tea", "bakery"}:
            assert product.tax_class == "reduced", product.slug
        if product.category in {"drinks", "merch", "brewing-gear"}:
            assert product.tax_class == "standard", product.slug


def test_texts_are_filled_in() -> None:
    for product in PRODUCTS:
        assert product.name.strip() and product.description.strip(), product.slug
    for category in CATEGORIES:
        assert category.name.strip() and category.description.strip(), category.slug


@pytest.mark.parametrize("svg", sorted(PRODUCT_IMAGES.glob("*.svg")), ids=lambda path: path.name)
def test_svg_is_safe_small_xml(svg: Path) -> None:
    text = svg.read_text(encoding="utf-8")
    root = ET.fromstring(text)  # noqa: S314  (our own files, checked into the repo)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 400 300"
    assert "<script" not in text.lower()
    assert "href" not in text.lower(), "no external references"
    assert len(svg.read_bytes()) < 2048


def test_there_are_svgs_to_check() -> None:
    used = {Path(product.image).name for product in PRODUCTS}
    on_disk = {path.name for path in PRODUCT_IMAGES.glob("*.svg")}
    assert used <= on_disk
