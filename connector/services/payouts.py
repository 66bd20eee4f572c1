"""Reward fulfilment: payout runs, approval, exactly-once delivery through Shopify, cash batches.

Money moves in three steps, each its own transaction:

1. **Reserve** (a run, or a points redemption): the ambassador's row is locked, the payable
   balance read, a payout created and a negative ``payout`` ledger entry appended, together.
2. **Claim** (the fulfilment job): the payout row is locked and moved to ``fulfilling`` with an
   attempt number and a lease, and the first attempt's time is kept. Only then is Shopify called.
3. **Record**: what Shopify created is written and the payout becomes ``fulfilled``.

A worker killed between 2 and 3 leaves a ``fulfilling`` payout whose lease runs out; the sweeper
queues it again and the next attempt *looks for* what the earlier one created before creating
anything (see :mod:`adapters.shopify.rewards`), so the reward is delivered once. The same job
queued twice finds the payout already claimed (or done) and does nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from connector.domain.ambassadors import Ambassador
from connector.domain.money import Money
from connector.domain.payouts import (
    IN_FLIGHT,
    MAX_ATTEMPTS,
    SHOPIFY_FORMS,
    CashLine,
    PayoutSchedule,
    PayoutSettings,
    PayoutState,
    RewardForm,
    bank_rows,
    can_move,
    next_run,
    paypal_rows,
    period_key,
    plan_payout,
    points,
    points_to_money,
    retry_delay,
    reward_code,
    spreadsheet_safe,
)
from connector.ports import (
    Clock,
    IssuedReward,
    Job,
    JobQueue,
    LedgerEntry,
    NewPayout,
    Payout,
    PayoutBatch,
    PayoutEvent,
    PayoutPreference,
    PlatformError,
    PlatformThrottled,
    PlatformUnauthorized,
    RewardPlatform,
    RewardRefused,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)

#: How long a claimed payout is a worker's before the sweeper may hand it to another.
LEASE = timedelta(minutes=5)


class PayoutError(ValueError):
    """A request the payout rules refuse; ``code`` is stable, ``status`` the HTTP answer."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _fail_at(point: str, failpoints: frozenset[str]) -> None:
    """Test-only crash point: exit at once, as ``kill -9`` would (no cleanup, no commit)."""
    if point in failpoints:
        log.warning("failpoint.exit", extra={"failpoint": point})
        os._exit(137)


def _job_id(shop_domain: str, payout_id: int) -> str:
    return f"payout-{shop_domain}-{payout_id}"


def _reserve(uow: UnitOfWork, shop_id: int, payout: NewPayout, actor: str, reason: str) -> Payout:
    created = uow.payouts.add(shop_id, payout, actor, reason)
    uow.ledger.append(
        shop_id,
        [
            LedgerEntry(
                ambassador_id=payout.ambassador_id,
                order_id=None,
                kind="payout",
                amount=-payout.amount,
                currency=payout.currency,
                presentment_amount=None,
                presentment_currency=None,
                reason=f"payout #{created.id} ({payout.form.value})",
                idempotency_key=f"payout:{created.id}",
            )
        ],
    )
    uow.ledger.refresh_stats(shop_id, payout.ambassador_id, payout.currency)
    return created


def _release(uow: UnitOfWork, payout: Payout, why: str) -> None:
    """Give a cancelled payout's amount back to the balance (a new entry; the ledger appends)."""
    uow.ledger.append(
        payout.shop_id,
        [
            LedgerEntry(
                ambassador_id=payout.ambassador_id,
                order_id=None,
                kind="payout_released",
                amount=payout.amount,
                currency=payout.currency,
                presentment_amount=None,
                presentment_currency=None,
                reason=f"payout #{payout.id} released: {why}",
                idempotency_key=f"payout:{payout.id}:released",
            )
        ],
    )
    uow.ledger.refresh_stats(payout.shop_id, payout.ambassador_id, payout.currency)


def _shop_id(uow: UnitOfWork, shop_domain: str) -> tuple[int, str]:
    shop = uow.shops.get(shop_domain)
    if shop is None or shop.id is None:
        raise PayoutError("not_installed", f"{shop_domain} is not installed", 404)
    return shop.id, shop.currency or "USD"


def _ledger_currencies(
    uow: UnitOfWork, shop_id: int, ambassador_ids: Sequence[int], default: str
) -> dict[int, str]:
    """The currency of each ambassador's ledger (the shop's when they earned), which is what
    a payout pays in, even if the shop has changed currency since."""
    totals = uow.ledger.totals(shop_id, list(ambassador_ids))
    return {a: totals[a].currency if a in totals else default for a in ambassador_ids}


