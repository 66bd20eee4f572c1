"""Reconciliation: orders and refunds whose webhooks never came, found by asking the store.

Shopify's webhooks are at-least-once but can be missed (an outage longer than its 4 hours of
retries, a subscription removed after failures, a bug of ours). A scheduled run reads the orders
updated since the previous run (through the store's API, paginated and paced by its rate limit)
and applies, through the same :func:`apply_order` as webhooks, whatever they missed.

Guarantees:
- Idempotent: an order is applied only when it adds something: one we never stored, a newer
  version, the same version with different content (several changes within Shopify's one-second
  timestamps: the order is read again to get the last of them), or refunds we lack. A second run
  over the same window applies nothing.
- Never rolls back: a version older than ours is counted ``stale`` and not applied (refunds it
  carries that we lack are still added, and the snapshot guard keeps our newer version). The
  decision is taken again under the order's row lock, so a webhook landing meanwhile wins.
- Each order in its own unit of work: a failure loses that order only.
- No gaps: a run starts at the previous complete run's window end less ``overlap`` (covering
  search-index lag and clock skew), and a run that did not read its whole window or could not
  apply an order ends ``failed``, so the next one reads the window again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from connector.domain.orders import BadOrder, Order
from connector.ports import (
    Clock,
    Job,
    JobQueue,
    OrderSource,
    PlatformError,
    ReconcileCounts,
    UnitOfWorkFactory,
)
from connector.services.attribution import apply_order
from connector.services.installation import NotInstalled

log = logging.getLogger(__name__)

#: How far back a run may read: the first run (from install at the earliest) and the most a run
#: catches up after an outage; beyond it, ``ambassador reconcile --hours N``.
DEFAULT_WINDOW = timedelta(hours=72)
#: Re-read before the previous window's end: Shopify's search index lags writes a little, and
#: our clock and Shopify's may differ.
DEFAULT_OVERLAP = timedelta(minutes=30)
#: Orders updated in the last moments are left to their webhooks (in flight, or in our inbox):
#: reading them would count them as "found only by reconciliation" when nothing was missed.
DEFAULT_GRACE = timedelta(minutes=2)
PAGE_SIZE = 50  # the adapter lowers it to what its query cost allows
PROGRESS_EVERY = 25  # orders between two updates of the run's figures
MAX_FAILURES = 20  # orders that could not be applied before a run gives up (something is down)
#: A run still marked running this long after it started was killed (its job timed out an hour
#: in at the latest); another may start.
ABANDONED_AFTER = timedelta(hours=2)
SCHEDULE_SLOT = 900  # seconds: the schedule's period, one queued run per shop per slot


class Verdict(StrEnum):
    """What an order read from the store adds to what we hold."""

    NEW = "new"  # never stored: its webhooks were missed
    NEWER = "newer"  # a later version than ours
    CHANGED = "changed"  # same updated_at, different content
    REFUNDS = "refunds"  # refunds we lack
    SAME = "same"
    STALE = "stale"  # ours is newer


APPLY = frozenset({Verdict.NEW, Verdict.NEWER, Verdict.CHANGED, Verdict.REFUNDS})


def judge(order: Order, stored: Order | None) -> Verdict:
    """Compare the store's order with our snapshot (``stored``, refunds merged)."""
    if stored is None:
        return Verdict.NEW
    missing_refunds = {r.id for r in order.refunds} - {r.id for r in stored.refunds}
    theirs, ours = order.updated_at, stored.updated_at
    if theirs is not None and ours is not None and theirs < ours:
        return Verdict.REFUNDS if missing_refunds else Verdict.STALE
    if theirs is not None and (ours is None or theirs > ours):
        return Verdict.NEWER
    if missing_refunds:
        return Verdict.REFUNDS
    if _material(order) != _material(stored):
        return Verdict.CHANGED
    return Verdict.SAME


def _material(order: Order) -> Order:
    """The order as far as the ledger goes. Left out: refunds (compared by id), discount
    amounts (a webhook counts shipping discounts, our read only line discounts), and the buyer's
    identity (blanked here by ``customers/redact``: that must not read as a change, or every run
    would restore what was erased)."""
    return replace(
        order,
        name="",
        codes=tuple(sorted((code, Decimal(0)) for code, _ in order.codes)),
        lines=tuple(sorted(order.lines, key=lambda line: line.id)),
        customer_id=None,
        customer_created_at=None,
        email=None,
        phone=None,
        address=None,
        refunds=(),
    )


