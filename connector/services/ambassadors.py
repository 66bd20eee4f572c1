"""Enrolling ambassadors and moving them through their lifecycle, with an audit entry each time.

Contracts:
- Enrolment is idempotent per person: the same customer (or email) again returns the existing
  ambassador and issues no second code.
- Every status, tier or code change appends an audit entry in the same transaction.
- Side effects in Shopify (codes, customer tags) are queued after the commit and reconciled by
  jobs that compare what should be with what is, so a retry never does anything twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from connector.domain import codes
from connector.domain.ambassadors import (
    Ambassador,
    AmbassadorStatus,
    AuditEntry,
    CodeState,
    InvalidEmail,
    InvalidTransition,
    normalise_email,
)
from connector.domain.shops import Shop
from connector.ports import (
    AmbassadorQuery,
    Clock,
    CustomerSummary,
    Job,
    JobQueue,
    UnitOfWork,
)

log = logging.getLogger(__name__)


class ProgramError(Exception):
    """A request the program cannot carry out; ``code`` is stable, ``message`` is for people."""

    status = 422

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        if status is not None:
            self.status = status


class NotFound(ProgramError):
    status = 404

    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"no such {what}")


@dataclass(frozen=True)
class Enrolment:
    ambassador: Ambassador
    created: bool


def enrol(
    uow: UnitOfWork,
    jobs: JobQueue,
    clock: Clock,
    shop: Shop,
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    customer_id: int | None = None,
    status: AmbassadorStatus = AmbassadorStatus.ACTIVE,
    tier_id: int | None = None,
    source: str = "api",
    actor: str = "merchant",
    social: dict[str, str] | None = None,
) -> Enrolment:
    """Enrol a person (already resolved to an email and, if any, a Shopify customer id)."""
    assert shop.id is not None
    try:
        email = normalise_email(email)
    except InvalidEmail as exc:
        raise ProgramError("invalid_email", str(exc)) from None
    first_name, last_name = first_name.strip()[:120], last_name.strip()[:120]
    now = clock.now()
    with uow:
        existing = _existing(uow, shop.id, customer_id, email)
        if existing is not None:
            return Enrolment(existing, created=False)
        program = uow.program.settings(shop.id)
        tiers = uow.program.tiers(shop.id)
        if tier_id is not None and tier_id not in {t.id for t in tiers}:
            raise ProgramError("invalid_tier", "no such tier")
        entry_tier = tier_id if tier_id is not None else (tiers[0].id if tiers else None)
        added = uow.ambassadors.add(
            Ambassador(
                id=None,
                shop_id=shop.id,
                email=email,
                status=status,
                first_name=first_name,
                last_name=last_name,
                customer_id=customer_id,
                tier_id=entry_tier,
                source=source,
                social=dict(social or {}),
                since=now if status is AmbassadorStatus.ACTIVE else None,
            )
        )
        if added is None:  # a concurrent enrolment of the same person won the race
            uow.rollback()
            existing = _existing(uow, shop.id, customer_id, email)
            assert existing is not None
            return Enrolment(existing, created=False)
        assert added.id is not None
        uow.ambassadors.audit(
            shop.id,
            AuditEntry(added.id, "enrol", actor, now, None, status.value, None, {"source": source}),
        )
        if status is AmbassadorStatus.ACTIVE:
            added = _reserve_code(uow, added, program.code_format)
        uow.after_commit(lambda: queue_shopify_sync(jobs, shop.domain))
        uow.commit()
    log.info("program.enrolled", extra={"shop": shop.domain, "ambassador": added.id})
    return Enrolment(added, created=True)


def _existing(
    uow: UnitOfWork, shop_id: int, customer_id: int | None, email: str
) -> Ambassador | None:
    if customer_id is not None:
        found = uow.ambassadors.by_customer(shop_id, customer_id)
        if found is not None:
            return found
    return uow.ambassadors.by_email(shop_id, email)


def _reserve_code(uow: UnitOfWork, ambassador: Ambassador, fmt: codes.CodeFormat) -> Ambassador:
    """Give the ambassador the first free candidate code (deterministic per ambassador)."""
    assert ambassador.id is not None
    for candidate in codes.candidates(
        fmt,
        first_name=ambassador.first_name,
        last_name=ambassador.last_name,
        seed=f"{ambassador.shop_id}:{ambassador.id}",
    ):
        if uow.ambassadors.reserve_code(ambassador.shop_id, ambassador.id, candidate):
            fresh = uow.ambassadors.get(ambassador.shop_id, ambassador.id)
            assert fresh is not None
            return fresh
    raise ProgramError("no_code", "no free code could be found for this ambassador")


def next_code(
    uow: UnitOfWork, ambassador: Ambassador, fmt: codes.CodeFormat, *, avoid: set[str]
) -> Ambassador:
    """After a collision in Shopify: move to the next candidate that is not ``avoid``ed."""
    assert ambassador.id is not None
    for candidate in codes.candidates(
        fmt,
        first_name=ambassador.first_name,
        last_name=ambassador.last_name,
        seed=f"{ambassador.shop_id}:{ambassador.id}",
    ):
        if candidate in avoid or candidate == ambassador.code:
            continue
        if uow.ambassadors.reserve_code(ambassador.shop_id, ambassador.id, candidate):
            fresh = uow.ambassadors.get(ambassador.shop_id, ambassador.id)
            assert fresh is not None
            return fresh
    raise ProgramError("no_code", "no free code could be found for this ambassador")


def queue_shopify_sync(jobs: JobQueue, shop_domain: str) -> None:
    """After a program change: make Shopify follow (codes, then customer tags), and the
    Salesforce Contacts (a no-op without a connected org). Every job compares what should be
    with what is, so queuing them again is harmless."""
    for job, key in (
        (Job.SYNC_CODES, "sync-codes"),
        (Job.SYNC_CUSTOMER_TAGS, "sync-tags"),
        (Job.SYNC_SALESFORCE, "sync-salesforce"),
    ):
        try:
            jobs.enqueue(job, shop_domain, job_id=f"{key}:{shop_domain}")
        except Exception:  # noqa: BLE001 - the hourly drift check queues both again
            log.warning("program.shopify_sync.enqueue_failed",
                        extra={"shop": shop_domain, "job": job.value})


def enrol_customer(
    uow: UnitOfWork,
    jobs: JobQueue,
    clock: Clock,
    shop: Shop,
    customer: CustomerSummary | None,
    *,
    customer_id: int,
    source: str = "api",
    actor: str = "merchant",
    tier_id: int | None = None,
) -> Enrolment:
    if customer is None:
        raise ProgramError("customer_not_found", f"Shopify has no customer {customer_id}", 404)
    if not customer.email:
        raise ProgramError(
            "customer_without_email", "this customer has no email address; add one in Shopify first"
        )
    return enrol(
        uow,
        jobs,
        clock,
        shop,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        customer_id=customer.id,
        source=source,
        actor=actor,
        tier_id=tier_id,
    )


def change_status(
    uow: UnitOfWork,
    jobs: JobQueue,
    clock: Clock,
    shop: Shop,
    ambassador_id: int,
    status: AmbassadorStatus,
    *,
    actor: str,
    reason: str | None = None,
) -> Ambassador:
    """Move an ambassador; their code follows (active only while the ambassador is active)."""
    assert shop.id is not None
    now = clock.now()
    with uow:
        current = uow.ambassadors.get(shop.id, ambassador_id, for_update=True)
        if current is None:
            raise NotFound("ambassador")
        try:
            moved = current.moved_to(status, now)
        except InvalidTransition as exc:
            raise ProgramError("invalid_transition", str(exc), 409) from None
        if moved is current:
            return current
        saved = uow.ambassadors.save(moved)
        if status is AmbassadorStatus.ACTIVE and saved.code is None:
            saved = _reserve_code(uow, saved, uow.program.settings(shop.id).code_format)
        uow.ambassadors.audit(
            shop.id,
            AuditEntry(
                ambassador_id, "status", actor, now, current.status.value, status.value, reason
            ),
        )
        uow.after_commit(lambda: queue_shopify_sync(jobs, shop.domain))
        uow.commit()
    return saved


def set_tier(
    uow: UnitOfWork,
    clock: Clock,
    shop: Shop,
    ambassador_id: int,
    tier_id: int | None,
    *,
    actor: str,
    reason: str | None = None,
    lock: bool = True,
) -> Ambassador:
    """Manual tier override (locked against automatic evaluation unless ``lock`` is false)."""
    assert shop.id is not None
    now = clock.now()
    with uow:
        current = uow.ambassadors.get(shop.id, ambassador_id, for_update=True)
        if current is None:
            raise NotFound("ambassador")
        tiers = {t.id: t for t in uow.program.tiers(shop.id)}
        if tier_id is not None and tier_id not in tiers:
            raise ProgramError("invalid_tier", "no such tier")
        saved = uow.ambassadors.save(replace(current, tier_id=tier_id, tier_locked=lock))
        uow.ambassadors.audit(
            shop.id,
            AuditEntry(
                ambassador_id,
                "tier",
                actor,
                now,
                tiers[current.tier_id].name if current.tier_id in tiers else None,
                tiers[tier_id].name if tier_id in tiers else None,
                reason,
                {"locked": lock},
            ),
        )
        uow.commit()
    return saved


def set_code(
    uow: UnitOfWork,
    jobs: JobQueue,
    clock: Clock,
    shop: Shop,
    ambassador_id: int,
    code: str,
    *,
    actor: str,
) -> Ambassador:
    """The merchant chooses (or rotates) a code: normalised, unique in the shop, then synced."""
    assert shop.id is not None
    try:
        wanted = codes.normalise(code)
    except codes.InvalidCode as exc:
        raise ProgramError("invalid_code", str(exc)) from None
    now = clock.now()
    with uow:
        current = uow.ambassadors.get(shop.id, ambassador_id, for_update=True)
        if current is None:
            raise NotFound("ambassador")
        if current.code == wanted:
            return current
        old_gid, old_code = current.redeem_code_gid, current.code
        if not uow.ambassadors.reserve_code(shop.id, ambassador_id, wanted):
            raise ProgramError("code_taken", f"{wanted} belongs to another ambassador", 409)
        saved = uow.ambassadors.get(shop.id, ambassador_id)
        assert saved is not None
        uow.ambassadors.audit(
            shop.id,
            AuditEntry(
                ambassador_id,
                "code",
                actor,
                now,
                old_code,
                wanted,
                "set by merchant",
                {"retired_redeem_code_gid": old_gid},
            ),
        )
        if old_gid:
            uow.ambassadors.retire_code(shop.id, ambassador_id, current.discount_gid or "", old_gid)
        uow.after_commit(lambda: queue_shopify_sync(jobs, shop.domain))
        uow.commit()
    return saved


def list_ambassadors(uow: UnitOfWork, shop: Shop, query: AmbassadorQuery) -> list[Ambassador]:
    assert shop.id is not None
    with uow:
        return uow.ambassadors.search(shop.id, query)


def codes_needing_sync_state(ambassador: Ambassador) -> CodeState | None:
    """What the code sync must do for this ambassador: ``ACTIVE`` (add it in Shopify),
    ``INACTIVE`` (remove it), or None (nothing)."""
    if ambassador.code is None:
        return None
    if ambassador.code_should_be_active and ambassador.code_state in (
        CodeState.PENDING,
        CodeState.MISSING,
        CodeState.INACTIVE,
    ):
        return CodeState.ACTIVE
    if not ambassador.code_should_be_active and ambassador.code_state is CodeState.ACTIVE:
        return CodeState.INACTIVE
    return None
