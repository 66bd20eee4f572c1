"""Applying to the program from the storefront, the committee's review, and the messages the
applicant gets along the way.

Contracts:
- A submission stores everything (the applicant as an ``applied`` ambassador, the application,
  the "received" message) in one transaction, or nothing at all.
- One pending application per person: submitting again while one is pending stores nothing and
  says so (``ALREADY_APPLIED``); active and paused ambassadors do not apply
  (``ALREADY_AMBASSADOR``). Someone rejected or removed may apply again
  ``reapply_after_days`` after their removal; before that: :class:`TooEarly` with the date.
- Abuse limits (:mod:`connector.domain.applications`) are database counts over stored
  applications: they hold across processes and without Redis. Over a limit:
  :class:`RateLimited`, nothing stored.
- Votes and decisions on one application are serialised by its row lock. The vote that brings
  the approve votes to ``approvals_required`` approves; so does an explicit approval. Deciding
  an application that is no longer pending: 409, nothing changes.
- Approval moves the ambassador to ``active`` (their code is reserved now and issued in Shopify
  by the code sync queued after the commit); rejection moves them to ``removed`` with the
  reason. Both are audited.
- Every message is written to the outbox in the transaction of the event it tells about, under
  a key per event (``application:{id}:approved``), so a retried request never sends twice.
  :func:`send_notifications` delivers them after the commit, at least once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from connector.domain.ambassadors import (
    Ambassador,
    AmbassadorStatus,
    AuditEntry,
    InvalidEmail,
    InvalidTransition,
    normalise_email,
)
from connector.domain.applications import (
    CLIENT_WINDOW,
    COMMENT_MAX,
    EMAIL_WINDOW,
    MAX_PER_CLIENT_PER_HOUR,
    MAX_PER_EMAIL_PER_DAY,
    NAME_MAX,
    Application,
    ApplicationStatus,
    ApplicationVote,
    InvalidApplication,
    Message,
    VoteChoice,
    approvals,
    approved_message,
    clean_reason,
    parse_submission,
    reapply_from,
    received_message,
    rejected_message,
)
from connector.domain.program import ApplicationQuestion, ProgramSettings
from connector.domain.shops import Shop
from connector.ports import (
    SECRET_MESSAGE_KEYS,
    Clock,
    CustomerSummary,
    Job,
    JobQueue,
    Notifier,
    UnitOfWork,
    UnitOfWorkFactory,
)
from connector.services.ambassadors import NotFound, ProgramError, next_code, queue_shopify_sync

log = logging.getLogger(__name__)

APPLICANT = "applicant"
AUTO_APPROVER = "system:auto_approve"

#: Looks a signed-in customer up in the store (a Shopify call, made outside any transaction).
FindCustomer = Callable[[int], CustomerSummary | None]


class InvalidSubmission(ProgramError):
    """The form has bad fields; ``errors`` maps each to a message for the person."""

    status = 422

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("invalid_application", "please correct the fields marked below")
        self.errors = dict(errors)


class RateLimited(ProgramError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__("rate_limited", message)
        self.retry_after = retry_after


class TooEarly(ProgramError):
    """A rejected (or removed) person applied again before their waiting period ended."""

    status = 409

    def __init__(self, reapply_on: datetime) -> None:
        super().__init__(
            "reapply_too_early", f"you can apply again from {reapply_on.date().isoformat()}"
        )
        self.reapply_on = reapply_on


class AlreadyDecided(ProgramError):
    status = 409

    def __init__(self, application: Application) -> None:
        super().__init__(
            "already_decided", f"this application was already {application.status.value}"
        )


class Outcome(StrEnum):
    RECEIVED = "received"
    APPROVED = "approved"  # auto-approve
    ALREADY_APPLIED = "already_applied"
    ALREADY_AMBASSADOR = "already_ambassador"


@dataclass(frozen=True)
class ApplicationForm:
    """What the storefront form sent: untrusted text, validated by :func:`submit`."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    answers: Mapping[str, str] = field(default_factory=dict)
    social: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmissionResult:
    outcome: Outcome
    email: str
    first_name: str
    application: Application | None = None


