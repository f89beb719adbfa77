"""Shopping carts: lines of variants and quantities, found by a random token (cookie or API)."""
