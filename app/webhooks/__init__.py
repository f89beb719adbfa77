"""Inbound provider webhooks (a first slice: verify, then act; persistence and retries come with the webhooks issue)."""