@dataclass
class ReconcileReport:
    """The figures of one run. ``errors`` name the orders that could not be applied (or why the
    run stopped); ``status`` is ``done`` when the whole window was read and applied, ``failed``
    when not (the next run reads it again), ``skipped`` when another run of the shop was still
    running (nothing was read)."""

    shop_domain: str
    window_start: datetime
    window_end: datetime
    run_id: int | None = None
    status: str = "running"
    seen: int = 0
    applied: int = 0
    found_only_here: int = 0
    stale: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def counts(self) -> ReconcileCounts:
        return ReconcileCounts(
            seen=self.seen,
            applied=self.applied,
            found_only_here=self.found_only_here,
            stale=self.stale,
            errors=len(self.errors),
        )


def window_start(
    now: datetime,
    *,
    watermark: datetime | None,
    installed_at: datetime | None,
    window: timedelta,
    overlap: timedelta,
    since: datetime | None = None,
) -> datetime:
    """Where a run starts reading: the last complete window's end less ``overlap``, or the
    install for a first run; never before ``now - window``. An explicit ``since`` only reaches
    further back (a shorter read could skip what the watermark has not covered). Whole seconds,
    as Shopify's timestamps are."""
    oldest = now - window
    if watermark is not None:
        start = max(watermark - overlap, oldest)
    elif installed_at is not None:
        start = max(installed_at, oldest)
    else:
        start = oldest
    if since is not None:
        start = min(start, since)
    return start.replace(microsecond=0)


