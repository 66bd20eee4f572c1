"""Tier evaluation: promotion and demotion from results over the rolling window, with grace.

Runs on a schedule (every 15 minutes, so a result that changes moves the ambassador soon),
and by hand from the CLI. Each move is audited; manual overrides (``tier_locked``) are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from connector.domain.ambassadors import AmbassadorStatus, AuditEntry
from connector.domain.tiers import Move, Results, decide
from connector.ports import AmbassadorQuery, Clock, UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass
class TierReport:
    evaluated: int = 0
    promoted: int = 0
    demoted: int = 0
    in_grace: int = 0


def results_for(
    uow_factory: UnitOfWorkFactory, clock: Clock
) -> Callable[[int, list[int]], dict[int, Results]]:
    """A results provider for the what-if preview: the program's window, from attributions."""

    def provider(shop_id: int, ambassador_ids: list[int]) -> dict[int, Results]:
        with uow_factory() as uow:
            window = uow.program.settings(shop_id).tier_window_days
            return uow.ledger.results_since(shop_id, clock.now() - timedelta(days=window))

    return provider


def evaluate_tiers(uow_factory: UnitOfWorkFactory, clock: Clock, shop_domain: str) -> TierReport:
    report = TierReport()
    now = clock.now()
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
        if shop is None or shop.id is None:
            return report
        shop_id = shop.id
        settings = uow.program.settings(shop_id)
        tiers = uow.program.tiers(shop_id)
        results = uow.ledger.results_since(shop_id, now - timedelta(days=settings.tier_window_days))
    if not tiers:
        return report
    names = {t.id: t.name for t in tiers}
    grace = timedelta(days=settings.tier_grace_days)
    after: int | None = None
    while True:
        with uow_factory() as uow:
            page = uow.ambassadors.search(
                shop_id,
                AmbassadorQuery(status=AmbassadorStatus.ACTIVE.value, after_id=after, limit=500),
            )
            if not page:
                break
            for a in page:
                assert a.id is not None
                report.evaluated += 1
                decision = decide(
                    tiers,
                    a.tier_id,
                    results.get(a.id, Results()),
                    now,
                    demotion_pending_since=a.demotion_pending_since,
                    grace=grace,
                    locked=a.tier_locked,
                )
                if (decision.tier_id, decision.demotion_pending_since) == (
                    a.tier_id,
                    a.demotion_pending_since,
                ):
                    continue
                uow.ambassadors.save(
                    replace(
                        a,
                        tier_id=decision.tier_id,
                        demotion_pending_since=decision.demotion_pending_since,
                    )
                )
                if decision.move in (Move.UP, Move.DOWN):
                    report.promoted += decision.move is Move.UP
                    report.demoted += decision.move is Move.DOWN
                    uow.ambassadors.audit(
                        shop_id,
                        AuditEntry(
                            a.id,
                            "tier",
                            "system",
                            now,
                            names.get(a.tier_id),
                            names.get(decision.tier_id),
                            "promoted by results"
                            if decision.move is Move.UP
                            else f"below the tier for {settings.tier_grace_days} days",
                        ),
                    )
                elif decision.move is Move.GRACE:
                    report.in_grace += 1
            uow.commit()
            after = page[-1].id
    log.info("program.tiers.evaluated", extra={"shop": shop_domain, **report.__dict__})
    return report