def _form_for(settings: PayoutSettings, preference: PayoutPreference | None) -> RewardForm:
    if preference is not None and settings.allows(preference.form):
        return preference.form
    return settings.form


def _initial_state(settings: PayoutSettings, form: RewardForm) -> PayoutState:
    if form is RewardForm.CASH or settings.merchant_approval:
        return PayoutState.AWAITING_APPROVAL
    return PayoutState.APPROVED


# --- runs ------------------------------------------------------------------------------------


@dataclass
class RunReport:
    batch_id: int | None
    period: str | None
    created: int = 0
    total: Decimal = Decimal(0)
    by_form: dict[str, Decimal] = field(default_factory=dict)
    below_minimum: int = 0
    negative: int = 0  # balances netted to below zero by late refunds: nothing paid
    points_kept: int = 0

    def figures(self) -> dict[str, object]:
        return {
            "batch_id": self.batch_id,
            "period": self.period,
            "created": self.created,
            "total": str(self.total),
            "by_form": {k: str(v) for k, v in sorted(self.by_form.items())},
            "below_minimum": self.below_minimum,
            "negative": self.negative,
            "points_kept": self.points_kept,
        }


def run_payouts(
    uow_factory: UnitOfWorkFactory,
    jobs: JobQueue,
    clock: Clock,
    shop_domain: str,
    *,
    actor: str = "schedule",
    period: str | None = None,
) -> RunReport:
    """Create this period's payouts for every ambassador with enough payable.

    One run per shop and period: a second call for the same period creates nothing (the report
    has ``batch_id`` None). Without ``period`` the program's schedule names it; a manual
    schedule has no scheduled runs (the merchant runs them, with a period of their own).
    """
    now = clock.now()
    with uow_factory() as uow:
        shop_id, shop_currency = _shop_id(uow, shop_domain)
        settings = uow.program.settings(shop_id).payouts
        period = period or period_key(settings.schedule, now)
        if period is None:
            return RunReport(None, None)
        batch = uow.payouts.add_batch(shop_id, period, actor)
        if batch is None:
            return RunReport(None, period)
        report = RunReport(batch.id, period)
        preferences = uow.payouts.preferences(shop_id)
        candidates = sorted(uow.payouts.payable(shop_id))
        queued: list[int] = []
        uow.payouts.lock_ambassadors(shop_id, candidates)
        payable = uow.payouts.payable(shop_id, candidates)
        recipients = _recipients(uow, shop_id, candidates)
        currencies = _ledger_currencies(uow, shop_id, candidates, shop_currency)
        for ambassador_id in candidates:
            amount = payable.get(ambassador_id, Decimal(0))
            recipient = recipients.get(ambassador_id)
            if recipient is None:
                continue
            if amount < 0:
                report.negative += 1
                continue
            form = _form_for(settings, preferences.get(ambassador_id))
            if form is RewardForm.POINTS:
                report.points_kept += 1
                continue
            plan = plan_payout(
                ambassador_id, Money(amount, currencies[ambassador_id]), form, settings
            )
            if plan is None:
                report.below_minimum += amount > 0
                continue
            preference = preferences.get(ambassador_id)
            created = _reserve(
                uow,
                shop_id,
                NewPayout(
                    ambassador_id=ambassador_id,
                    batch_id=batch.id,
                    form=form,
                    state=_initial_state(settings, form),
                    amount=plan.amount.amount,
                    value=plan.value.amount,
                    currency=plan.amount.currency,
                    recipient_email=(preference.paypal_email if preference else None)
                    or recipient[0],
                ),
                actor,
                f"payout run {period}",
            )
            report.created += 1
            report.total += plan.amount.amount
            report.by_form[form.value] = report.by_form.get(form.value, Decimal(0)) + (
                plan.amount.amount
            )
            if created.state is PayoutState.APPROVED and form in SHOPIFY_FORMS:
                queued.append(created.id)
        for payout_id in queued:
            uow.after_commit(
                lambda pid=payout_id: jobs.enqueue(  # type: ignore[misc]
                    Job.FULFIL_PAYOUT, shop_domain, pid, job_id=_job_id(shop_domain, pid)
                )
            )
        uow.commit()
    log.info(
        "payouts.run",
        extra={"shop": shop_domain, "batch_id": report.batch_id, "payouts": report.created},
    )
    return report


def run_due_payouts(
    uow_factory: UnitOfWorkFactory, jobs: JobQueue, clock: Clock, shop_domains: Sequence[str]
) -> dict[str, int]:
    """The scheduled tick: each shop's run for the current period, if not done yet."""
    created = {}
    for domain in shop_domains:
        try:
            report = run_payouts(uow_factory, jobs, clock, domain)
        except PayoutError:
            continue
        if report.batch_id is not None:
            created[domain] = report.created
    return created


