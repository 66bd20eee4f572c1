"""The topic → handler table: what each webhook topic does. The core decides; workers run it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector.domain.webhooks import Delivery, Topic
from connector.ports import Clock, UnitOfWork
from connector.services import attribution, installation, privacy
from connector.services.inbox import Handler


class OrderEvents:
    """Order and refund topics: one handler object, so the inbox applies a run of them in one
    go (:func:`attribution.apply_deliveries`), with the same effects as one at a time."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def __call__(
        self, uow: UnitOfWork, delivery: Delivery, payload: dict[str, Any]
    ) -> str | None:
        return self.batch(uow, [(delivery, payload)])[0]

    def batch(
        self, uow: UnitOfWork, items: Sequence[tuple[Delivery, dict[str, Any]]]
    ) -> list[str | None]:
        return list(attribution.apply_deliveries(uow, self._clock, items))


def build_handlers(clock: Clock) -> dict[str, Handler]:
    """Handlers for every topic this version acts on. Topics without one are kept as
    ``skipped`` (acknowledged, stored) so a later version can still act on them."""

    def on_uninstalled(uow: UnitOfWork, delivery: Delivery, payload: dict[str, Any]) -> str:
        return installation.uninstall(uow, clock, delivery.shop_domain, delivery.triggered_at)

    def bind(fn: Any) -> Handler:
        return lambda uow, delivery, payload: fn(uow, clock, delivery, payload)

    order_events = OrderEvents(clock)
    return {
        Topic.ORDERS_CREATE.value: order_events,
        Topic.ORDERS_PAID.value: order_events,
        Topic.ORDERS_UPDATED.value: order_events,
        Topic.ORDERS_CANCELLED.value: order_events,
        Topic.REFUNDS_CREATE.value: order_events,
        Topic.APP_UNINSTALLED.value: on_uninstalled,
        Topic.CUSTOMERS_DATA_REQUEST.value: bind(privacy.export_customer_data),
        Topic.CUSTOMERS_REDACT.value: bind(privacy.redact_customer),
        Topic.SHOP_REDACT.value: bind(privacy.redact_shop),
    }
