"""Outbound messages (e-mail today): recorded in the caller's transaction, delivered by a worker job."""