@dataclass(frozen=True)
class FormState:
    """What the storefront shows: the program's questions, or (for a signed-in customer we
    already know) why there is no form to fill."""

    questions: tuple[ApplicationQuestion, ...]
    outcome: Outcome | None = None
    reapply_on: datetime | None = None


@dataclass(frozen=True)
class Standing:
    outcome: Outcome | None
    reapply_on: datetime | None = None
    pending: Application | None = None


# --- the storefront -------------------------------------------------------------------------


def application_form(
    uow: UnitOfWork, clock: Clock, shop: Shop, customer_id: int | None
) -> FormState:
    """The form for this visitor. A signed-in customer who is already an ambassador, already
    has an application pending, or must still wait gets that instead (no Shopify call)."""
    assert shop.id is not None
    with uow:
        settings = uow.program.settings(shop.id)
        standing = Standing(None)
        if customer_id is not None:
            known = uow.ambassadors.by_customer(shop.id, customer_id)
            if known is not None:
                standing = _standing(uow, known, settings, clock.now())
    return FormState(settings.questions, standing.outcome, standing.reapply_on)


def submit(
    uow: UnitOfWork,
    jobs: JobQueue,
    clock: Clock,
    shop: Shop,
    form: ApplicationForm,
    *,
    customer_id: int | None,
    find_customer: FindCustomer,
    client_hash: str | None,
) -> SubmissionResult:
    """Take an application from the storefront (see the module contracts).

    ``customer_id`` is the signed-in customer Shopify vouched for; their name and email come
    from their account (``find_customer``), not from the form. Raises
    :class:`InvalidSubmission`, :class:`RateLimited`, :class:`TooEarly` or
    :class:`ProgramError`; in every such case nothing is stored.
    """
    assert shop.id is not None
    now = clock.now()
    with uow:
        settings = uow.program.settings(shop.id)
        from_client = (
            uow.applications.count_recent(shop.id, now - CLIENT_WINDOW, client_hash=client_hash)
            if client_hash
            else 0
        )
    if from_client >= MAX_PER_CLIENT_PER_HOUR:
        raise RateLimited("too many applications from your network; try again in an hour", 3600)
    try:
        submission = parse_submission(
            first_name=form.first_name,
            last_name=form.last_name,
            email=form.email,
            answers=form.answers,
            social=form.social,
            questions=settings.questions,
            identity_known=customer_id is not None,
        )
    except InvalidApplication as exc:
        raise InvalidSubmission(exc.errors) from None

    if customer_id is not None:
        customer = find_customer(customer_id)
        if customer is None:
            raise ProgramError(
                "customer_not_found", "we could not find your customer account; sign in again"
            )
        try:
            email = normalise_email(customer.email)
        except InvalidEmail:
            raise ProgramError(
                "customer_without_email",
                "your customer account has no email address; add one to your account first",
            ) from None
        first, last = customer.first_name.strip()[:NAME_MAX], customer.last_name.strip()[:NAME_MAX]
    else:
        email, first, last = submission.email, submission.first_name, submission.last_name

    with uow:
        recent = uow.applications.count_recent(shop.id, now - EMAIL_WINDOW, email=email)
        if recent >= MAX_PER_EMAIL_PER_DAY:
            raise RateLimited("too many applications for this email address today", 86400)
        found = _existing(uow, shop.id, customer_id, email)
        if found is not None:
            assert found.id is not None
            current = uow.ambassadors.get(shop.id, found.id, for_update=True)
            assert current is not None
            standing = _standing(uow, current, settings, now)
            if standing.outcome is not None:
                return SubmissionResult(standing.outcome, email, first, standing.pending)
            if standing.reapply_on is not None:
                raise TooEarly(standing.reapply_on)
            ambassador = _return_as_applicant(
                uow, current, first, last, customer_id, submission.social, now
            )
        else:
            tiers = uow.program.tiers(shop.id)
            added = uow.ambassadors.add(
                Ambassador(
                    id=None,
                    shop_id=shop.id,
                    email=email,
                    status=AmbassadorStatus.APPLIED,
                    first_name=first,
                    last_name=last,
                    customer_id=customer_id,
                    tier_id=tiers[0].id if tiers else None,
                    source="application",
                    social=dict(submission.social),
                )
            )
            if added is None:  # the same person's other submission won the race
                uow.rollback()
                raced = _existing(uow, shop.id, customer_id, email)
                standing = _standing(uow, raced, settings, now) if raced else Standing(None)
                return SubmissionResult(
                    standing.outcome or Outcome.ALREADY_APPLIED, email, first, standing.pending
                )
            assert added.id is not None
            uow.ambassadors.audit(
                shop.id,
                AuditEntry(
                    added.id,
                    "enrol",
                    APPLICANT,
                    now,
                    None,
                    AmbassadorStatus.APPLIED.value,
                    None,
                    {"source": "application"},
                ),
            )
            ambassador = added
        assert ambassador.id is not None
        application = uow.applications.add(
            Application(
                id=None,
                shop_id=shop.id,
                ambassador_id=ambassador.id,
                email=email,
                status=ApplicationStatus.PENDING,
                customer_id=customer_id,
                answers=submission.answers,
                social=dict(submission.social),
                client_hash=client_hash,
                created_at=now,
            )
        )
        if settings.auto_approve:
            application = _approve(
                uow,
                jobs,
                shop,
                settings,
                application,
                ambassador,
                actor=AUTO_APPROVER,
                tier_id=None,
                reason="approved automatically",
                now=now,
            )
            outcome = Outcome.APPROVED
        else:
            _notify(uow, shop, received_message(application, _shop_name(shop)))
            uow.after_commit(lambda: _wake_sender(jobs))
            outcome = Outcome.RECEIVED
        uow.commit()
    log.info(
        "program.application.received",
        extra={"shop": shop.domain, "application": application.id, "outcome": outcome.value},
    )
    return SubmissionResult(outcome, email, first, application)


