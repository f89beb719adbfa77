"""create_app(): plugins, routes, middleware — nothing else."""

from __future__ import annotations

from pathlib import Path

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.plugins.flash import FlashConfig, FlashPlugin
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis
from saq import Queue

from app.catalog.controllers import CatalogAdminController
from app.checkout.controllers import CheckoutApiController
from app.checkout.fast_path import CheckoutFastPathMiddleware
from app.config import ConfigError, Settings, load_settings
from app.core.db import (
    create_engine,
    dispose,
    make_sqlalchemy_config,
    migration_problem,
    migration_state,
    session_maker,
)
from app.core.encryption import install_keyring
from app.core.health import HealthController, MetricsController
from app.core.http_errors import exception_handlers
from app.core.idempotency import IdempotencyMiddleware, IdempotencyStore
from app.core.live import Hub
from app.core.logging import CorrelationIdMiddleware, configure_logging
from app.core.request_metrics import RequestMetricsMiddleware
from app.core.security_headers import SecurityHeadersMiddleware
from app.core.sessions import LazySessionConfig
from app.core.templating import make_template_config
from app.disputes.pages import DisputePagesController
from app.ingestion.controllers import IngestController, IngestionPagesController
from app.media.controllers import ROUTES as MEDIA_ROUTES
from app.notifications.pages import OutboxPageController
from app.orders.board import BoardController
from app.orders.controllers import OrderAuditApiController, OrdersApiController
from app.orders.pages import OrderPagesController
from app.payments.api import PaymentsAdminApiController
from app.payments.connect_pages import ConnectApiController, PayoutPagesController
from app.payments.controllers import SandboxController
from app.payments.order_payments_api import (
    CheckoutPaymentsApiController,
    OrderPaymentsApiController,
    RefundRequestsApiController,
)
from app.payments.pages import PaymentPagesController
from app.payments.panel import PaymentPanelController
from app.payments.refund_queue import RefundQueueController
from app.payments.settings_pages import PaymentSettingsController
from app.pos.api import PosApiController
from app.pos.app_page import PosAppController
from app.pos.pages import PosPagesController, RegisterPagesController, ShiftReportPagesController
from app.pos.readers.api import CardPaymentsApiController
from app.pos.readers.pages import RegisterReaderPageController, SandboxReaderPageController
from app.promotions.api import PromotionsAdminApiController
from app.promotions.pages import PromotionPagesController
from app.receipts.controllers import ReceiptLinkController, ReceiptPagesController, ReceiptsApiController
from app.receipts.printer_pages import PrinterPagesController
from app.receipts.webhooks import WhatsAppWebhookController
from app.reconciliation.api import ReconciliationApiController
from app.reconciliation.pages import (
    KillSwitchPagesController,
    ProviderCallPagesController,
    ReconciliationPagesController,
)
from app.shipping.pages import ShippingSettingsController
from app.stored_value.api import (
    GiftCardsAdminApiController,
    StoreCreditAdminApiController,
    StoredValueRefundsApiController,
)
from app.stored_value.loyalty.api import LoyaltyAdminApiController
from app.stored_value.loyalty.pages import LoyaltyPagesController
from app.stored_value.loyalty.pos import LoyaltyPosApiController
from app.stored_value.loyalty.shop import LoyaltyShopController
from app.stored_value.order_panel import StoredValueOrderPanelController
from app.stored_value.pages import StoredValuePagesController
from app.stored_value.pos import GiftCardPosApiController
from app.stored_value.shop import GiftCardShopController
from app.storefront import cache as storefront_cache
from app.storefront.controllers import AccountController, CheckoutPagesController, StorefrontController
from app.storefront.controllers._common import StoreNotOpen, opening_soon_handler
from app.storefront.fast import StorefrontCacheMiddleware
from app.stores import token_cache
from app.stores.access import AccessMiddleware
from app.stores.controllers import SignInController, StaffController, StoreApiController
from app.stores.hours_pages import HoursSettingsController
from app.stores.onboarding_pages import StartController, StoreLifecycleController
from app.stores.settings_pages import StoreSettingsController
from app.stores.team_api import TeamApiController
from app.stores.team_pages import StaffLinksController, TeamPagesController
from app.tax.pages import TaxSettingsController
from app.webhooks.controllers import WEBHOOK_HANDLERS
from app.webhooks.pages import WebhookEventsApiController, WebhookPagesController

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
QUEUE_NAME = "till"
# Machine endpoints: no session cookie, no CSRF cookie (the API authenticates with bearer tokens).
NO_COOKIE_PATHS = ["^/api/", "^/health$", "^/ready$", "^/metrics$", "^/static/", "^/schema", "^/webhooks/", "^/media/"]