# --- approval, cancellation, replay -----------------------------------------------------------


def _move(
    uow: UnitOfWork, payout: Payout, target: PayoutState, actor: str, reason: str | None, **changes
) -> Payout:
    if not can_move(payout.state, target):
        raise PayoutError(
            "invalid_transition",
            f"payout #{payout.id} is {payout.state.value}: cannot become {target.value}",
        )
    moved = replace(payout, state=target, **changes)
    uow.payouts.move(payout, moved, actor, reason)
    return moved


def _locked(uow: UnitOfWork, shop_id: int, payout_id: int) -> Payout:
    payout = uow.payouts.get(shop_id, payout_id, for_update=True)
    if payout is None:
        raise PayoutError("not_found", f"no payout #{payout_id}", 404)
    return payout


def approve(
    uow_factory: UnitOfWorkFactory,
    jobs: JobQueue,
    shop_domain: str,
    payout_ids: Sequence[int],
    actor: str,
) -> list[Payout]:
    """The merchant approves payouts awaiting approval (all or nothing). Shopify forms are
    queued for fulfilment; cash waits for the batch file and "mark paid"."""
    with uow_factory() as uow:
        shop_id, _ = _shop_id(uow, shop_domain)
        moved = [
            _move(uow, _locked(uow, shop_id, pid), PayoutState.APPROVED, actor, "approved")
            for pid in sorted(set(payout_ids))
        ]
        for p in moved:
            if p.form in SHOPIFY_FORMS:
                uow.after_commit(
                    lambda pid=p.id: jobs.enqueue(  # type: ignore[misc]
                        Job.FULFIL_PAYOUT, shop_domain, pid, job_id=_job_id(shop_domain, pid)
                    )
                )
        uow.commit()
    return moved


def cancel(
    uow_factory: UnitOfWorkFactory, shop_domain: str, payout_id: int, actor: str, reason: str
) -> Payout:
    """Reject an unapproved payout, withdraw an approved one not yet being fulfilled, or release
    a failed one: its amount returns to the ambassador's balance."""
    with uow_factory() as uow:
        shop_id, _ = _shop_id(uow, shop_domain)
        payout = _locked(uow, shop_id, payout_id)
        if payout.state is PayoutState.FAILED and not _surely_undelivered(
            payout, uow.payouts.events(shop_id, payout.id)
        ):
            raise PayoutError(
                "maybe_delivered",
                f"payout #{payout.id} failed after an attempt whose outcome in Shopify is "
                "unknown (a timeout, a crash, a retry): replay it — the next attempt looks in "
                "Shopify before creating anything — instead of releasing the money twice",
            )
        moved = _move(uow, payout, PayoutState.CANCELLED, actor, reason, lease_until=None)
        _release(uow, moved, reason)
        uow.commit()
    return moved


#: Failures that say for certain nothing was created (checks before any call, Shopify's refusal),
#: provided no attempt before ended uncertain (see :func:`_surely_undelivered`).
_DEFINITE = frozenset(
    {
        "currency_mismatch",
        "ambassador_gone",
        "no_customer_account",
        "missing_scope",
        "customer_not_found",
        "owner_not_found",
        "account_not_found",
        "unsupported_currency",
        "mismatching_currency",
        "invalid",
        "taken",
    }
)


def _surely_undelivered(payout: Payout, history: Sequence[PayoutEvent]) -> bool:
    """Nothing of this failed payout can be in Shopify: its last failure is a definite refusal
    and no attempt ever ended without an answer (a retryable error, or a worker that died —
    its lease expired). Otherwise only a replay, which looks before it creates, can tell."""
    uncertain = any((e.reason or "").startswith(("retry:", "lease expired")) for e in history)
    return not uncertain and (payout.error_code or "") in _DEFINITE


def replay(
    uow_factory: UnitOfWorkFactory, jobs: JobQueue, shop_domain: str, payout_id: int, actor: str
) -> Payout:
    """Send a failed payout back for fulfilment (after the merchant fixed the cause). Its
    earlier attempts are remembered, so the next one looks before it creates."""
    with uow_factory() as uow:
        shop_id, _ = _shop_id(uow, shop_domain)
        payout = _locked(uow, shop_id, payout_id)
        moved = _move(
            uow,
            payout,
            PayoutState.APPROVED,
            actor,
            "replayed",
            attempts=0,
            retry_at=None,
            error=None,
            error_code=None,
        )
        if moved.form in SHOPIFY_FORMS:
            uow.after_commit(
                lambda: jobs.enqueue(
                    Job.FULFIL_PAYOUT,
                    shop_domain,
                    payout_id,
                    job_id=_job_id(shop_domain, payout_id),
                )
            )
        uow.commit()
    return moved