def _existing(
    uow: UnitOfWork, shop_id: int, customer_id: int | None, email: str
) -> Ambassador | None:
    if customer_id is not None:
        found = uow.ambassadors.by_customer(shop_id, customer_id)
        if found is not None:
            return found
    return uow.ambassadors.by_email(shop_id, email)


def _standing(
    uow: UnitOfWork, ambassador: Ambassador, settings: ProgramSettings, now: datetime
) -> Standing:
    """Whether this person may apply now: already an ambassador, already applied (and their
    pending application), or removed too recently (and from when they may apply)."""
    assert ambassador.id is not None
    if ambassador.status in (AmbassadorStatus.ACTIVE, AmbassadorStatus.PAUSED):
        return Standing(Outcome.ALREADY_AMBASSADOR)
    if ambassador.status is AmbassadorStatus.APPLIED:
        pending = uow.applications.pending_for(ambassador.shop_id, ambassador.id)
        return Standing(Outcome.ALREADY_APPLIED, pending=pending) if pending else Standing(None)
    allowed_from = reapply_from(_removed_at(uow, ambassador), settings.reapply_after_days)
    return Standing(None, reapply_on=allowed_from if now < allowed_from else None)


def _removed_at(uow: UnitOfWork, ambassador: Ambassador) -> datetime:
    """When the ambassador was last moved to ``removed`` (the audit trail knows)."""
    assert ambassador.id is not None
    moves = [
        e.at
        for e in uow.ambassadors.history(ambassador.shop_id, ambassador.id)
        if e.kind in ("status", "enrol") and e.after == AmbassadorStatus.REMOVED.value
    ]
    if moves:
        return max(moves)
    fallback = ambassador.updated_at or ambassador.created_at
    assert fallback is not None
    return fallback


