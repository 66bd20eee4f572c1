"""Engagement scoring: the scheduled recomputation, the program summary, one ambassador's
explanation, and the activity (portal visits, downloads) that feeds it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from connector.domain import engagement as scoring
from connector.domain.engagement import Activity, BandCounts, Component
from connector.domain.shops import Shop
from connector.ports import Clock, UnitOfWork, UnitOfWorkFactory
from connector.services.ambassadors import NotFound

log = logging.getLogger(__name__)

#: Ambassadors scored per transaction (the reads are per batch; a big shop stays responsive).
BATCH = 1000

EVENT_KINDS = ("portal_visit", "resource_download", "disclosure_ack")


@dataclass
class ScoringReport:
    shop: str
    scored: int = 0
    counts: BandCounts = field(default_factory=BandCounts)


def score_shop(uow_factory: UnitOfWorkFactory, clock: Clock, shop_domain: str) -> ScoringReport:
    """Recompute every scorable ambassador's score, drop scores of people no longer scored,
    and store today's band counts (shares over time). Idempotent; safe to run any time."""
    report = ScoringReport(shop_domain)
    now = clock.now()
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
        if shop is None or not shop.installed or shop.id is None:
            return report
        shop_id = shop.id
        settings = uow.program.settings(shop_id).engagement
        ids = uow.engagement.scorable(shop_id)
        since = now - timedelta(days=settings.window_days)
        # One grouped read each for the whole shop; only the statistics rows go by batch.
        results = uow.ledger.results_since(shop_id, since)
        activity = uow.engagement.activity(shop_id, since)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        with uow_factory() as uow:
            totals = uow.ledger.totals(shop_id, batch)
            scores = []
            for aid in batch:
                r = results.get(aid)
                t = totals.get(aid)
                a = activity.get(aid)
                last = t.last_referral_at if t else None
                days = max((now - last).days, 0) if last is not None and last >= since else None
                scores.append(
                    (
                        aid,
                        scoring.score(
                            Activity(
                                days_since_referral=days,
                                orders=r.orders if r else 0,
                                revenue=r.revenue if r else Decimal(0),
                                new_customers=r.new_customers if r else 0,
                                content_submitted=a.content_submitted if a else 0,
                                content_approved=a.content_approved if a else 0,
                                challenges=a.challenges if a else 0,
                                portal_visits=a.portal_visits if a else 0,
                            ),
                            settings,
                        ),
                    )
                )
            uow.engagement.save_scores(shop_id, scores)
            uow.commit()
        report.scored += len(batch)
    with uow_factory() as uow:
        uow.engagement.drop_unscored(shop_id, ids)
        report.counts = uow.engagement.band_counts(shop_id)
        uow.engagement.save_snapshot(shop_id, now.date(), report.counts)
        uow.commit()
    log.info(
        "engagement.scored",
        extra={"shop": shop_domain, "scored": report.scored, **report.counts.counts()},
    )
    return report


def summary(uow: UnitOfWork, clock: Clock, shop: Shop, days: int = 90) -> dict[str, Any]:
    """Counts and shares per band now, the daily shares over ``days``, weights and thresholds."""
    assert shop.id is not None
    today = clock.now().date()
    with uow:
        settings = uow.program.settings(shop.id).engagement
        counts = uow.engagement.band_counts(shop.id)
        history = uow.engagement.snapshots(shop.id, today - timedelta(days=days))
        last = max((s.computed_at for s in uow.engagement.scores(shop.id).values()), default=None)
    return {
        "counts": counts.counts(),
        "shares": counts.shares(),
        "scored": counts.total,
        "computed_at": last.isoformat() if last else None,
        "over_time": [
            {"day": day.isoformat(), "counts": c.counts(), "shares": c.shares()}
            for day, c in history
        ],
        "weights": dict(settings.weights),
        "components": [
            {
                "name": n,
                "description": scoring.DESCRIPTIONS[n],
                "weight": settings.weights.get(n, 0),
            }
            for n in scoring.COMPONENTS
        ],
        "thresholds": {
            "marginal": str(settings.marginal_from),
            "engaged": str(settings.engaged_from),
        },
        "window_days": settings.window_days,
    }


def explanation(uow: UnitOfWork, shop: Shop, ambassador_id: int) -> dict[str, Any]:
    """One ambassador's score: each component with its weight, value and points, and what
    would raise it most. Before the first scoring: score 0, ``not engaged``, no components."""
    assert shop.id is not None
    with uow:
        if uow.ambassadors.get(shop.id, ambassador_id) is None:
            raise NotFound("ambassador")
        settings = uow.program.settings(shop.id).engagement
        stored = uow.engagement.scores(shop.id, [ambassador_id]).get(ambassador_id)
    components = [Component.from_dict(c) for c in stored.components] if stored else []
    score = stored.score if stored else Decimal("0.0")
    band = scoring.Band(stored.band) if stored else scoring.Band.NOT_ENGAGED
    result = scoring.Score(score, band, tuple(components))
    return {
        "ambassador_id": ambassador_id,
        "score": float(score),
        "band": band.value,
        "computed_at": stored.computed_at.isoformat() if stored else None,
        "components": [dict(c) for c in stored.components] if stored else [],
        "thresholds": {
            "marginal": str(settings.marginal_from),
            "engaged": str(settings.engaged_from),
        },
        "how_to_rise": result.advice() if stored else [scoring.ADVICE["recency"]],
    }


def engagement_of(uow: UnitOfWork, shop_id: int, ambassador_ids: list[int]) -> dict[int, Any]:
    """{ambassador id: (score, band)} as stored (missing: not scored yet). Call inside ``uow``."""
    return {
        aid: (s.score, s.band) for aid, s in uow.engagement.scores(shop_id, ambassador_ids).items()
    }


def record(
    uow: UnitOfWork, clock: Clock, shop_id: int, ambassador_id: int, kind: str, ref: str = ""
) -> bool:
    """Note a portal visit, a resource download or the disclosure acknowledgement (at most one
    per kind, ref and day). Commits."""
    if kind not in EVENT_KINDS:
        raise ValueError(kind)
    with uow:
        added = uow.engagement.record(shop_id, ambassador_id, kind, ref, clock.now())
        uow.commit()
    return added

