"""The composition root: builds every adapter from :class:`Settings` and wires them together.

``bootstrap(settings, **overrides)`` is the one place that knows which implementation backs
each port; tests pass fakes as overrides (``clock=FakeClock()``, ``jobs=InProcessJobQueue(...)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from shopify_app import ShopifyApp

from adapters.clock import SecretsIdGenerator, SystemClock
from adapters.crypto import TokenCipher
from adapters.db.api_budget import ShopifyBudgetStore
from adapters.db.engine import make_engine
from adapters.db.unit_of_work import SqlAlchemyUnitOfWork
from adapters.notify import ConsoleNotifier
from adapters.queue.inprocess import InProcessJobQueue
from adapters.salesforce.client import SalesforceGateway
from adapters.settings import Settings
from adapters.shopify.discounts import ShopifyDiscounts
from adapters.shopify.graphql import ShopifyGraphQLClient
from adapters.shopify.http import make_http_client
from adapters.shopify.orders import ShopifyOrders
from adapters.shopify.platform import ShopifyAdminPlatform
from adapters.shopify.rewards import ShopifyRewards
from adapters.shopify.verification import ShopifyVerifier
from adapters.storage import LocalFileStorage, S3FileStorage
from connector.ports import (
    Clock,
    CommercePlatform,
    CrmGateway,
    CustomerExport,
    DiscountPlatform,
    FileStorage,
    IdGenerator,
    JobQueue,
    Notifier,
    OrderSource,
    RewardPlatform,
    UnitOfWork,
)
from connector.services import installation
from connector.services.handlers import build_handlers
from connector.services.inbox import Handler
from connector.services.payouts import FulfilmentContext

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: sa.Engine
    cipher: TokenCipher
    clock: Clock
    ids: IdGenerator
    jobs: JobQueue
    verifier: ShopifyVerifier
    shopify_http: httpx.Client
    shopify: CommercePlatform
    discounts: DiscountPlatform
    orders_source: OrderSource
    customer_export: CustomerExport  # bulk operations (the Shopify discounts adapter)
    handlers: dict[str, Handler] = field(default_factory=dict)
    notifier: Notifier = field(default_factory=ConsoleNotifier)
    redis: Any = None
    salesforce: CrmGateway | None = None  # None: SALESFORCE_CLIENT_ID/SECRET unset
    rewards: RewardPlatform | None = None  # gift cards, store credit, reward codes
    storage: FileStorage | None = None  # uploaded resources (local disk by default)

    @property
    def salesforce_redirect_uri(self) -> str:
        return f"{self.settings.app_url}/salesforce/callback"

    def uow(self) -> UnitOfWork:
        return SqlAlchemyUnitOfWork(self.engine, self.cipher, self.clock)

    def access_token(self, shop_domain: str) -> str:
        """A usable offline token for the shop (refreshed first if it is about to expire)."""
        return installation.access_token(self.uow, self.shopify, self.clock, shop_domain)

    @property
    def webhook_uri(self) -> str:
        return f"{self.settings.app_url}/webhooks/shopify"

    def fulfilment(self) -> FulfilmentContext:
        """What the payout jobs need: reward codes are derived with the app's secret key."""
        assert self.rewards is not None
        return FulfilmentContext(
            uow=self.uow,
            rewards=self.rewards,
            access_token=self.access_token,
            clock=self.clock,
            secret=self.settings.secret_key.encode(),
            failpoints=self.settings.failpoints,
        )

    def close(self) -> None:
        self.shopify_http.close()
        self.engine.dispose()


def bootstrap(settings: Settings, **overrides: Any) -> Container:
    """Build the container. Nothing connects until first used (engines and clients are lazy)."""
    clock = overrides.get("clock") or SystemClock()
    engine = overrides.get("engine") or make_engine(settings.database_url)
    redis = overrides.get("redis")
    jobs = overrides.get("jobs")
    if jobs is None:
        if settings.redis_url:
            from redis import Redis

            from adapters.queue.rq_queue import RqJobQueue

            redis = redis or Redis.from_url(
                settings.redis_url, socket_connect_timeout=2, socket_timeout=5
            )
            jobs = RqJobQueue(redis)
        else:
            jobs = InProcessJobQueue(threaded=True)
    http = overrides.get("shopify_http") or make_http_client(settings.shopify_api_base_url)
    verifier = ShopifyVerifier(
        settings.shopify_api_key, settings.shopify_api_secret, settings.shopify_api_secret_old
    )
    app = ShopifyApp(
        settings.shopify_api_key or "unset",
        settings.shopify_api_secret or "unset",
        settings.shopify_api_secret_old,
    )
    budget = ShopifyBudgetStore(engine)
    graphql = ShopifyGraphQLClient(
        app,
        http,
        settings.shopify_api_version,
        on_budget=lambda shop, available, maximum, rate: budget.record(
            shop, available, maximum, rate, clock.now()
        ),
    )
    platform = overrides.get("shopify") or ShopifyAdminPlatform(
        app,
        http,
        graphql,
        api_key=settings.shopify_api_key,
        api_secret=settings.shopify_api_secret,
        scopes=settings.shopify_scopes,
    )
    shopify_discounts = ShopifyDiscounts(graphql, http=http)  # downloads bulk results too
    rewards = overrides.get("rewards") or ShopifyRewards(graphql)
    return Container(
        settings=settings,
        engine=engine,
        cipher=TokenCipher(settings.encryption_key),
        clock=clock,
        ids=overrides.get("ids") or SecretsIdGenerator(),
        jobs=jobs,
        verifier=verifier,
        shopify_http=http,
        shopify=platform,
        discounts=overrides.get("discounts") or shopify_discounts,
        customer_export=overrides.get("customer_export") or shopify_discounts,
        orders_source=overrides.get("orders_source") or ShopifyOrders(graphql),
        handlers=build_handlers(clock),
        notifier=overrides.get("notifier") or ConsoleNotifier(),
        redis=redis,
        rewards=rewards,
        salesforce=overrides.get("salesforce")
        or (
            SalesforceGateway(
                settings.salesforce_client_id,
                settings.salesforce_client_secret,
                settings.salesforce_login_url,
            )
            if settings.salesforce_enabled
            else None
        ),
        storage=overrides.get("storage") or make_storage(settings),
    )


def make_storage(settings: Settings) -> FileStorage:
    """The S3-compatible bucket when ``STORAGE_S3_BUCKET`` is set, else the local disk."""
    if settings.storage_s3_bucket:
        return S3FileStorage(
            settings.storage_s3_bucket,
            prefix=settings.storage_s3_prefix,
            endpoint_url=settings.storage_s3_endpoint_url,
            region=settings.storage_s3_region,
            access_key_id=settings.storage_s3_access_key_id,
            secret_access_key=settings.storage_s3_secret_access_key,
        )
    return LocalFileStorage(settings.storage_dir or settings.instance_path / "uploads")
