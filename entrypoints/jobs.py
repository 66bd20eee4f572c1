"""Background job functions, at stable import paths (RQ stores the path in Redis).

Thin by design: each takes primitive ids, gets the process's container, and calls one core
service. What to run and when is decided in the core.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from adapters import jsonfast
from adapters.bootstrap import Container, bootstrap
from adapters.settings import Settings
from adapters.shopify.graphql import waits_at_most
from connector.ports import Job, PlatformThrottled
from connector.services import (
    ambassadors,
    applications,
    attribution,
    challenges,
    codes,
    engagement,
    inbox,
    installation,
    payouts,
    program,
    reconciliation,
    salesforce,
    tiers,
)

log = logging.getLogger(__name__)

_container: Container | None = None
_lock = threading.Lock()


def configure(container: Container | None) -> None:
    """Use this container for jobs run in this process (the web app, tests, the worker)."""
    global _container
    _container = container


def container() -> Container:
    global _container
    with _lock:
        if _container is None:
            _container = bootstrap(Settings.from_env())
        return _container


#: The longest a job sleeps for one shop's Shopify bucket. Pacing a call costs a few seconds
#: at most; a longer wait (a bucket emptied by someone else, a long Retry-After) would hold the
#: worker process from every other shop's jobs, so the job is queued again for then instead.
THROTTLE_SLEEP = 5.0

T = TypeVar("T")


def _or_later(job: Job, args: tuple[Any, ...], run: Callable[[], T]) -> T | None:
    """``run()`` with Shopify waits bounded by ``THROTTLE_SLEEP``; if a shop's bucket needs
    longer, the job is queued again for when it has refilled and ``None`` is returned. The
    jobs passed here are idempotent: the next run carries on from what was committed."""
    with waits_at_most(THROTTLE_SLEEP):
        try:
            return run()
        except PlatformThrottled as exc:
            container().jobs.enqueue_in(exc.retry_in, job, *args)
            log.info(
                "job.deferred_throttled",
                extra={**_job_context(), "job": job.value, "retry_in": round(exc.retry_in, 1)},
            )
            return None


def _job_context() -> dict[str, Any]:
    try:
        from rq import get_current_job

        job = get_current_job()
        return {"job_id": job.id} if job else {}
    except Exception:  # noqa: BLE001 - best effort
        return {}


#: Set when the worker is asked to shut down (SIGTERM): long jobs stop at their next safe point.
shutdown = threading.Event()


def process_inbox() -> dict[str, int]:
    c = container()
    result = inbox.process_inbox(
        c.uow, c.handlers, c.clock, c.jobs, decode=jsonfast.loads, stop=shutdown.is_set
    )
    log.info(
        "inbox.drained",
        extra={
            **_job_context(),
            "processed": result.processed,
            "skipped": result.skipped,
            "failed": result.failed,
        },
    )
    return {"processed": result.processed, "skipped": result.skipped, "failed": result.failed}


def sweep_inbox() -> bool:
    c = container()
    return inbox.sweep_inbox(c.uow, c.jobs, c.clock)


def register_webhooks(shop_domain: str) -> list[str]:
    """Idempotent; queued again (not sleeping) when throttled long."""
    c = container()
    topics = _or_later(
        Job.REGISTER_WEBHOOKS,
        (shop_domain,),
        lambda: installation.register_webhooks(
            c.uow, c.shopify, c.clock, shop_domain, c.webhook_uri
        ),
    )
    if topics is None:
        return []
    log.info(
        "shopify.webhooks.registered",
        extra={**_job_context(), "shop": shop_domain, "topics": len(topics)},
    )
    return topics


def refresh_tokens() -> int:
    c = container()
    return installation.refresh_expiring_tokens(c.uow, c.shopify, c.clock)


def sync_codes(shop_domain: str) -> dict[str, int]:
    """Issue and remove the shop's codes; queued again (not sleeping) when throttled long."""
    c = container()
    report = _or_later(
        Job.SYNC_CODES,
        (shop_domain,),
        lambda: codes.sync_codes(c.uow, c.discounts, c.access_token, c.clock, shop_domain),
    )
    if report is None:
        return {"deferred": 1}
    log.info(
        "program.codes.synced",
        extra={
            **_job_context(),
            "shop": shop_domain,
            "added": report.added,
            "removed": report.removed,
            "collisions": report.collisions,
            "errors": len(report.errors),
        },
    )
    return {"added": report.added, "removed": report.removed, "collisions": report.collisions}


