"""The topic → handler table: what each webhook topic does. The core decides; workers run it."""

from __future__ import annotations

from typing import Any

from connector.domain.webhooks import Delivery, Topic
from connector.ports import Clock, UnitOfWork
from connector.services import attribution, installation, privacy
from connector.services.inbox import Handler


def build_handlers(clock: Clock) -> dict[str, Handler]:
    """Handlers for every topic this version acts on. Topics without one are kept as
    ``skipped`` (acknowledged, stored) so a later version can still act on them."""

    def on_uninstalled(uow: UnitOfWork, delivery: Delivery, payload: dict[str, Any]) -> str:
        return installation.uninstall(uow, clock, delivery.shop_domain, delivery.triggered_at)

    def bind(fn: Any) -> Handler:
        return lambda uow, delivery, payload: fn(uow, clock, delivery, payload)

    return {
        Topic.ORDERS_CREATE.value: bind(attribution.handle_order),
        Topic.ORDERS_PAID.value: bind(attribution.handle_order),
        Topic.ORDERS_UPDATED.value: bind(attribution.handle_order),
        Topic.ORDERS_CANCELLED.value: bind(attribution.handle_order),
        Topic.REFUNDS_CREATE.value: bind(attribution.handle_refund),
        Topic.APP_UNINSTALLED.value: on_uninstalled,
        Topic.CUSTOMERS_DATA_REQUEST.value: bind(privacy.export_customer_data),
        Topic.CUSTOMERS_REDACT.value: bind(privacy.redact_customer),
        Topic.SHOP_REDACT.value: bind(privacy.redact_shop),
    }