def _return_as_applicant(
    uow: UnitOfWork,
    ambassador: Ambassador,
    first: str,
    last: str,
    customer_id: int | None,
    social: Mapping[str, str],
    now: datetime,
) -> Ambassador:
    """An existing record applies (again): back to ``applied`` (audited), names and customer
    filled where missing (never overwritten: the form cannot rename someone), social updated."""
    assert ambassador.id is not None
    moved = ambassador.moved_to(AmbassadorStatus.APPLIED, now)
    updated = replace(
        moved,
        first_name=ambassador.first_name or first,
        last_name=ambassador.last_name or last,
        customer_id=ambassador.customer_id if ambassador.customer_id is not None else customer_id,
        social={**ambassador.social, **social},
    )
    saved = uow.ambassadors.save(updated)
    if ambassador.status is not AmbassadorStatus.APPLIED:
        uow.ambassadors.audit(
            ambassador.shop_id,
            AuditEntry(
                ambassador.id,
                "status",
                APPLICANT,
                now,
                ambassador.status.value,
                AmbassadorStatus.APPLIED.value,
                "applied again",
            ),
        )
    return saved


# --- the review -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    application: Application
    approve_votes: int
    reject_votes: int


@dataclass(frozen=True)
class ReviewQueue:
    items: list[QueueItem]
    approvals_required: int


@dataclass(frozen=True)
class Review:
    """One application with everything a reviewer needs."""

    application: Application
    votes: tuple[ApplicationVote, ...]
    approvals_required: int
    ambassador: Ambassador | None
    reapply_on: datetime | None  # rejected applications: when the person may apply again


def review_queue(
    uow: UnitOfWork,
    shop: Shop,
    status: ApplicationStatus | None,
    after_id: int | None,
    limit: int,
) -> ReviewQueue:
    assert shop.id is not None
    with uow:
        found = uow.applications.search(shop.id, status, after_id, limit)
        counts = uow.applications.vote_counts([a.id for a in found if a.id is not None])
        required = uow.program.settings(shop.id).approvals_required
    return ReviewQueue(
        [QueueItem(a, *counts.get(a.id or 0, (0, 0))) for a in found], approvals_required=required
    )


def review(uow: UnitOfWork, shop: Shop, application_id: int) -> Review:
    assert shop.id is not None
    with uow:
        application = uow.applications.get(shop.id, application_id)
        if application is None:
            raise NotFound("application")
        assert application.id is not None
        settings = uow.program.settings(shop.id)
        votes = tuple(uow.applications.votes(application.id))
        ambassador = uow.ambassadors.get(shop.id, application.ambassador_id)
    reapply_on = (
        reapply_from(application.decided_at, settings.reapply_after_days)
        if application.status is ApplicationStatus.REJECTED and application.decided_at
        else None
    )
    return Review(application, votes, settings.approvals_required, ambassador, reapply_on)


def vote(
    uow: UnitOfWork,
    jobs: JobQueue,
    clock: Clock,
    shop: Shop,
    application_id: int,
    *,
    reviewer: str,
    choice: VoteChoice,
    comment: object = None,
) -> Review:
    """Record ``reviewer``'s vote (replacing their earlier one). The vote that brings the
    approve votes to ``approvals_required`` approves the application. Reject votes are advice
    for the committee: turning someone away takes an explicit :func:`reject` with a reason
    the applicant will read."""
    assert shop.id is not None
    try:
        note = clean_reason(comment, required=False, limit=COMMENT_MAX)
    except ValueError as exc:
        raise ProgramError("invalid_comment", f"comment {exc}") from None
    now = clock.now()
    with uow:
        application = _pending(uow, shop.id, application_id)
        assert application.id is not None
        uow.applications.record_vote(application.id, ApplicationVote(reviewer, choice, now, note))
        settings = uow.program.settings(shop.id)
        approved = approvals(uow.applications.votes(application.id))
        if approved >= settings.approvals_required:
            ambassador = uow.ambassadors.get(shop.id, application.ambassador_id, for_update=True)
            assert ambassador is not None
            _approve(
                uow,
                jobs,
                shop,
                settings,
                application,
                ambassador,
                actor=reviewer,
                tier_id=None,
                reason=f"approved by {approved} of {settings.approvals_required} reviewers",
                now=now,
            )
        uow.commit()
    log.info(
        "program.application.voted",
        extra={"shop": shop.domain, "application": application_id, "vote": choice.value},
    )
    return review(uow, shop, application_id)