def check_code_drift(shop_domain: str | None = None) -> int:
    """Scheduled for every installed shop (or one): find and queue repairs of drifted codes."""
    c = container()
    found = 0
    for domain in [shop_domain] if shop_domain else program.installed_shops(c.uow):
        try:
            with waits_at_most(THROTTLE_SLEEP):  # one throttled shop must not hold the others
                report = codes.check_drift(c.uow, c.discounts, c.access_token, c.clock, domain)
        except PlatformThrottled:
            log.info("program.codes.drift_check_throttled", extra={"shop": domain})
            continue  # checked again at the next run (hourly)
        found += len(report.missing) + len(report.reappeared)
        # Always follow with a sync: it also catches status changes made outside a request
        # (e.g. an ambassador erased by customers/redact), and costs nothing when all is done.
        ambassadors.queue_shopify_sync(c.jobs, domain)
    return found


def sync_customer_tags(shop_domain: str) -> int:
    """Queued again (not sleeping) when throttled long; -1 then."""
    c = container()
    tagged = _or_later(
        Job.SYNC_CUSTOMER_TAGS,
        (shop_domain,),
        lambda: program.sync_customer_tags(
            c.uow, c.discounts, c.access_token, c.clock, shop_domain
        ),
    )
    return -1 if tagged is None else tagged


def enrol_customers(shop_domain: str, run_id: int, customer_ids: list[int], actor: str) -> int:
    c = container()
    return program.enrol_customers(
        c.uow,
        c.discounts,
        c.access_token,
        c.jobs,
        c.clock,
        shop_domain,
        run_id,
        customer_ids,
        actor,
    )


def scan_candidates(shop_domain: str, run_id: int, total: int, limit: int) -> int:
    """Rank the store's customers as candidates (pages or a bulk operation, by ``total``)."""
    c = container()
    found = program.scan_candidates(
        c.uow,
        c.discounts,
        c.customer_export,
        c.access_token,
        c.clock,
        shop_domain,
        run_id,
        total,
        limit=limit,
    )
    log.info(
        "program.candidates.scanned",
        extra={**_job_context(), "shop": shop_domain, "run_id": run_id, "found": len(found)},
    )
    return len(found)


def send_notifications() -> int:
    """Deliver the outbox (triggered after each commit that writes a message; also periodic)."""
    c = container()
    sent = applications.send_notifications(c.uow, c.notifier, c.jobs, c.clock)
    log.info("notifications.drained", extra={**_job_context(), "sent": sent})
    return sent


def evaluate_tiers(shop_domain: str | None = None) -> int:
    """Scheduled for every installed shop (or one): promotions and demotions."""
    c = container()
    moved = 0
    for domain in [shop_domain] if shop_domain else program.installed_shops(c.uow):
        report = tiers.evaluate_tiers(c.uow, c.clock, domain)
        moved += report.promoted + report.demoted
    return moved


def approve_rewards() -> int:
    c = container()
    return attribution.approve_due_rewards(c.uow, c.clock)


def run_payouts(shop_domain: str | None = None) -> dict[str, int] | dict[str, object]:
    """Scheduled (hourly) without a shop: each installed shop's payout run for the current period
    of its schedule, once per period. With a shop: that shop's run."""
    c = container()
    if shop_domain is None:
        return payouts.run_due_payouts(c.uow, c.jobs, c.clock, program.installed_shops(c.uow))
    return payouts.run_payouts(c.uow, c.jobs, c.clock, shop_domain).figures()


