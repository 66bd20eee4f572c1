"""Webhook intake: record a verified delivery durably, then make sure a worker will see it.

The web tier does only this (verify, record, trigger, answer); handlers run in workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from connector.domain.webhooks import IncomingWebhook
from connector.ports import Clock, Job, JobQueue, UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    delivery_id: int | None
    duplicate: bool


def accept_webhook(
    uow: UnitOfWork, jobs: JobQueue, clock: Clock, hook: IncomingWebhook
) -> Accepted:
    """Store ``hook`` once per ``(topic, webhook_id)`` and trigger inbox processing after commit.

    Idempotent: a repeated delivery is acknowledged and has no second effect. A failure to reach
    the queue does not fail the intake: the row is durable and the sweeper picks it up.
    """
    with uow:
        delivery_id = uow.inbox.add(hook, clock.now())
        if delivery_id is not None:
            uow.after_commit(lambda: _trigger(jobs))
        uow.commit()
    if delivery_id is None:
        log.info(
            "shopify.webhook.duplicate",
            extra={"topic": hook.topic, "webhook_id": hook.webhook_id, "shop": hook.shop_domain},
        )
    return Accepted(delivery_id=delivery_id, duplicate=delivery_id is None)


def _trigger(jobs: JobQueue) -> None:
    try:
        jobs.trigger(Job.PROCESS_INBOX)
    except Exception:  # the queue is down: the row is safe; the sweeper re-triggers later
        log.warning("shopify.webhook.trigger_failed", exc_info=True)
