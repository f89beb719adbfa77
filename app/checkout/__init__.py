"""Quotes (frozen checkout snapshots) and the placing-the-order saga."""