def fulfil_payout(shop_domain: str, payout_id: int) -> str:
    """Deliver one payout through Shopify, exactly once (see connector.services.payouts)."""
    c = container()
    with waits_at_most(THROTTLE_SLEEP):  # a throttled shop's payout comes back, not the worker
        outcome = payouts.fulfil_payout(c.fulfilment(), shop_domain, payout_id)
    log.info(
        "payouts.fulfil",
        extra={**_job_context(), "shop": shop_domain, "payout": payout_id, "outcome": outcome},
    )
    return outcome


def fulfil_due_payouts() -> int:
    """Every minute: queue payouts due for a (re)try and those whose worker died."""
    c = container()
    return payouts.fulfil_due(c.uow, c.jobs, c.clock)


def reconcile_orders(shop_domain: str | None = None) -> dict[str, int] | list[str]:
    """Scheduled without a shop: queue one run per installed shop. With a shop: read its
    orders updated since the last run and apply what webhooks missed."""
    c = container()
    if shop_domain is None:
        return reconciliation.schedule_all(c.uow, c.jobs, c.clock)
    try:
        # Throttled longer than that, the run ends as failed (the next one, 15 minutes later,
        # reads from the same watermark) instead of holding the worker from other shops.
        with waits_at_most(THROTTLE_SLEEP):
            report = reconciliation.reconcile(
                c.uow, c.orders_source, c.access_token, c.clock, shop_domain
            )
    except installation.NotInstalled:
        log.info("reconciliation.skipped", extra={**_job_context(), "shop": shop_domain})
        return {}
    log.info(
        "reconciliation.job_done",
        extra={**_job_context(), "shop": shop_domain, "status": report.status,
               "applied": report.applied, "found_only_here": report.found_only_here},
    )
    return {"seen": report.seen, "applied": report.applied,
            "found_only_here": report.found_only_here, "stale": report.stale,
            "errors": len(report.errors)}


def sync_salesforce(shop_domain: str | None = None) -> dict[str, Any] | list[str]:
    """Scheduled without a shop: queue one sync per connected org. With a shop: write its
    changed ambassadors to their Contacts."""
    c = container()
    if c.salesforce is None:
        return []
    if shop_domain is None:
        return salesforce.schedule_all(c.uow, c.jobs)
    try:
        report = salesforce.sync(
            c.uow, c.salesforce, c.clock, shop_domain,
            budget_share=c.settings.salesforce_api_budget_share,
        )
    except installation.NotInstalled:
        return {}
    log.info("salesforce.sync.job_done",
             extra={**_job_context(), "shop": shop_domain, **report.log_extra()})
    return report.figures()


def score_engagement(shop_domain: str | None = None) -> dict[str, int]:
    """Scheduled for every installed shop (or one): recompute engagement scores and today's
    band counts."""
    c = container()
    scored = 0
    for domain in [shop_domain] if shop_domain else program.installed_shops(c.uow):
        scored += engagement.score_shop(c.uow, c.clock, domain).scored
    return {"scored": scored}


def close_challenges() -> dict[str, int]:
    """Close every challenge that has ended: final leaderboard, prizes to the ledger."""
    c = container()
    closed = challenges.close_due(c.uow, c.clock)
    log.info("challenges.closed", extra={**_job_context(), "closed": closed})
    return {"closed": closed}


__all__ = [
    "Job",
    "approve_rewards",
    "check_code_drift",
    "close_challenges",
    "configure",
    "container",
    "enrol_customers",
    "evaluate_tiers",
    "fulfil_due_payouts",
    "fulfil_payout",
    "process_inbox",
    "reconcile_orders",
    "refresh_tokens",
    "register_webhooks",
    "run_payouts",
    "scan_candidates",
    "score_engagement",
    "send_notifications",
    "sweep_inbox",
    "sync_codes",
    "sync_customer_tags",
    "sync_salesforce",
]
