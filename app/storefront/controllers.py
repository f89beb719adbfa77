from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.stores.services import store_by_slug

DbSession = NamedDependency[AsyncSession]


class StorefrontController(Controller):
    include_in_schema = False

    @get("/", name="root")
    async def root(self, request: Request[Any, Any, Any]) -> Redirect:
        settings: Settings = request.app.state.settings
        return Redirect(f"/s/{settings.default_store}", status_code=302)

    @get("/s/{slug:str}", name="storefront_home")
    async def home(self, request: Request[Any, Any, Any], slug: FromPath[str], db_session: DbSession) -> Template:
        store = await store_by_slug(db_session, slug)
        return Template("storefront/home.html", context={"store": store})
