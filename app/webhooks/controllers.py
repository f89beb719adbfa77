from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import FromPath

from app.webhooks.intake import receive


class WebhookController(Controller):
    path = "/webhooks"
    include_in_schema = False

    @post("/{provider:str}", status_code=200)
    async def intake(self, request: Request[Any, Any, Any], provider: FromPath[str]) -> dict[str, Any]:
        state = request.app.state
        return await receive(
            provider,
            await request.body(),
            request.headers.get("stripe-signature", ""),
            sessions=state.sessions,
            redis=state.redis,
            settings=state.settings,
        )
