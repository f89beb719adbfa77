"""Payment providers beyond the built-in sandbox (``app.payments.sandbox``)."""

from app.payments.providers.stripe import API_VERSION, StripeProvider

__all__ = ["API_VERSION", "StripeProvider"]
