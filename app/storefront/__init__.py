"""The shopper-facing pages."""
