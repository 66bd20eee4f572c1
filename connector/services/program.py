"""Program-level use cases: settings, tiers and their what-if, candidates among customers,
bulk enrolment with progress, customer tags."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connector.domain import candidates as ranking
from connector.domain.ambassadors import AmbassadorStatus
from connector.domain.content import storable
from connector.domain.program import ProgramSettings, SettingsInvalid
from connector.domain.shops import Shop
from connector.domain.tiers import Results, Tier, WhatIf, what_if
from connector.ports import (
    BulkOperationBusy,
    BulkOperationState,
    Clock,
    CustomerExport,
    CustomerSummary,
    DiscountPlatform,
    Job,
    JobQueue,
    PlatformError,
    UnitOfWork,
    UnitOfWorkFactory,
)
from connector.services.ambassadors import ProgramError, enrol_customer, queue_shopify_sync
from connector.services.installation import NotInstalled

log = logging.getLogger(__name__)

TokenFor = Callable[[str], str]


def installed_shops(uow_factory: UnitOfWorkFactory) -> list[str]:
    with uow_factory() as uow:
        return uow.shops.installed_domains()


def update_settings(
    uow: UnitOfWork, shop: Shop, changes: dict[str, Any], jobs: JobQueue | None = None
) -> ProgramSettings:
    """Validate and save. When the friend's discount terms change, a code sync is queued after
    the commit: it updates the shop's discount(s) in Shopify in place
    (:func:`connector.services.codes.apply_terms`)."""
    assert shop.id is not None
    with uow:
        current = uow.program.settings(shop.id)
        try:
            updated = ProgramSettings.from_dict(changes, base=current)
        except SettingsInvalid as exc:
            raise ProgramError("invalid_setting", str(exc)) from None
        uow.program.save_settings(shop.id, updated)
        if jobs is not None and updated.friend_discount != current.friend_discount:
            domain = shop.domain
            uow.after_commit(lambda: queue_shopify_sync(jobs, domain))
        uow.commit()
    return updated


# --- tiers -------------------------------------------------------------------------------


def parse_tier(data: dict[str, Any], tier_id: int | None = None) -> Tier:
    """A tier from API input; raises :class:`ProgramError` naming the bad field."""

    def dec(name: str, *, required: bool = False) -> Decimal | None:
        value = data.get(name)
        if value in (None, ""):
            if required:
                raise ProgramError("invalid_tier", f"{name} is required")
            return None
        if isinstance(value, bool | float):
            raise ProgramError("invalid_tier", f"{name}: give decimals as strings")
        try:
            result = Decimal(str(value))
        except ArithmeticError:
            raise ProgramError("invalid_tier", f"{name} must be a decimal number") from None
        if not result.is_finite() or result < 0 or result >= Decimal(10) ** 12:
            raise ProgramError("invalid_tier", f"{name} must be a number from 0 to 10^12")
        return result

    def count(name: str) -> int | None:
        value = data.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
            raise ProgramError("invalid_tier", f"{name} must be an integer from 0 to 10^9")
        return value

    name = str(data.get("name") or "").strip()
    if not name or len(name) > 80 or not storable(name):
        raise ProgramError("invalid_tier", "name: 1 to 80 plain characters")
    position = data.get("position")
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= 100:
        raise ProgramError("invalid_tier", "position must be an integer from 0 to 100")
    rate = dec("commission_rate", required=True)
    assert rate is not None
    if rate > 100:
        raise ProgramError("invalid_tier", "commission_rate is a percentage (0 to 100)")
    perks = data.get("perks") or []
    if (
        not isinstance(perks, list)
        or not all(isinstance(p, str) and len(p) <= 200 and storable(p) for p in perks)
        or len(perks) > 20
    ):
        raise ProgramError("invalid_tier", "perks: a list of up to 20 short texts")
    return Tier(
        tier_id,
        name,
        position,
        rate,
        dec("min_revenue"),
        count("min_orders"),
        count("min_new_customers"),
        tuple(p.strip() for p in perks),
    )


def save_tier(uow: UnitOfWork, shop: Shop, tier: Tier) -> Tier:
    assert shop.id is not None
    with uow:
        existing = uow.program.tiers(shop.id)
        if tier.id is not None and tier.id not in {t.id for t in existing}:
            raise ProgramError("not_found", "no such tier", 404)
        if any(t.name.lower() == tier.name.lower() and t.id != tier.id for t in existing):
            raise ProgramError("duplicate_tier", f"a tier named {tier.name!r} exists", 409)
        if any(t.position == tier.position and t.id != tier.id for t in existing):
            raise ProgramError("duplicate_position", "another tier has this position", 409)
        saved = uow.program.save_tier(shop.id, tier)
        uow.commit()
    return saved


def preview_tiers(
    uow: UnitOfWork,
    shop: Shop,
    proposed: Sequence[Tier],
    results_for: Callable[[int, list[int]], dict[int, Results]],
) -> WhatIf:
    """ "With these thresholds, 12 move up and 3 move down": computed, nothing saved."""
    assert shop.id is not None
    with uow:
        current = uow.program.tiers(shop.id)
        people = uow.ambassadors.tier_positions(shop.id)
    results = results_for(shop.id, [p[0] for p in people])
    return what_if(
        proposed, [(aid, tier_id, results.get(aid, Results())) for aid, tier_id in people], current
    )


# --- candidates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    customer: CustomerSummary
    score: float
    already_ambassador: bool


def rank_customers(
    customers: Sequence[CustomerSummary], now: datetime
) -> list[tuple[float, CustomerSummary]]:
    """Score customers as ambassador candidates (:mod:`connector.domain.candidates`): spend,
    order count, recency and repeat purchase; customers without an email are left out; best
    first, equal scores by the raw values, then by customer id."""
    return ranking.rank(customers, now)


#: Stores with at most this many customers are read page by page; larger ones
#: through a bulk operation (:func:`scan_candidates`).
PAGINATED_LIMIT = 2_500

Progress = Callable[[int], None]  # how many more customers were read


def find_candidates(
    uow: UnitOfWork,
    discounts: DiscountPlatform,
    token_for: TokenFor,
    clock: Clock,
    shop: Shop,
    *,
    limit: int = 50,
    query: str | None = None,
    scan: int = PAGINATED_LIMIT,
    progress: Progress | None = None,
) -> list[Candidate]:
    """The store's best customers who are not ambassadors yet, read page by page: up to
    ``scan`` customers who ordered, 100 a page (paced by the throttle status). For small
    stores; large ones are scanned with :func:`scan_candidates`."""
    assert shop.id is not None
    token = token_for(shop.domain)
    seen: list[CustomerSummary] = []
    cursor = None
    search = "orders_count:>0" + (f" {query}" if query else "")  # only people who bought
    while len(seen) < scan:
        page = discounts.search_customers(shop.domain, token, search, cursor, first=100)
        seen.extend(page.customers)
        if progress:
            progress(len(page.customers))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return _not_enrolled(uow, shop, rank_customers(seen, clock.now()), limit)


def _not_enrolled(
    uow: UnitOfWork, shop: Shop, ranked: list[tuple[float, CustomerSummary]], limit: int
) -> list[Candidate]:
    assert shop.id is not None
    with uow:
        enrolled = uow.ambassadors.enrolled_customers(shop.id, [c.id for _, c in ranked])
    out = [Candidate(c, score, c.id in enrolled) for score, c in ranked]
    return [c for c in out if not c.already_ambassador][:limit]


def candidate_json(candidate: Candidate) -> dict[str, Any]:
    """A candidate as the API shows it (and as a scan's report keeps it)."""
    c = candidate.customer
    return {
        "customer_id": f"gid://shopify/Customer/{c.id}",
        "email": c.email,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "orders": c.orders,
        "amount_spent": str(c.amount_spent),
        "currency": c.currency,
        "last_order_at": c.last_order_at.isoformat() if c.last_order_at else None,
        "score": candidate.score,
    }


# --- candidate scans: a background task, by pages or by a bulk operation ---------------------

SCAN_KIND = "candidate_scan"


def start_candidate_scan(
    uow: UnitOfWork,
    export: CustomerExport,
    token_for: TokenFor,
    jobs: JobQueue,
    shop: Shop,
    *,
    limit: int = 50,
) -> int:
    """Record a scan (a task run whose total is the store's customer count) and queue its job
    after the commit. Returns the task id; progress and result are read from the task run."""
    assert shop.id is not None
    total = export.count_customers(shop.domain, token_for(shop.domain))
    with uow:
        run_id = uow.task_runs.start(shop.id, SCAN_KIND, total)
        domain = shop.domain
        uow.after_commit(
            lambda: jobs.enqueue(
                Job.SCAN_CANDIDATES,
                domain,
                run_id,
                total,
                limit,
                job_id=f"scan-candidates:{domain}:{run_id}",
            )
        )
        uow.commit()
    return run_id


@dataclass(frozen=True)
class ScanPacing:
    """How a bulk scan waits: between status reads (growing from ``poll`` to ``poll_max``),
    for a free bulk-operation slot in Shopify (``busy_wait``), and in all (``timeout``)."""

    poll: float = 1.0
    poll_max: float = 10.0
    busy_wait: float = 300.0
    timeout: float = 3 * 3600.0
    sleep: Callable[[float], None] = time.sleep


def scan_candidates(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    export: CustomerExport,
    token_for: TokenFor,
    clock: Clock,
    shop_domain: str,
    run_id: int,
    total: int,
    *,
    limit: int = 50,
    pacing: ScanPacing = ScanPacing(),  # frozen: one shared default is safe
) -> list[Candidate]:
    """The job behind a scan: rank the store's customers and keep the best ``limit`` who are
    not ambassadors in the task run's report (``{"method", "items"}``), advancing ``done`` as
    customers are read. A store of at most :data:`PAGINATED_LIMIT` customers is read page by
    page; a larger one through a Shopify bulk operation, polled until it finishes, whose JSONL
    file is streamed and ranked with bounded memory. Any failure ends the task ``failed`` with
    ``{"error": {"code", "message"}}`` (a failed bulk operation names Shopify's error code).
    """
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
    if shop is None or shop.id is None:
        return []

    def advance(count: int) -> None:
        if count > 0:
            with uow_factory() as uow:
                uow.task_runs.advance(run_id, done=count)
                uow.commit()

    method = "pages" if total <= PAGINATED_LIMIT else "bulk"
    try:
        if method == "pages":
            found = find_candidates(
                uow_factory(), discounts, token_for, clock, shop, limit=limit, progress=advance
            )
        else:
            found = _bulk_scan(uow_factory, export, token_for, clock, shop, limit, pacing, advance)
    except Exception as exc:
        # Whatever happens, the task must not stay "running" for ever in the admin.
        if isinstance(exc, ProgramError):
            code, message = exc.code, exc.message
        elif isinstance(exc, NotInstalled):
            code, message = "not_installed", "open the app in Shopify to reconnect it"
        elif isinstance(exc, PlatformError):
            code, message = "shopify_error", str(exc)
        else:
            code, message = "internal_error", "the scan stopped on an unexpected error"
        log.warning(
            "program.candidates.scan_failed",
            extra={"shop": shop_domain, "run_id": run_id, "code": code},
        )
        with uow_factory() as uow:
            uow.task_runs.finish(
                run_id, "failed", {"method": method, "error": {"code": code, "message": message}}
            )
            uow.commit()
        if code == "internal_error":
            raise  # a bug: the worker logs it and keeps the job as failed
        return []
    with uow_factory() as uow:
        uow.task_runs.finish(
            run_id, "done", {"method": method, "items": [candidate_json(c) for c in found]}
        )
        uow.commit()
    return found


def best_candidates(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    export: CustomerExport,
    token_for: TokenFor,
    clock: Clock,
    shop: Shop,
    *,
    limit: int = 50,
    pacing: ScanPacing = ScanPacing(),
) -> list[Candidate]:
    """:func:`scan_candidates` run here and now (the CLI): the scan is recorded as a task run
    like one started from the admin. Raises :class:`ProgramError` when it fails."""
    assert shop.id is not None
    total = export.count_customers(shop.domain, token_for(shop.domain))
    with uow_factory() as uow:
        run_id = uow.task_runs.start(shop.id, SCAN_KIND, total)
        uow.commit()
    found = scan_candidates(
        uow_factory,
        discounts,
        export,
        token_for,
        clock,
        shop.domain,
        run_id,
        total,
        limit=limit,
        pacing=pacing,
    )
    with uow_factory() as uow:
        run = uow.task_runs.get(shop.id, run_id)
    if run is not None and run.status == "failed":
        error = dict(run.report).get("error") or {}
        raise ProgramError(str(error.get("code", "scan_failed")), str(error.get("message", "")))
    return found


def _bulk_scan(
    uow_factory: UnitOfWorkFactory,
    export: CustomerExport,
    token_for: TokenFor,
    clock: Clock,
    shop: Shop,
    limit: int,
    pacing: ScanPacing,
    advance: Progress,
) -> list[Candidate]:
    assert shop.id is not None
    domain = shop.domain
    started = clock.now()
    operation = _start_export(export, token_for, clock, domain, pacing)
    read = 0
    delay = pacing.poll
    while not operation.finished:
        if clock.now() - started > timedelta(seconds=pacing.timeout):
            export.cancel_bulk_operation(domain, token_for(domain), operation.id)
            raise ProgramError(
                "scan_timeout", "Shopify's export of the customers took too long; try again", 504
            )
        pacing.sleep(delay)
        delay = min(delay * 1.5, pacing.poll_max)
        current = export.bulk_operation(domain, token_for(domain), operation.id)
        if current is None:
            raise ProgramError("bulk_operation_lost", "Shopify no longer knows the export", 502)
        operation = current
        advance(operation.object_count - read)
        read = max(read, operation.object_count)
    if operation.status == "FAILED":
        raise ProgramError(
            "bulk_operation_failed",
            f"Shopify's export of the customers failed ({operation.error_code or 'no error code'}"
            "); nothing was ranked. Try the scan again; if it keeps failing, check the app's "
            "access to customers.",
            502,
        )
    if operation.status != "COMPLETED":
        raise ProgramError(
            "bulk_operation_" + operation.status.lower(),
            f"Shopify's export of the customers ended {operation.status.lower()}",
            502,
        )
    with uow_factory() as uow:
        # Everyone who could be left out for being an ambassador already: keep that many more.
        extra = sum(uow.ambassadors.count_by_status(shop.id).values())
    ranked: list[tuple[float, CustomerSummary]] = []
    if operation.url is not None:  # None: Shopify found no customer who ordered
        with export.open_customer_export(operation.url) as customers:
            ranked, _ = ranking.top_customers(customers, clock.now(), limit + extra)
    return _not_enrolled(uow_factory(), shop, ranked, limit)


def _start_export(
    export: CustomerExport,
    token_for: TokenFor,
    clock: Clock,
    domain: str,
    pacing: ScanPacing,
) -> BulkOperationState:
    """Start the bulk query; while Shopify runs as many as it allows for this app and shop
    (``OPERATION_IN_PROGRESS`` / ``LIMIT_REACHED``), wait for a slot up to ``busy_wait``."""
    waited_since = clock.now()
    delay = pacing.poll
    while True:
        try:
            return export.start_customer_export(domain, token_for(domain))
        except BulkOperationBusy as exc:
            if clock.now() - waited_since >= timedelta(seconds=pacing.busy_wait):
                raise ProgramError(
                    "bulk_operation_busy",
                    f"Shopify is already running other bulk exports for this store ({exc}); "
                    "try the scan again in a few minutes",
                    409,
                ) from None
            pacing.sleep(delay)
            delay = min(delay * 2, pacing.poll_max)


def enrol_customers(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token_for: TokenFor,
    jobs: JobQueue,
    clock: Clock,
    shop_domain: str,
    run_id: int,
    customer_ids: list[int],
    actor: str,
) -> int:
    """Bulk enrolment as a job, with progress in the task run (and a per-customer report)."""
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
    if shop is None or shop.id is None:
        return 0
    token = token_for(shop_domain)
    report: dict[str, Any] = {"enrolled": [], "existing": [], "rejected": []}
    for customer_id in customer_ids:
        ok = False
        try:
            customer = discounts.get_customer(shop_domain, token, customer_id)
            result = enrol_customer(
                uow_factory(),
                jobs,
                clock,
                shop,
                customer,
                customer_id=customer_id,
                source="invite",
                actor=actor,
            )
            report["enrolled" if result.created else "existing"].append(
                {"customer_id": customer_id, "ambassador_id": result.ambassador.id}
            )
            ok = True
        except ProgramError as exc:
            report["rejected"].append(
                {"customer_id": customer_id, "code": exc.code, "reason": exc.message}
            )
        except PlatformError as exc:
            report["rejected"].append(
                {"customer_id": customer_id, "code": "shopify_error", "reason": str(exc)}
            )
        with uow_factory() as uow:
            uow.task_runs.advance(run_id, done=1 if ok else 0, failed=0 if ok else 1)
            uow.commit()
    with uow_factory() as uow:
        uow.task_runs.finish(run_id, "done", report)
        uow.commit()
    return len(report["enrolled"])


def sync_customer_tags(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token_for: TokenFor,
    clock: Clock,
    shop_domain: str,
) -> int:
    """Tag active and paused ambassadors' customers in Shopify; untag removed ones."""
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
        if shop is None or shop.id is None:
            return 0
        shop_id = shop.id
        tag = uow.program.settings(shop_id).customer_tag
        work = uow.ambassadors.tags_to_sync(shop_id, limit=500)
    token = token_for(shop_domain)
    done = 0
    for ambassador_id, customer_id, status, tagged in work:
        want = status in (AmbassadorStatus.ACTIVE.value, AmbassadorStatus.PAUSED.value)
        if want != tagged:
            discounts.tag_customer(shop_domain, token, customer_id, tag, add=want)
        with uow_factory() as uow:
            uow.ambassadors.mark_tagged(shop_id, ambassador_id, want)
            uow.commit()
        done += 1
    return done