def reconcile(
    uow_factory: UnitOfWorkFactory,
    orders_source: OrderSource,
    token_for: Callable[[str], str],
    clock: Clock,
    shop_domain: str,
    *,
    window: timedelta = DEFAULT_WINDOW,
    overlap: timedelta = DEFAULT_OVERLAP,
    grace: timedelta = DEFAULT_GRACE,
    since: datetime | None = None,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ReconcileReport:
    """Read the shop's orders updated since the last run and apply what webhooks missed.

    The run is recorded (``uow.reconciliation``) with its window and figures, updated as it
    goes (the admin sees a running run's progress); ``progress(n)`` is called as orders are
    read (the CLI's bar). One run per shop at a time: while one runs, another returns at once
    as ``skipped``. Store errors (throttled past the client's patience, 5xx, a refused token)
    end the run ``failed`` without raising; raises :class:`NotInstalled` for a shop that is not
    installed.
    """
    now = clock.now()
    until = now - grace
    with uow_factory() as uow:
        shop = uow.shops.get_for_update(shop_domain)  # serialises the check for a running run
        if shop is None or shop.id is None or not shop.installed:
            raise NotInstalled(shop_domain)
        shop_id = shop.id
        start = min(
            window_start(
                now,
                watermark=uow.reconciliation.watermark(shop_id),
                installed_at=shop.installed_at,
                window=window,
                overlap=overlap,
                since=since,
            ),
            until,
        )
        report = ReconcileReport(shop_domain, start, until)
        run_id = uow.reconciliation.start(
            shop_id, start, until, abandoned_before=now - ABANDONED_AFTER
        )
        uow.commit()
    if run_id is None:
        report.status = "skipped"
        log.info("reconciliation.already_running", extra={"shop": shop_domain})
        return report
    report.run_id = run_id
    context = {"shop": shop_domain, "run_id": run_id}
    failures = 0
    stopped: str | None = None
    try:
        token = token_for(shop_domain)
        for payload in orders_source.updated_since(
            shop_domain, token, start, page_size, until=until
        ):
            report.seen += 1
            try:
                verdict = _reconcile_order(
                    uow_factory, orders_source, token, clock, shop_domain, shop_id, payload
                )
            except (PlatformError, NotInstalled):
                raise
            except BadOrder as exc:
                # Permanent: reading it again will not help, so it does not hold the window.
                report.errors.append(f"order {payload.get('id')}: unreadable ({exc})")
            except Exception as exc:  # one order must not stop the others (logged, retried)
                log.exception(
                    "reconciliation.order_failed", extra={**context, "order_id": payload.get("id")}
                )
                report.errors.append(f"order {payload.get('id')}: {type(exc).__name__}: {exc}")
                failures += 1
                if failures >= MAX_FAILURES:
                    stopped = f"stopped after {failures} orders could not be applied"
                    break
            else:
                _count(report, verdict)
                if verdict is Verdict.NEW:
                    log.info(
                        "reconciliation.order_found",
                        extra={**context, "order_id": payload.get("id")},
                    )
            if progress is not None:
                progress(1)
            if report.seen % PROGRESS_EVERY == 0:
                with uow_factory() as uow:
                    uow.reconciliation.progress(run_id, report.counts)
                    uow.commit()
    except (PlatformError, NotInstalled) as exc:
        stopped = f"{type(exc).__name__}: {exc}"
    except BaseException as exc:
        _finish(uow_factory, report, "failed", f"{type(exc).__name__}: {exc}")
        raise
    if stopped:
        report.errors.append(stopped)
    elif failures:
        stopped = f"{failures} order(s) could not be applied: the next run reads them again"
    _finish(uow_factory, report, "failed" if stopped else "done", stopped)
    log.log(
        logging.WARNING if report.found_only_here or report.status == "failed" else logging.INFO,
        "reconciliation.finished",
        extra={
            **context,
            "status": report.status,
            "seen": report.seen,
            "applied": report.applied,
            "found_only_here": report.found_only_here,
            "stale": report.stale,
            "errors": len(report.errors),
        },
    )
    return report


def _reconcile_order(
    uow_factory: UnitOfWorkFactory,
    source: OrderSource,
    token: str,
    clock: Clock,
    shop_domain: str,
    shop_id: int,
    payload: dict[str, Any],
) -> Verdict:
    order = Order.from_payload(payload)
    with uow_factory() as uow:
        verdict = judge(order, uow.orders.get(shop_id, order.id))
    if verdict is Verdict.CHANGED:
        # Several changes within one second, and this page may have been read before the last
        # of them: read the order again rather than guess which version is the later.
        fresh = source.order(shop_domain, token, order.id)
        if fresh is None:
            return Verdict.SAME
        order = Order.from_payload(fresh)
    elif verdict not in APPLY:
        return verdict
    with uow_factory() as uow:
        # Decide again under the row lock: a webhook may have brought a newer version since.
        verdict = judge(order, uow.orders.lock(shop_id, order.id))
        if verdict not in APPLY:
            return verdict
        apply_order(uow, clock, shop_id, order, source="reconciliation")
        uow.commit()
    return verdict


def _count(report: ReconcileReport, verdict: Verdict) -> None:
    if verdict in APPLY:
        report.applied += 1
    if verdict is Verdict.NEW:
        report.found_only_here += 1
    elif verdict is Verdict.STALE:
        report.stale += 1


def _finish(
    uow_factory: UnitOfWorkFactory, report: ReconcileReport, status: str, error: str | None
) -> None:
    report.status = status
    if report.run_id is None:
        return
    try:
        with uow_factory() as uow:
            uow.reconciliation.finish(report.run_id, status, report.counts, error)
            uow.commit()
    except Exception:  # the run's own outcome matters more than its record: logged
        log.exception("reconciliation.record_failed", extra={"run_id": report.run_id})


def schedule_all(uow_factory: UnitOfWorkFactory, jobs: JobQueue, clock: Clock) -> list[str]:
    """Queue one reconciliation per installed shop: one job each, so a slow or failing shop
    does not hold the others. The job id names the schedule slot: several schedulers firing in
    one slot queue one run, and a failed job (whose id the queue keeps for days) never blocks a
    later slot. Runs that overlap anyway are turned away by :func:`reconcile`."""
    with uow_factory() as uow:
        domains = uow.shops.installed_domains()
    slot = int(clock.now().timestamp()) // SCHEDULE_SLOT
    for domain in domains:
        jobs.enqueue(Job.RECONCILE_ORDERS, domain, job_id=f"reconcile-orders:{domain}:{slot}")
    return domains
