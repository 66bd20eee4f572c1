"""Challenges and contests: create, join, the live leaderboard, and closing with prizes paid
into the reward ledger (see :mod:`connector.domain.challenges` for the rules)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from connector.domain.ambassadors import AmbassadorStatus
from connector.domain.challenges import (
    Challenge,
    ChallengeInvalid,
    ChallengeStatus,
    Standing,
    awards,
    mask_name,
    parse,
    prize_key,
    rank,
)
from connector.domain.ledger import EntryKind
from connector.domain.money import Money
from connector.domain.shops import Shop
from connector.ports import Clock, LedgerEntry, UnitOfWork, UnitOfWorkFactory
from connector.services.ambassadors import NotFound, ProgramError

log = logging.getLogger(__name__)

#: Rows a leaderboard shows (everyone is ranked; the page shows the top).
LEADERBOARD_SIZE = 100


def create(
    uow: UnitOfWork, clock: Clock, shop: Shop, data: dict[str, Any], actor: str
) -> Challenge:
    assert shop.id is not None
    try:
        parsed = parse(data, clock.now())
    except ChallengeInvalid as exc:
        raise ProgramError("invalid_challenge", str(exc)) from None
    currency = shop.currency or "USD"
    # Prizes in the currency's minor units (what the ledger books and the JSON shows).
    prizes = tuple(
        replace(p, amount=Money(p.amount, currency).rounded().amount) for p in parsed.prizes
    )
    with uow:
        challenge = uow.challenges.add(
            Challenge(
                id=None,
                shop_id=shop.id,
                name=parsed.name,
                metric=parsed.metric,
                mode=parsed.mode,
                starts_at=parsed.starts_at,
                ends_at=parsed.ends_at,
                currency=currency,
                target=parsed.target,
                prizes=prizes,
                preset=parsed.preset,
                created_by=actor,
            )
        )
        uow.commit()
    log.info("challenges.created", extra={"shop": shop.domain, "challenge_id": challenge.id})
    return challenge


def get(uow: UnitOfWork, shop: Shop, challenge_id: int) -> Challenge:
    assert shop.id is not None
    with uow:
        found = uow.challenges.get(shop.id, challenge_id)
    if found is None:
        raise NotFound("challenge")
    return found


def join(uow: UnitOfWork, clock: Clock, shop: Shop, challenge_id: int, ambassador_id: int) -> bool:
    """Enter an active ambassador in a challenge that has not ended. Idempotent (False when
    already in). 409 once it has ended."""
    assert shop.id is not None
    with uow:
        challenge = uow.challenges.get(shop.id, challenge_id)
        if challenge is None:
            raise NotFound("challenge")
        if challenge.state(clock.now()) in ("ended", "closed"):
            raise ProgramError("challenge_ended", "this challenge has ended", status=409)
        ambassador = uow.ambassadors.get(shop.id, ambassador_id)
        if ambassador is None:
            raise NotFound("ambassador")
        if ambassador.status is not AmbassadorStatus.ACTIVE:
            raise ProgramError(
                "ambassador_not_active", "only active ambassadors take part", status=409
            )
        added = uow.challenges.join(shop.id, challenge_id, ambassador_id, clock.now())
        uow.commit()
    return added


def leaderboard(
    uow: UnitOfWork, clock: Clock, shop: Shop, challenge_id: int, *, masked: bool
) -> tuple[Challenge, list[Standing], int]:
    """(challenge, the top of its leaderboard with names, participants). Live while open,
    the final results once closed. ``masked``: names as "Jane D." (the storefront)."""
    assert shop.id is not None
    with uow:
        challenge = uow.challenges.get(shop.id, challenge_id)
        if challenge is None:
            raise NotFound("challenge")
        if challenge.status is ChallengeStatus.CLOSED:
            ranked = list(challenge.results or ())
        else:
            ranked = awards(challenge, rank(uow.challenges.standings(challenge)))
        top = ranked[:LEADERBOARD_SIZE]
        people = uow.ambassadors.names(shop.id, [s.ambassador_id for s in top])
        named = []
        for s in top:
            person = people.get(s.ambassador_id)
            if person is None:
                name = f"Ambassador #{s.ambassador_id}"
            elif masked:
                name = mask_name(person[0], person[1], s.ambassador_id)
            else:
                name = f"{person[0]} {person[1]}".strip() or person[2]
            named.append(replace(s, name=name))
    return challenge, named, len(ranked)


def close(uow_factory: UnitOfWorkFactory, clock: Clock, shop_id: int, challenge_id: int) -> bool:
    """Close an ended challenge: rank, pay prizes as ``bonus`` ledger entries (idempotent
    keys), store the results. False when it is not over or already closed. A challenge nobody
    joined closes with empty results."""
    now = clock.now()
    with uow_factory() as uow:
        challenge = uow.challenges.get(shop_id, challenge_id, for_update=True)
        if challenge is None or challenge.status is ChallengeStatus.CLOSED:
            return False
        if now < challenge.ends_at:
            return False
        final = awards(challenge, rank(uow.challenges.standings(challenge)))
        entries = [
            LedgerEntry(
                ambassador_id=s.ambassador_id,
                order_id=None,
                kind=EntryKind.BONUS.value,
                amount=s.prize,
                currency=challenge.currency,
                presentment_amount=None,
                presentment_currency=None,
                reason=f"prize: {challenge.name} (place {s.rank})"[:500],
                idempotency_key=prize_key(challenge_id, s.ambassador_id),
            )
            for s in final
            if s.prize is not None
        ]
        if entries:
            uow.ledger.append(shop_id, entries)
            for e in entries:
                uow.ledger.refresh_stats(shop_id, e.ambassador_id, challenge.currency)
        uow.challenges.close(challenge, final, now)
        uow.commit()
    log.info(
        "challenges.closed_one",
        extra={
            "shop_id": shop_id,
            "challenge_id": challenge_id,
            "participants": len(final),
            "prizes": len(entries),
        },
    )
    return True


def close_due(uow_factory: UnitOfWorkFactory, clock: Clock) -> int:
    with uow_factory() as uow:
        due = uow.challenges.due(clock.now())
    return sum(1 for shop_id, cid in due if close(uow_factory, clock, shop_id, cid))


def challenge_json(c: Challenge, now: datetime, participants: int | None = None) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "metric": c.metric.value,
        "mode": c.mode.value,
        "target": str(c.target) if c.target is not None else None,
        "starts_at": c.starts_at.isoformat(),
        "ends_at": c.ends_at.isoformat(),
        "currency": c.currency,
        "prizes": [p.to_dict() for p in c.prizes],
        "preset": c.preset,
        "state": c.state(now),
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
        "participants": participants,
        "tie_rule": "equal metric: whoever reached it first ranks higher; then the lower "
        "ambassador id",
    }


def standing_json(s: Standing) -> dict[str, Any]:
    return {**s.to_dict(), "name": s.name}
