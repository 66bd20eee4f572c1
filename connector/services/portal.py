"""The ambassador portal on the storefront: who is asking, the magic-link login for ambassadors
who are not customers, and everything their page shows (only their own data).

Magic links: 32 bytes from the CSPRNG, only their SHA-256 kept, valid for
:data:`LOGIN_TTL`, single use (consumed by one atomic UPDATE), at most
:data:`LOGIN_PER_WINDOW` per ambassador per :data:`LOGIN_TTL`. Asking for a link answers the
same whether or not the address belongs to an ambassador (no way to probe who is one).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from connector.domain.ambassadors import Ambassador, AmbassadorStatus, normalise_email
from connector.domain.challenges import ChallengeStatus, awards, mask_name, rank
from connector.domain.engagement import ADVICE, Band, Component, Score
from connector.domain.money import Money
from connector.domain.shops import Shop
from connector.domain.tiers import Results, Tier
from connector.ports import Clock, IdGenerator, Job, JobQueue, UnitOfWork

log = logging.getLogger(__name__)

LOGIN_TTL = timedelta(minutes=15)
LOGIN_PER_WINDOW = 3
LEADERBOARD_ROWS = 10


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def by_customer(uow: UnitOfWork, shop: Shop, customer_id: int) -> Ambassador | None:
    assert shop.id is not None
    with uow:
        found = uow.ambassadors.by_customer(shop.id, customer_id)
    return found if found is not None and found.status is AmbassadorStatus.ACTIVE else None


def by_id(uow: UnitOfWork, shop: Shop, ambassador_id: int) -> Ambassador | None:
    assert shop.id is not None
    with uow:
        found = uow.ambassadors.get(shop.id, ambassador_id)
    return found if found is not None and found.status is AmbassadorStatus.ACTIVE else None


def request_login(
    uow: UnitOfWork,
    jobs: JobQueue,
    ids: IdGenerator,
    clock: Clock,
    shop: Shop,
    email: Any,
    link: str,
) -> None:
    """Email a sign-in link (``link`` + the token) to an active ambassador with this address,
    through the notification outbox. Silent otherwise (bad address, no such ambassador, too
    many links asked for)."""
    assert shop.id is not None
    try:
        address = normalise_email(str(email or ""))
    except ValueError:
        return
    if "\x00" in address:
        return
    now = clock.now()
    with uow:
        ambassador = uow.ambassadors.by_email(shop.id, address)
        if ambassador is None or ambassador.status is not AmbassadorStatus.ACTIVE:
            log.info("portal.login.unknown", extra={"shop": shop.domain})
            return
        assert ambassador.id is not None
        recent = uow.engagement.recent_login_tokens(shop.id, ambassador.id, now - LOGIN_TTL)
        if recent >= LOGIN_PER_WINDOW:
            log.info("portal.login.rate_limited", extra={"shop": shop.domain})
            return
        token = ids.token(32)
        digest = token_hash(token)
        uow.engagement.add_login_token(shop.id, ambassador.id, digest, now + LOGIN_TTL)
        uow.notifications.add(
            shop.id,
            f"portal-login:{digest[:32]}",
            ambassador.email,
            f"Your sign-in link for {shop.name or shop.domain}",
            f"Hello {ambassador.first_name or 'there'},\n\n"
            f"Open this link within {int(LOGIN_TTL.total_seconds() // 60)} minutes to see your "
            f"ambassador page (it works once):\n\n{link}{quote(token)}\n\n"
            "If you did not ask for it, ignore this message.",
        )
        uow.after_commit(lambda: _wake(jobs))
        uow.commit()


def _wake(jobs: JobQueue) -> None:
    try:
        jobs.trigger(Job.SEND_NOTIFICATIONS)
    except Exception:  # noqa: BLE001 - the scheduled run sends it a little later
        log.warning("notifications.trigger_failed")


def redeem_login(uow: UnitOfWork, clock: Clock, shop: Shop, token: str) -> int | None:
    """The ambassador id of a valid, unused link of this shop (now used), else None."""
    if not token or len(token) > 200:
        return None
    with uow:
        found = uow.engagement.use_login_token(token_hash(token), clock.now())
        uow.commit()
    if found is None or found[0] != shop.id:
        return None
    return found[1]


@dataclass(frozen=True)
class TierProgress:
    current: str | None
    next: str | None
    missing: list[str]


def tier_progress(tiers: list[Tier], current_id: int | None, results: Results,
                  currency: str) -> TierProgress:
    """The next tier above the current one and what is still missing to reach it."""
    ordered = sorted(tiers, key=lambda t: t.position)
    current = next((t for t in ordered if t.id == current_id), None)
    above = [t for t in ordered if current is None or t.position > current.position]
    nxt = next((t for t in above if not t.met_by(results)), None) if above else None
    missing = []
    if nxt is not None:
        if nxt.min_revenue is not None and results.revenue < nxt.min_revenue:
            gap = Money(nxt.min_revenue - results.revenue, currency).rounded().as_string()
            missing.append(f"{gap} {currency} more revenue")
        if nxt.min_orders is not None and results.orders < nxt.min_orders:
            missing.append(f"{nxt.min_orders - results.orders} more orders")
        if nxt.min_new_customers is not None and results.new_customers < nxt.min_new_customers:
            missing.append(f"{nxt.min_new_customers - results.new_customers} more new customers")
    return TierProgress(current.name if current else None, nxt.name if nxt else None, missing)


def dashboard(uow: UnitOfWork, clock: Clock, shop: Shop, ambassador: Ambassador) -> dict[str, Any]:
    """What the ambassador's own page shows. Records the visit (engagement)."""
    assert shop.id is not None and ambassador.id is not None
    shop_id, aid = shop.id, ambassador.id
    now = clock.now()
    currency = shop.currency or "USD"
    with uow:
        uow.engagement.record(shop_id, aid, "portal_visit", "", now)
        settings = uow.program.settings(shop_id)
        totals = uow.ledger.totals(shop_id, [aid]).get(aid)
        unlock = uow.engagement.next_unlock(shop_id, aid)
        tiers = uow.program.tiers(shop_id)
        window = now - timedelta(days=settings.tier_window_days)
        results = uow.ledger.results_since(shop_id, window).get(aid, Results())
        score = uow.engagement.scores(shop_id, [aid]).get(aid)
        joined = uow.challenges.joined(shop_id, aid)
        open_challenges = [
            c
            for c in uow.challenges.search(shop_id, status=ChallengeStatus.OPEN.value)
            if c.state(now) in ("upcoming", "running")
        ]
        boards = []
        for c in open_challenges[:5]:
            ranked = awards(c, rank(uow.challenges.standings(c)))[:LEADERBOARD_ROWS]
            rows = []
            for s in ranked:
                other = uow.ambassadors.get(shop_id, s.ambassador_id)
                name = (
                    mask_name(other.first_name, other.last_name, s.ambassador_id)
                    if other
                    else f"Ambassador #{s.ambassador_id}"
                )
                rows.append({"rank": s.rank, "name": name, "value": str(s.value),
                             "you": s.ambassador_id == aid})
            boards.append({"challenge": c, "joined": c.id in joined, "rows": rows})
        resources = uow.content.resources(shop_id)
        submissions = uow.content.submissions(shop_id, ambassador_id=aid, limit=20)
        acknowledged = uow.engagement.first_event(shop_id, aid, "disclosure_ack")
        uow.commit()

    def fmt(amount: Decimal) -> str:
        return Money(amount, currency).rounded().as_string()

    zero = Decimal(0)
    explanation = None
    if score is not None:
        explanation = Score(
            score.score, Band(score.band), tuple(Component.from_dict(x) for x in score.components)
        )
    return {
        "ambassador": ambassador,
        "code": ambassador.code,
        "share_url": f"https://{shop.domain}/discount/{quote(ambassador.code, safe='')}"
        "?redirect=%2F"
        if ambassador.code
        else None,
        "currency": currency,
        "orders": totals.attributed_orders if totals else 0,
        "revenue": fmt(totals.attributed_revenue if totals else zero),
        "rewards": {
            "pending": fmt(totals.pending if totals else zero),
            "approved": fmt(totals.approved if totals else zero),
            "paid": fmt(totals.paid if totals else zero),
        },
        "unlock": unlock,
        "tier": tier_progress(tiers, ambassador.tier_id, results, currency),
        "score": str(score.score) if score else "0.0",
        "band": score.band if score else "not engaged",
        "how_to_rise": explanation.advice()
        if explanation
        else [ADVICE["recency"]],
        "boards": boards,
        "resources": resources,
        "submissions": submissions,
        "disclosure_text": settings.disclosure_text,
        "acknowledged_at": acknowledged,
        "now": now,
    }


def friendly_date(day: datetime) -> str:
    return f"{day:%B} {day.day}, {day.year}"
