"""Typed domain errors. Services raise these; one handler maps them to HTTP.

``/api`` answers ``application/problem+json``; pages answer an inline fragment (HTMX)
or a friendly error page. The request's transaction rolls back on every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping


class TillError(Exception):
    status_code = 400
    title = "Bad request"
    code = "bad_request"

    def __init__(self, detail: str, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = dict(fields or {})


class ValidationFailed(TillError):
    """Input is wrong; ``fields`` says which field and why."""

    status_code = 422
    title = "Invalid input"
    code = "validation_failed"


class NotFound(TillError):
    status_code = 404
    title = "Not found"
    code = "not_found"


class Conflict(TillError):
    status_code = 409
    title = "Conflict"
    code = "conflict"


class PermissionDenied(TillError):
    status_code = 403
    title = "Forbidden"
    code = "forbidden"


class NotSignedIn(TillError):
    status_code = 401
    title = "Sign-in required"
    code = "unauthorized"


class TooManyRequests(TillError):
    status_code = 429
    title = "Too many requests"
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(detail, fields=fields)
        self.retry_after = retry_after