def create_app(settings: Settings | None = None, *, check_migrations: bool = True) -> Litestar:
    settings = settings or load_settings()
    if settings.database_url is None or settings.redis_url is None:
        raise ConfigError("DATABASE_URL and REDIS_URL must be set (`till up` sets them for the embedded servers)")
    configure_logging(settings.log_level)
    install_keyring(settings)  # secrets at rest (ENCRYPTION_KEYS, else derived from SECRET_KEY)

    engine = create_engine(settings.database_url)
    sessions = session_maker(engine)
    redis = Redis.from_url(settings.redis_url)
    queue = Queue.from_url(settings.redis_url, name=QUEUE_NAME)
    channels = ChannelsPlugin(backend=RedisChannelsPubSubBackend(redis=redis), arbitrary_channels_allowed=True)
    live = Hub(channels)
    template_config = make_template_config()
    session_config = LazySessionConfig(  # an empty session is stored nowhere (app/core/sessions.py)
        store="sessions",
        key="till_session",
        max_age=12 * 3600,
        secure=settings.is_production,
        samesite="lax",
        exclude=NO_COOKIE_PATHS,
    )
    # Request metrics for every route but /metrics and the provider webhooks (hot path, answered on their own);
    # the tablet's gift card lookup is on the hot path too, and counted like any other request.
    prometheus = PrometheusConfig(
        app_name="till",
        prefix="till",
        group_path=True,
        exclude=["/metrics", "^/webhooks/"],
        middleware_class=RequestMetricsMiddleware,  # Litestar's metrics, each series looked up once
    )

    async def on_startup(app: Litestar) -> None:
        if check_migrations:
            problem = migration_problem(*await migration_state(engine))
            if problem:
                raise ConfigError(problem)
        await queue.connect()
        storefront_cache.register(engine, redis)  # catalog commits bump the shop pages' version
        token_cache.register(redis)  # token revocations and store changes bump the API access version

    async def on_shutdown(app: Litestar) -> None:
        await live.close()
        await queue.disconnect()
        storefront_cache.unregister(engine, redis)
        token_cache.unregister(redis)
        await redis.aclose()
        await dispose(engine)

    return Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            SignInController,
            StaffController,
            StartController,
            StoreLifecycleController,
            StoreSettingsController,
            StoreApiController,
            TeamPagesController,
            StaffLinksController,
            TeamApiController,
            OutboxPageController,
            StorefrontController,
            CheckoutPagesController,
            AccountController,
            LoyaltyShopController,
            CatalogAdminController,
            *MEDIA_ROUTES,
            CheckoutApiController,
            OrdersApiController,
            OrderAuditApiController,
            OrderPagesController,
            ReceiptPagesController,
            ReceiptLinkController,
            ReceiptsApiController,
            PrinterPagesController,
            WhatsAppWebhookController,
            BoardController,
            *WEBHOOK_HANDLERS,
            IngestController,
            IngestionPagesController,
            WebhookPagesController,
            WebhookEventsApiController,
            SandboxController,
            PayoutPagesController,
            ConnectApiController,
            PaymentSettingsController,
            HoursSettingsController,
            TaxSettingsController,
            ShippingSettingsController,
            PaymentPagesController,
            ReconciliationPagesController,
            ReconciliationApiController,
            KillSwitchPagesController,
            ProviderCallPagesController,
            PaymentsAdminApiController,
            OrderPaymentsApiController,
            CheckoutPaymentsApiController,
            PaymentPanelController,
            RefundQueueController,
            RefundRequestsApiController,
            DisputePagesController,
            PromotionPagesController,
            PromotionsAdminApiController,
            LoyaltyPagesController,
            LoyaltyAdminApiController,
            LoyaltyPosApiController,
            StoredValuePagesController,
            StoredValueOrderPanelController,
            GiftCardShopController,
            GiftCardPosApiController,
            StoredValueRefundsApiController,
            GiftCardsAdminApiController,
            StoreCreditAdminApiController,
            PosAppController,
            PosApiController,
            RegisterPagesController,
            PosPagesController,
            ShiftReportPagesController,
            CardPaymentsApiController,
            SandboxReaderPageController,
            RegisterReaderPageController,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
        ],
        plugins=[
            SQLAlchemyPlugin(config=make_sqlalchemy_config(engine)),
            HTMXPlugin(),
            FlashPlugin(config=FlashConfig(template_config=template_config)),
            channels,
        ],
        middleware=[
            CorrelationIdMiddleware(),
            SecurityHeadersMiddleware(),
            StorefrontCacheMiddleware(),  # cached shop pages answer here (app/storefront/fast.py)
            prometheus.middleware,
            CheckoutFastPathMiddleware(),  # checkout quote and complete answer here (app/checkout/fast_path.py)
            session_config.middleware,
            AccessMiddleware(),
            IdempotencyMiddleware(),
        ],
        stores={"sessions": RedisStore(redis, namespace="till:session")},
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="till_csrf",
            header_name="x-csrftoken",
            cookie_secure=settings.is_production,
            exclude=[*NO_COOKIE_PATHS, "^/webhooks/"],
        ),
        template_config=template_config,
        request_class=HTMXRequest,
        exception_handlers={**exception_handlers, StoreNotOpen: opening_soon_handler},
        openapi_config=OpenAPIConfig(
            title="Till API",
            version="1",
            path="/schema",
            description="Integrations API. Authenticate with `Authorization: Bearer till_…`; "
            "mutating calls accept `Idempotency-Key`.",
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin()],
        ),
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "sessions": sessions,
                "redis": redis,
                "queue": queue,
                "channels": channels,
                "idempotency": IdempotencyStore(engine),
                "live": live,
                "token_cache": token_cache.TokenCache(),
            }
        ),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        debug=False,
    )
