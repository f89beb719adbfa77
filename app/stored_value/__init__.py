"""Stored value (issue 15): gift cards, store credit and loyalty points on one ledger (``ledger.py``)."""