def approve(
    uow: UnitOfWork,
    jobs: JobQueue,
    clock: Clock,
    shop: Shop,
    application_id: int,
    *,
    actor: str,
    tier_id: int | None = None,
) -> Review:
    """Approve now, whatever the votes say (``tier_id``: the tier to start in)."""
    assert shop.id is not None
    now = clock.now()
    with uow:
        application = _pending(uow, shop.id, application_id)
        ambassador = uow.ambassadors.get(shop.id, application.ambassador_id, for_update=True)
        assert ambassador is not None
        settings = uow.program.settings(shop.id)
        _approve(
            uow,
            jobs,
            shop,
            settings,
            application,
            ambassador,
            actor=actor,
            tier_id=tier_id,
            reason=None,
            now=now,
        )
        uow.commit()
    log.info("program.application.approved", extra={"shop": shop.domain, "id": application_id})
    return review(uow, shop, application_id)


def reject(
    uow: UnitOfWork,
    jobs: JobQueue,
    clock: Clock,
    shop: Shop,
    application_id: int,
    *,
    actor: str,
    reason: object,
) -> Review:
    """Turn the application down. ``reason`` is required and is sent to the applicant, with
    the date from which they may apply again; the ambassador moves to ``removed``."""
    assert shop.id is not None
    try:
        text = clean_reason(reason, required=True)
    except ValueError as exc:
        raise ProgramError("invalid_reason", f"reason {exc}") from None
    assert text is not None
    now = clock.now()
    with uow:
        application = _pending(uow, shop.id, application_id)
        ambassador = uow.ambassadors.get(shop.id, application.ambassador_id, for_update=True)
        assert ambassador is not None and ambassador.id is not None
        if ambassador.status in (AmbassadorStatus.ACTIVE, AmbassadorStatus.PAUSED):
            raise ProgramError(
                "already_ambassador",
                "this person is already an ambassador; change their status instead",
                409,
            )
        settings = uow.program.settings(shop.id)
        moved = ambassador.moved_to(AmbassadorStatus.REMOVED, now)
        if moved is not ambassador:
            uow.ambassadors.save(moved)
            uow.ambassadors.audit(
                shop.id,
                AuditEntry(
                    ambassador.id,
                    "status",
                    actor,
                    now,
                    ambassador.status.value,
                    AmbassadorStatus.REMOVED.value,
                    text,
                    {"application_id": application.id},
                ),
            )
        decided = replace(
            application,
            status=ApplicationStatus.REJECTED,
            reason=text,
            decided_by=actor,
            decided_at=now,
        )
        if not uow.applications.decide(decided):
            raise AlreadyDecided(application)
        reapply_on = reapply_from(now, settings.reapply_after_days)
        _notify(uow, shop, rejected_message(decided, _shop_name(shop), text, reapply_on.date()))
        uow.after_commit(lambda: _wake_sender(jobs))
        uow.commit()
    log.info("program.application.rejected", extra={"shop": shop.domain, "id": application_id})
    return review(uow, shop, application_id)


def _pending(uow: UnitOfWork, shop_id: int, application_id: int) -> Application:
    application = uow.applications.get(shop_id, application_id, for_update=True)
    if application is None:
        raise NotFound("application")
    if not application.pending:
        raise AlreadyDecided(application)
    return application


