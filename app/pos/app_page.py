"""The POS tablet app: the page at ``/pos`` and its service worker at ``/pos/sw.js``.

The page is a shell; everything after it is static/pos/*.js talking to /pos/api/… (docs/pos.md). The service
worker is served from under /pos (not /static) so that it may control the page, with ``Service-Worker-Allowed``
widening its scope from ``/pos/`` to ``/pos`` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Controller, Request, get
from litestar.response import File, Template

from app.core.rbac import Role, principal_of, require_role

SERVICE_WORKER = Path(__file__).resolve().parents[2] / "static" / "pos" / "sw.js"


class PosAppController(Controller):
    path = "/pos"
    include_in_schema = False

    @get("/", name="pos_app", guards=[require_role], opt={"min_role": Role.CASHIER})
    async def app_page(self, request: Request[Any, Any, Any]) -> Template:
        response = Template("pos/app.html", context={"me": principal_of(request)})
        response.headers["cache-control"] = "no-cache"  # the service worker keeps the offline copy
        return response

    @get("/sw.js", name="pos_service_worker")
    async def service_worker(self) -> File:
        """Plain code, no secrets: served to anyone (a browser re-checks it even while signed out)."""
        return File(
            SERVICE_WORKER,
            filename="sw.js",
            content_disposition_type="inline",
            media_type="text/javascript",
            headers={"cache-control": "no-cache", "service-worker-allowed": "/pos"},
        )
