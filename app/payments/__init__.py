"""Payments: the provider-agnostic gateway interface (``provider``), webhook signing and the built-in sandbox."""
