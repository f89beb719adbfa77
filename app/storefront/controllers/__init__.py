"""Shopper pages: browse, product, cart (HTMX), checkout, payment, order status, account."""

from app.storefront.controllers._account import AccountController
from app.storefront.controllers._browse import StorefrontController
from app.storefront.controllers._checkout import CheckoutPagesController, parse_card

__all__ = ["AccountController", "CheckoutPagesController", "StorefrontController", "parse_card"]
