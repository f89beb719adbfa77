"""One mapping from errors to HTTP: problem+json under /api, friendly pages or inline fragments elsewhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from advanced_alchemy.exceptions import NotFoundError as RepositoryNotFound
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.core.errors import NotFound, NotSignedIn, TillError, TooManyRequests

log = structlog.get_logger(__name__)
PROBLEM_JSON = "application/problem+json"


# JSON endpoints: the integrations API (bearer tokens) and the POS tablet's own (the staff session and CSRF).
JSON_PREFIXES = ("/api/", "/pos/api/")


def _is_api(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(JSON_PREFIXES)


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def problem_body(
    status: int, title: str, detail: str, *, code: str, fields: dict[str, str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": f"https://till.dev/problems/{code}", "title": title, "status": status}
    body["detail"] = detail
    if fields:
        body["fields"] = fields
    return body


def problem(
    status: int, title: str, detail: str, *, code: str, fields: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    return Response(
        problem_body(status, title, detail, code=code, fields=fields), status_code=status, media_type=PROBLEM_JSON
    )


def _page_error(request: Request[Any, Any, Any], status: int, title: str, detail: str) -> Response[Any]:
    if _is_htmx(request):
        return Template("components/_alert.html", context={"kind": "error", "message": detail}, status_code=status)
    return Template(
        "errors/error.html", context={"status": status, "title": title, "detail": detail}, status_code=status
    )


def till_error_handler(request: Request[Any, Any, Any], exc: TillError) -> Response[Any]:
    if isinstance(exc, NotSignedIn) and not _is_api(request):
        target = "/signin?next=" + quote(request.url.path)
        if _is_htmx(request):
            return Response(content="", status_code=204, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}
    if _is_api(request):
        response = problem(exc.status_code, exc.title, exc.detail, code=exc.code, fields=exc.fields)
    else:
        response = _page_error(request, exc.status_code, exc.title, exc.detail)
    response.headers.update(headers)
    return response


def repository_not_found_handler(request: Request[Any, Any, Any], exc: RepositoryNotFound) -> Response[Any]:
    return till_error_handler(request, NotFound("No such thing here."))


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException):
        return till_error_handler(request, NotSignedIn(exc.detail or "Sign in to continue."))
    if _is_api(request):
        fields: dict[str, str] = {}
        if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
            for item in exc.extra:
                if isinstance(item, dict):
                    fields[str(item.get("key") or item.get("source") or "body")] = str(item.get("message"))
        detail = exc.detail if status < 500 else "Something went wrong on our side."
        response = problem(
            status, detail if status < 500 else "Server error", detail, code=f"http_{status}", fields=fields
        )
        response.headers.update(exc.headers or {})
        return response
    titles = {404: "Page not found", 403: "Forbidden", 405: "Not allowed"}
    detail = {
        404: "We could not find that page.",
        403: exc.detail or "You cannot do that.",
    }.get(status, exc.detail if status < 500 else "Something went wrong on our side.")
    return _page_error(request, status, titles.get(status, "Error"), detail)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("request.failed", path=request.url.path, error=type(exc).__name__)
    if _is_api(request):
        return problem(
            HTTP_500_INTERNAL_SERVER_ERROR,
            "Server error",
            "Something went wrong on our side.",
            code="internal",
        )
    return _page_error(request, 500, "Something went wrong", "Something went wrong on our side. Please try again.")


exception_handlers: dict[Any, Any] = {
    TillError: till_error_handler,
    RepositoryNotFound: repository_not_found_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}

__all__ = ["PROBLEM_JSON", "MediaType", "exception_handlers", "problem"]