def _approve(
    uow: UnitOfWork,
    jobs: JobQueue,
    shop: Shop,
    settings: ProgramSettings,
    application: Application,
    ambassador: Ambassador,
    *,
    actor: str,
    tier_id: int | None,
    reason: str | None,
    now: datetime,
) -> Application:
    """Inside the caller's transaction, with the application row locked: activate the
    ambassador (code reserved), record the decision, write the welcome message, and queue
    the code sync and the sender for after the commit."""
    assert shop.id is not None and ambassador.id is not None
    tiers = {t.id: t for t in uow.program.tiers(shop.id)}
    if tier_id is not None and tier_id not in tiers:
        raise ProgramError("invalid_tier", "no such tier")
    try:
        moved = ambassador.moved_to(AmbassadorStatus.ACTIVE, now)
    except InvalidTransition as exc:
        raise ProgramError("invalid_transition", str(exc), 409) from None
    if tier_id is not None:
        moved = replace(moved, tier_id=tier_id)
    saved = uow.ambassadors.save(moved) if moved != ambassador else ambassador
    if saved.code is None:
        saved = next_code(uow, saved, settings.code_format, avoid=set())
    assert saved.code is not None  # next_code reserves one or raises
    if ambassador.status is not AmbassadorStatus.ACTIVE:
        uow.ambassadors.audit(
            shop.id,
            AuditEntry(
                ambassador.id,
                "status",
                actor,
                now,
                ambassador.status.value,
                AmbassadorStatus.ACTIVE.value,
                reason or "application approved",
                {"application_id": application.id},
            ),
        )
    if tier_id is not None and tier_id != ambassador.tier_id:
        before = tiers.get(ambassador.tier_id)
        uow.ambassadors.audit(
            shop.id,
            AuditEntry(
                ambassador.id,
                "tier",
                actor,
                now,
                before.name if before else None,
                tiers[tier_id].name,
                "chosen on approval",
                {"locked": saved.tier_locked},
            ),
        )
    decided = replace(
        application,
        status=ApplicationStatus.APPROVED,
        reason=reason,
        decided_by=actor,
        decided_at=now,
        tier_id=tier_id,
        first_name=saved.first_name,
        last_name=saved.last_name,
    )
    if not uow.applications.decide(decided):
        raise AlreadyDecided(application)
    _notify(uow, shop, approved_message(decided, _shop_name(shop), shop.domain, saved.code))
    # In this order: with a single worker (and inline jobs) the code is live in Shopify before
    # the welcome message that carries it goes out.
    uow.after_commit(lambda: queue_shopify_sync(jobs, shop.domain))
    uow.after_commit(lambda: _wake_sender(jobs))
    return decided


# --- notifications --------------------------------------------------------------------------


def _shop_name(shop: Shop) -> str:
    return shop.name or shop.domain


def _notify(uow: UnitOfWork, shop: Shop, message: Message) -> bool:
    assert shop.id is not None
    return uow.notifications.add(shop.id, message.key, message.to, message.subject, message.body)


def _wake_sender(jobs: JobQueue) -> None:
    try:
        jobs.trigger(Job.SEND_NOTIFICATIONS)
    except Exception:  # noqa: BLE001 - the scheduled run sends it a little later
        log.warning("notifications.trigger_failed")


def send_notifications(
    uow_factory: UnitOfWorkFactory, notifier: Notifier, jobs: JobQueue, clock: Clock
) -> int:
    """Send every pending message once, oldest first; returns how many were sent.

    At least once: a message is marked sent in the transaction that holds its row lock, after
    the notifier returned (a crash in between sends it again on the next run). A message the
    notifier refuses stays pending for the next run and does not hold up the others. Safe to
    run concurrently (each message is taken by one sender).
    """
    jobs.acknowledge(Job.SEND_NOTIFICATIONS)  # a trigger from now on queues a fresh run
    sent = 0
    last_id = 0
    while True:
        with uow_factory() as uow:
            message = uow.notifications.claim_next(after_id=last_id)
            if message is None:
                break
            last_id = message.id
            try:
                notifier.send(message.to, message.subject, message.body)
            except Exception:  # any backend failure: keep it pending, go on
                log.warning(
                    "notifications.send_failed",
                    extra={"shop_id": message.shop_id, "notification": message.id},
                    exc_info=True,
                )
                continue
            secret = message.key.startswith(SECRET_MESSAGE_KEYS)
            uow.notifications.mark_sent(message.id, clock.now(), forget_body=secret)
            uow.commit()
        sent += 1
    if sent:
        log.info("notifications.sent", extra={"count": sent})
    return sent
