"""Shopper accounts (optional: guests check out with an e-mail)."""
