"""Shopify's mandatory privacy webhooks, handled for real.

- ``customers/data_request``: assemble every piece of personal data the app holds on the customer
  into an export the merchant can download (``GET /api/v1/privacy/requests/{id}``).
- ``customers/redact``: erase it (stored webhook bodies blanked, exports deleted).
- ``shop/redact``: delete everything the app holds for the shop.

Each capability that stores personal data adds its part here, so the three stay complete.
A record of each request (ids and timestamps only, no personal data) is kept as evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from connector.domain.ambassadors import AmbassadorStatus, AuditEntry
from connector.domain.webhooks import Delivery
from connector.ports import Clock, PrivacyRequest, UnitOfWork

log = logging.getLogger(__name__)


def _customer_ref(payload: Mapping[str, Any]) -> tuple[int | None, list[int]]:
    customer = payload.get("customer") or {}
    raw_id = customer.get("id") if isinstance(customer, Mapping) else None
    customer_id = int(raw_id) if isinstance(raw_id, int | str) and str(raw_id).isdigit() else None
    orders = payload.get("orders_requested") or payload.get("orders_to_redact") or []
    order_ids = [int(o) for o in orders if isinstance(o, int | str) and str(o).isdigit()]
    return customer_id, order_ids


def export_customer_data(
    uow: UnitOfWork, clock: Clock, delivery: Delivery, payload: dict[str, Any]
) -> str:
    customer_id, order_ids = _customer_ref(payload)
    held = uow.inbox.for_customer(delivery.shop_domain, customer_id, order_ids)
    shop = uow.shops.get(delivery.shop_domain)
    orders: list[dict[str, Any]] = []
    ambassador: dict[str, Any] | None = None
    if shop is not None and shop.id is not None:
        orders = uow.orders.for_customer(shop.id, customer_id, order_ids)
        if customer_id is not None and (a := uow.ambassadors.by_customer(shop.id, customer_id)):
            ambassador = {
                "id": a.id,
                "email": a.email,
                "first_name": a.first_name,
                "last_name": a.last_name,
                "status": a.status.value,
                "code": a.code,
                "social": dict(a.social),
                "applications": [
                    {"id": ap.id, "status": str(ap.status),
                     "answers": [{"question": q.label, "answer": q.answer} for q in ap.answers],
                     "social": dict(ap.social)}
                    for ap in uow.applications.for_ambassador(shop.id, a.id or 0)
                ],
                "content_submissions": [
                    {"id": x.id, "kind": x.kind.value, "url": x.url, "text": x.text,
                     "status": x.status.value}
                    for x in uow.content.submissions(shop.id, ambassador_id=a.id, limit=10_000)
                ],
            }
    summary = {
        "ambassador": ambassador,
        "orders": orders,
        "data_request_id": (payload.get("data_request") or {}).get("id"),
        "customer_id": customer_id,
        "orders_requested": order_ids,
        "webhook_deliveries": held,
    }
    request_id = uow.privacy_requests.add(
        PrivacyRequest(
            id=None,
            shop_domain=delivery.shop_domain,
            topic=delivery.topic,
            received_at=delivery.received_at,
            completed_at=clock.now(),
            customer_id=customer_id,
            summary=summary,
        )
    )
    return f"export {request_id}: {len(held)} stored records"


def redact_customer(
    uow: UnitOfWork, clock: Clock, delivery: Delivery, payload: dict[str, Any]
) -> str:
    customer_id, order_ids = _customer_ref(payload)
    blanked = uow.inbox.redact_customer(
        delivery.shop_domain, customer_id, order_ids, also_ids=[delivery.id]
    )
    exports = uow.privacy_requests.delete_for(delivery.shop_domain, customer_id)
    orders = anonymised = 0
    shop = uow.shops.get(delivery.shop_domain)
    if shop is not None and shop.id is not None:
        orders = uow.orders.redact_customer(shop.id, customer_id, order_ids)
        if customer_id is not None:
            anonymised = _anonymise_ambassador(uow, clock, shop.id, customer_id)
    uow.privacy_requests.add(
        PrivacyRequest(
            id=None,
            shop_domain=delivery.shop_domain,
            topic=delivery.topic,
            received_at=delivery.received_at,
            completed_at=clock.now(),
            customer_id=None,  # evidence without the identifier we were asked to erase
            summary={
                "webhook_bodies_redacted": blanked,
                "exports_deleted": exports,
                "orders_redacted": orders,
                "ambassadors_anonymised": anonymised,
            },
        )
    )
    return f"redacted {blanked} stored records"


def redact_shop(uow: UnitOfWork, clock: Clock, delivery: Delivery, payload: dict[str, Any]) -> str:
    domain = delivery.shop_domain
    deleted_shop = uow.shops.delete(domain)
    deliveries = uow.inbox.delete_shop(domain, keep_id=delivery.id)
    exports = uow.privacy_requests.delete_for(domain)
    uow.privacy_requests.add(
        PrivacyRequest(
            id=None,
            shop_domain=domain,
            topic=delivery.topic,
            received_at=delivery.received_at,
            completed_at=clock.now(),
            customer_id=None,
            summary={
                "shop_deleted": deleted_shop,
                "webhook_deliveries_deleted": deliveries,
                "exports_deleted": exports,
            },
        )
    )
    log.info("privacy.shop_redacted", extra={"shop": domain})
    return f"shop data deleted ({deliveries} deliveries)"


def _anonymise_ambassador(uow: UnitOfWork, clock: Clock, shop_id: int, customer_id: int) -> int:
    """An ambassador who asked to be erased: personal data replaced, removed from the program.
    Ledger amounts stay (they are the merchant's financial records, tied to an id only)."""
    a = uow.ambassadors.by_customer(shop_id, customer_id)
    if a is None or a.id is None:
        return 0
    status = a.status if a.status is AmbassadorStatus.REMOVED else AmbassadorStatus.REMOVED
    placeholder = f"redacted-{a.id}@redacted.invalid"
    uow.applications.redact_ambassador(shop_id, a.id, placeholder)
    uow.content.redact_ambassador(shop_id, a.id)
    uow.notifications.redact_to(shop_id, a.email)
    uow.salesforce.request_erasure(shop_id, a.id)  # the next sync clears their Contact
    uow.ambassadors.save(
        replace(
            a,
            email=placeholder,
            first_name="",
            last_name="",
            customer_id=None,
            social={},
            status=status,
            updated_at=clock.now(),
        )
    )
    uow.ambassadors.audit(
        shop_id,
        AuditEntry(
            a.id,
            "privacy",
            "shopify",
            clock.now(),
            a.status.value,
            status.value,
            "customers/redact: personal data erased",
        ),
    )
    return 1
