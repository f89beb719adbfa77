"""Loyalty (issue 15): a program per store, points on the stored-value ledger. See docs/loyalty.md."""
