"""Stock per variant per location, reservations with expiry, and the movement ledger."""