# --- fulfilment ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FulfilmentContext:
    uow: UnitOfWorkFactory
    rewards: RewardPlatform
    access_token: Callable[[str], str]
    clock: Clock
    secret: bytes  # derives reward codes (see connector.domain.payouts.reward_code)
    failpoints: frozenset[str] = frozenset()


def fulfil_payout(ctx: FulfilmentContext, shop_domain: str, payout_id: int) -> str:
    """Deliver one approved Shopify-form payout, exactly once. Returns what happened:
    ``fulfilled``, ``found`` (an earlier attempt had created it), ``retry``, ``failed``,
    ``busy`` (another attempt holds it), or ``skipped:<state>``."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        shop_id, shop_currency = _shop_id(uow, shop_domain)
        payout = _locked(uow, shop_id, payout_id)
        if payout.form not in SHOPIFY_FORMS:
            return f"skipped:{payout.form.value}"
        lease_over = payout.lease_until is None or payout.lease_until <= now
        if payout.state is PayoutState.FULFILLING and not lease_over:
            return "busy"
        due = payout.retry_at is None or payout.retry_at <= now
        if not (
            (payout.state is PayoutState.APPROVED and due)
            or (payout.state is PayoutState.FULFILLING and lease_over)
        ):
            return f"skipped:{payout.state.value}"
        # One Shopify payout per ambassador at a time: a store-credit lookup tells credits
        # apart by value and time only.
        others = uow.payouts.search(
            shop_id, states=[PayoutState.FULFILLING], ambassador_id=payout.ambassador_id
        )
        if any(o.id != payout.id and o.lease_until and o.lease_until > now for o in others):
            return "busy"
        ambassador = uow.ambassadors.get(shop_id, payout.ambassador_id)
        problem = _permanent_problem(payout, ambassador, shop_currency)
        if problem is not None:
            error_code, message = problem
            _park(uow, payout, error_code, message)
            uow.commit()
            return "failed"
        assert ambassador is not None and ambassador.customer_id is not None
        settings = uow.program.settings(shop_id).payouts
        taken = (
            uow.payouts.recorded_externals(
                shop_id, RewardForm.STORE_CREDIT, payout.ambassador_id
            )
            if payout.form is RewardForm.STORE_CREDIT and payout.first_attempt_at is not None
            else set()  # only a retry looks up what an earlier attempt may have created
        )
        since = payout.first_attempt_at  # set: an earlier attempt may have reached Shopify
        code = payout.reward_code
        if payout.form in (RewardForm.DISCOUNT_CODE, RewardForm.FREE_PRODUCT) and code is None:
            code = reward_code(ctx.secret, payout.idempotency_key)
        if payout.state is PayoutState.FULFILLING:  # its worker died: take it over
            payout = _move(uow, payout, PayoutState.APPROVED, "worker", "lease expired")
        claimed = _move(
            uow,
            payout,
            PayoutState.FULFILLING,
            "worker",
            f"attempt {payout.attempts + 1}",
            attempts=payout.attempts + 1,
            first_attempt_at=payout.first_attempt_at or now,
            lease_until=now + LEASE,
            retry_at=None,
            reward_code=code,
        )
        uow.commit()
    _fail_at("payout.claimed", ctx.failpoints)
    try:
        issued = _issue(ctx, shop_domain, claimed, ambassador, settings, since, taken)
    except RewardRefused as exc:
        return _after_failure(ctx, shop_id, claimed, exc.code, str(exc), permanent=True)
    except PlatformThrottled as exc:  # refused before it ran: the worker goes on to other shops
        return _throttled(ctx, shop_id, claimed, exc.retry_in)
    except PlatformUnauthorized as exc:  # a token refresh or a reinstall may fix it
        return _after_failure(ctx, shop_id, claimed, "unauthorized", str(exc), permanent=False)
    except PlatformError as exc:
        # Throttling, 5xx, timeouts: retry with backoff. A document Shopify refuses will be
        # refused again: park it for a person.
        code = "platform_error" if exc.retryable else "rejected_request"
        return _after_failure(ctx, shop_id, claimed, code, str(exc), permanent=not exc.retryable)
    _fail_at("payout.issued", ctx.failpoints)
    with ctx.uow() as uow:
        current = _locked(uow, shop_id, payout_id)
        if current.state is PayoutState.FULFILLED:
            return "found"  # a takeover finished first; it found the same reward
        if current.state is not PayoutState.FULFILLING:
            # Only a fulfilling payout can be delivered; anything else here is a bug to see.
            log.error(
                "payout.unexpected_state", extra={"payout": payout_id, "state": current.state}
            )
            return f"skipped:{current.state.value}"
        _move(
            uow,
            current,
            PayoutState.FULFILLED,
            "worker",
            "found in Shopify (an earlier attempt created it)" if issued.found_existing else None,
            external_id=issued.external_id,
            external_hint=issued.hint,
            fulfilled_at=ctx.clock.now(),
            lease_until=None,
            error=None,
            error_code=None,
        )
        uow.ledger.refresh_stats(shop_id, current.ambassador_id, current.currency)
        _notify(uow, shop_id, current, ambassador, issued)
        uow.commit()
    _fail_at("payout.recorded", ctx.failpoints)
    return "found" if issued.found_existing else "fulfilled"


def _permanent_problem(
    payout: Payout, ambassador: Ambassador | None, shop_currency: str
) -> tuple[str, str] | None:
    if payout.currency != shop_currency:
        return (
            "currency_mismatch",
            f"the payout is in {payout.currency} but the store now sells in {shop_currency}",
        )
    if ambassador is None:
        return "ambassador_gone", "the ambassador no longer exists"
    if ambassador.customer_id is None:
        return (
            "no_customer_account",
            "the ambassador has no customer account in the store (gift cards, store credit "
            "and codes are tied to one); link one or choose cash",
        )
    return None


def _issue(
    ctx: FulfilmentContext,
    shop_domain: str,
    payout: Payout,
    ambassador: Ambassador,
    settings: PayoutSettings,
    since: datetime | None,
    taken: set[str],
) -> IssuedReward:
    token = ctx.access_token(shop_domain)
    customer_id = ambassador.customer_id
    assert customer_id is not None
    value = Money(payout.value, payout.currency)
    key = payout.idempotency_key
    if payout.form is RewardForm.GIFT_CARD:
        return ctx.rewards.issue_gift_card(
            shop_domain,
            token,
            key=key,
            customer_id=customer_id,
            value=value,
            message="Thank you for being an ambassador!",
            since=since,
        )
    if payout.form is RewardForm.STORE_CREDIT:
        return ctx.rewards.issue_store_credit(
            shop_domain,
            token,
            key=key,
            customer_id=customer_id,
            value=value,
            since=since,
            taken=taken,
        )
    assert payout.reward_code is not None
    product = settings.free_product_id if payout.form is RewardForm.FREE_PRODUCT else None
    return ctx.rewards.issue_code(
        shop_domain,
        token,
        key=key,
        code=payout.reward_code,
        customer_id=customer_id,
        value=None if product else value,
        product_id=product,
        title=f"Ambassador reward #{payout.id}",
        since=since,
    )


def _park(uow: UnitOfWork, payout: Payout, code: str, message: str) -> Payout:
    target = payout
    if payout.state is PayoutState.APPROVED:
        target = _move(uow, payout, PayoutState.FULFILLING, "worker", "checked")
    return _move(
        uow,
        target,
        PayoutState.FAILED,
        "worker",
        f"{code}: {message}",
        error_code=code,
        error=message,
        lease_until=None,
        retry_at=None,
    )


def _recipients(uow: UnitOfWork, shop_id: int, ids: list[int]) -> dict[int, tuple[str, str]]:
    """Per ambassador of the shop: (email, full name)."""
    return {
        a: (email, f"{first} {last}".strip())
        for a, (first, last, email) in uow.ambassadors.names(shop_id, ids).items()
    }


def _throttled(ctx: FulfilmentContext, shop_id: int, claimed: Payout, retry_in: float) -> str:
    """The shop's rate limit needed longer than the job may wait. Shopify did not run the call
    (a pacing wait, or a THROTTLED/429 answer: never executed), so this attempt is certain to
    have delivered nothing: back to approved for when the bucket has refilled, recorded as
    "throttled", not as an uncertain "retry" (which would forbid releasing the money)."""
    with ctx.uow() as uow:
        current = _locked(uow, shop_id, claimed.id)
        if current.state is not PayoutState.FULFILLING or current.attempts != claimed.attempts:
            return "busy"  # a later attempt owns it now
        _move(
            uow,
            current,
            PayoutState.APPROVED,
            "worker",
            f"throttled: Shopify's rate limit; again in {retry_in:.0f} s",
            retry_at=ctx.clock.now() + timedelta(seconds=max(retry_in, 1.0)),
            lease_until=None,
        )
        uow.commit()
    log.info("payout.throttled", extra={"payout": claimed.id, "retry_in": round(retry_in, 1)})
    return "throttled"


def _after_failure(
    ctx: FulfilmentContext,
    shop_id: int,
    claimed: Payout,
    code: str,
    message: str,
    *,
    permanent: bool,
) -> str:
    with ctx.uow() as uow:
        current = _locked(uow, shop_id, claimed.id)
        if current.state is not PayoutState.FULFILLING or current.attempts != claimed.attempts:
            return "busy"  # a later attempt owns it now
        if permanent or current.attempts >= MAX_ATTEMPTS:
            if not permanent:
                code, message = "gave_up", f"{current.attempts} attempts failed; last: {message}"
            _move(
                uow,
                current,
                PayoutState.FAILED,
                "worker",
                f"{code}: {message}",
                error_code=code,
                error=message,
                lease_until=None,
            )
            outcome = "failed"
        else:
            _move(
                uow,
                current,
                PayoutState.APPROVED,
                "worker",
                f"retry: {message}",
                retry_at=ctx.clock.now() + retry_delay(current.attempts),
                error_code=code,
                error=message,
                lease_until=None,
            )
            outcome = "retry"
        uow.commit()
    log.warning("payout.%s", outcome, extra={"payout": claimed.id, "error_code": code})
    return outcome


def _notify(
    uow: UnitOfWork, shop_id: int, payout: Payout, ambassador: Ambassador, issued: IssuedReward
) -> None:
    what = {
        RewardForm.GIFT_CARD: "a gift card (Shopify emails you its code)",
        RewardForm.STORE_CREDIT: "store credit on your account",
        RewardForm.DISCOUNT_CODE: f"the single-use code {issued.hint}",
        RewardForm.FREE_PRODUCT: f"the code {issued.hint} for a free product",
    }.get(payout.form, payout.form.value)
    uow.notifications.add(
        shop_id,
        f"payout-fulfilled:{payout.id}",
        ambassador.email,
        "Your ambassador reward is here",
        f"Hi {ambassador.first_name or 'there'},\n\nYour reward of {payout.value} "
        f"{payout.currency} was sent as {what}.\n\nThank you!",
    )


def fulfil_due(uow_factory: UnitOfWorkFactory, jobs: JobQueue, clock: Clock) -> int:
    """The sweeper: queue every payout due for a (re)try and every one whose worker died."""
    with uow_factory() as uow:
        due = uow.payouts.due(clock.now())
        domains = uow.payouts.shop_domains({s for s, _ in due})
    for shop_id, payout_id in due:
        domain = domains.get(shop_id)
        if domain:
            jobs.enqueue(Job.FULFIL_PAYOUT, domain, payout_id, job_id=_job_id(domain, payout_id))
    return len(due)


# --- cash batches ----------------------------------------------------------------------------


def approve_batch(
    uow_factory: UnitOfWorkFactory,
    jobs: JobQueue,
    clock: Clock,
    shop_domain: str,
    batch_id: int,
    actor: str,
) -> PayoutBatch:
    """Approve every payout of a batch still awaiting approval (idempotent)."""
    with uow_factory() as uow:
        shop_id, _ = _shop_id(uow, shop_domain)
        batch = uow.payouts.batch(shop_id, batch_id)
        if batch is None:
            raise PayoutError("not_found", f"no payout batch #{batch_id}", 404)
        waiting = [
            p.id
            for p in uow.payouts.search(
                shop_id, batch_id=batch_id, states=[PayoutState.AWAITING_APPROVAL], limit=100_000
            )
        ]
        if batch.approved_at is None:
            batch = replace(batch, approved_at=clock.now(), approved_by=actor)
            uow.payouts.update_batch(batch)
            uow.commit()
    if waiting:
        approve(uow_factory, jobs, shop_domain, waiting, actor)
    return batch


def cash_file(
    uow_factory: UnitOfWorkFactory, clock: Clock, shop_domain: str, batch_id: int, style: str
) -> tuple[str, list[list[str]]]:
    """The batch's approved cash payouts as a PayPal Payouts file or a bank sheet: each payout
    once, the same lines however often it is exported. Returns (currency, rows)."""
    with uow_factory() as uow:
        shop_id, currency = _shop_id(uow, shop_domain)
        batch = uow.payouts.batch(shop_id, batch_id)
        if batch is None:
            raise PayoutError("not_found", f"no payout batch #{batch_id}", 404)
        cash = [
            p
            for p in uow.payouts.search(shop_id, batch_id=batch_id, limit=100_000)
            if p.form is RewardForm.CASH
            and p.state in (PayoutState.APPROVED, PayoutState.FULFILLED)
        ]
        if not cash:
            raise PayoutError("nothing_to_export", "no approved cash payouts in this batch")
        people = _recipients(uow, shop_id, [p.ambassador_id for p in cash])
        names = {a: name for a, (_, name) in people.items()}
        lines = [
            CashLine(
                payout_id=p.id,
                email=spreadsheet_safe(p.recipient_email or ""),
                name=spreadsheet_safe(names.get(p.ambassador_id, "")),
                amount=Money(p.value, p.currency),
            )
            for p in sorted(cash, key=lambda p: p.id)
        ]
        if batch.exported_at is None:
            uow.payouts.update_batch(replace(batch, exported_at=clock.now()))
            uow.commit()
    if style == "paypal":
        return currency, paypal_rows(lines, "Your ambassador commission. Thank you!")
    if style == "bank":
        return currency, bank_rows(lines)
    raise PayoutError("bad_format", "format must be paypal or bank", 400)


def mark_batch_paid(
    uow_factory: UnitOfWorkFactory, clock: Clock, shop_domain: str, batch_id: int, actor: str
) -> int:
    """The merchant says the batch's cash was sent: its approved cash payouts become fulfilled
    (idempotent: a second call changes nothing). Returns how many changed."""
    with uow_factory() as uow:
        shop_id, _ = _shop_id(uow, shop_domain)
        batch = uow.payouts.batch(shop_id, batch_id)
        if batch is None:
            raise PayoutError("not_found", f"no payout batch #{batch_id}", 404)
        if batch.exported_at is None:
            raise PayoutError("not_exported", "export the payout file before marking it paid")
        now = clock.now()
        changed = 0
        for p in uow.payouts.search(
            shop_id, batch_id=batch_id, states=[PayoutState.APPROVED], limit=100_000
        ):
            if p.form is not RewardForm.CASH:
                continue
            locked = _locked(uow, shop_id, p.id)
            _move(uow, locked, PayoutState.FULFILLED, actor, "paid (cash)", fulfilled_at=now)
            uow.ledger.refresh_stats(shop_id, p.ambassador_id, p.currency)
            changed += 1
        if batch.paid_at is None:
            uow.payouts.update_batch(replace(batch, paid_at=now))
        uow.commit()
    return changed


# --- the ambassador's side --------------------------------------------------------------------


def set_preference(
    uow_factory: UnitOfWorkFactory,
    shop_domain: str,
    ambassador_id: int,
    form: str,
    paypal_email: str | None,
) -> PayoutPreference:
    try:
        chosen = RewardForm(form)
    except ValueError:
        raise PayoutError(
            "bad_form", f"form must be one of {', '.join(f.value for f in RewardForm)}", 400
        ) from None
    with uow_factory() as uow:
        shop_id, _ = _shop_id(uow, shop_domain)
        if uow.ambassadors.get(shop_id, ambassador_id) is None:
            raise PayoutError("not_found", f"no ambassador #{ambassador_id}", 404)
        settings = uow.program.settings(shop_id).payouts
        if not settings.allows(chosen):
            raise PayoutError("form_not_offered", f"this program does not pay in {form}", 422)
        email = (paypal_email or "").strip() or None
        if email is not None and ("@" not in email or len(email) > 254 or email[:1] in "=+-@"):
            raise PayoutError("bad_email", "paypal_email must be an email address", 400)
        preference = PayoutPreference(ambassador_id, chosen, email)
        uow.payouts.save_preference(shop_id, preference)
        uow.commit()
    return preference


def redeem(
    uow_factory: UnitOfWorkFactory,
    jobs: JobQueue,
    shop_domain: str,
    ambassador_id: int,
    form: str,
    redeem_points: int,
    actor: str,
) -> Payout:
    """Turn points into a reward of another form now (the points program's redemption)."""
    try:
        chosen = RewardForm(form)
    except ValueError:
        raise PayoutError("bad_form", "unknown form", 400) from None
    if chosen is RewardForm.POINTS:
        raise PayoutError("bad_form", "points are redeemed for another form", 400)
    if redeem_points <= 0:
        raise PayoutError("bad_points", "points must be a positive whole number", 400)
    with uow_factory() as uow:
        shop_id, shop_currency = _shop_id(uow, shop_domain)
        currency = _ledger_currencies(uow, shop_id, [ambassador_id], shop_currency)[ambassador_id]
        settings = uow.program.settings(shop_id).payouts
        if not (settings.allows(RewardForm.POINTS) and settings.allows(chosen)):
            raise PayoutError("form_not_offered", f"this program does not redeem for {form}", 422)
        if not uow.payouts.lock_ambassador(shop_id, ambassador_id):
            raise PayoutError("not_found", f"no ambassador #{ambassador_id}", 404)
        ambassador = uow.ambassadors.get(shop_id, ambassador_id)
        assert ambassador is not None
        payable = Money(
            uow.payouts.payable(shop_id, [ambassador_id]).get(ambassador_id, Decimal(0)), currency
        )
        requested = points_to_money(redeem_points, currency, settings)
        plan = plan_payout(ambassador_id, payable, chosen, settings, requested=requested)
        if plan is None:
            raise PayoutError(
                "insufficient_points",
                f"{redeem_points} points asked, {points(payable, settings)} available",
                422,
            )
        preference = uow.payouts.preference(shop_id, ambassador_id)
        created = _reserve(
            uow,
            shop_id,
            NewPayout(
                ambassador_id=ambassador_id,
                batch_id=None,
                form=chosen,
                state=_initial_state(settings, chosen),
                amount=plan.amount.amount,
                value=plan.value.amount,
                currency=currency,
                recipient_email=(preference.paypal_email if preference else None)
                or ambassador.email,
            ),
            actor,
            f"redeemed {redeem_points} points",
        )
        if created.state is PayoutState.APPROVED and chosen in SHOPIFY_FORMS:
            uow.after_commit(
                lambda: jobs.enqueue(
                    Job.FULFIL_PAYOUT,
                    shop_domain,
                    created.id,
                    job_id=_job_id(shop_domain, created.id),
                )
            )
        uow.commit()
    return created


@dataclass(frozen=True)
class RewardsView:
    """What an ambassador sees: pending (with when each part unlocks), payable now, points,
    the next payout date, and what was paid in which form."""

    currency: str
    pending: Decimal
    unlocks: list[tuple[datetime, Decimal]]
    payable: Decimal
    points: int | None
    form: RewardForm
    choosable: list[RewardForm]
    next_payout_at: datetime | None
    minimum: Decimal
    payouts: list[Payout]


def rewards_view(
    uow_factory: UnitOfWorkFactory, clock: Clock, shop_domain: str, ambassador_id: int
) -> RewardsView:
    with uow_factory() as uow:
        shop_id, shop_currency = _shop_id(uow, shop_domain)
        if uow.ambassadors.get(shop_id, ambassador_id) is None:
            raise PayoutError("not_found", f"no ambassador #{ambassador_id}", 404)
        currency = _ledger_currencies(uow, shop_id, [ambassador_id], shop_currency)[ambassador_id]
        settings = uow.program.settings(shop_id).payouts
        unlocks = uow.payouts.unlocks(shop_id, ambassador_id)
        payable = uow.payouts.payable(shop_id, [ambassador_id]).get(ambassador_id, Decimal(0))
        preference = uow.payouts.preference(shop_id, ambassador_id)
        form = _form_for(settings, preference)
        history = uow.payouts.search(shop_id, ambassador_id=ambassador_id, limit=100)
    choosable = [settings.form, *[f for f in settings.choosable_forms if f != settings.form]]
    return RewardsView(
        currency=currency,
        pending=sum((amount for _, amount in unlocks), Decimal(0)),
        unlocks=unlocks,
        payable=payable,
        points=points(Money(payable, currency), settings) if form is RewardForm.POINTS else None,
        form=form,
        choosable=choosable,
        next_payout_at=None
        if settings.schedule is PayoutSchedule.MANUAL
        else next_run(settings.schedule, clock.now()),
        minimum=settings.minimum,
        payouts=history,
    )


# --- the merchant's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """What the program owes, by form: reserved in payouts not yet delivered, and payable not
    yet in a payout (by each ambassador's form); in hold; delivered; and failures to look at."""

    currency: str
    in_flight: dict[str, Decimal]
    payable_unreserved: dict[str, Decimal]
    pending_hold: Decimal
    delivered: dict[str, Decimal]
    failed: int
    awaiting_approval: int


def budget(uow_factory: UnitOfWorkFactory, shop_domain: str) -> Budget:
    with uow_factory() as uow:
        shop_id, currency = _shop_id(uow, shop_domain)
        settings = uow.program.settings(shop_id).payouts
        totals = uow.payouts.totals_by_form(shop_id)
        payable = uow.payouts.payable(shop_id)
        preferences = uow.payouts.preferences(shop_id)
        pending = uow.payouts.pending_total(shop_id)
    in_flight: dict[str, Decimal] = {}
    delivered: dict[str, Decimal] = {}
    failed = awaiting = 0
    for (form, state), (amount, count) in totals.items():
        st = PayoutState(state)
        if st in IN_FLIGHT:
            in_flight[form] = in_flight.get(form, Decimal(0)) + amount
        if st is PayoutState.FULFILLED:
            delivered[form] = delivered.get(form, Decimal(0)) + amount
        failed += count if st is PayoutState.FAILED else 0
        awaiting += count if st is PayoutState.AWAITING_APPROVAL else 0
    unreserved: dict[str, Decimal] = {}
    for ambassador_id, amount in payable.items():
        if amount > 0:
            form = _form_for(settings, preferences.get(ambassador_id)).value
            unreserved[form] = unreserved.get(form, Decimal(0)) + amount
    return Budget(currency, in_flight, unreserved, pending, delivered, failed, awaiting)
