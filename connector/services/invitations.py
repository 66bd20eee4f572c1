"""Inviting ambassadors to their portal in bulk (the admin's "Invite" action).

Each invitation is one message through the notification outbox: the ambassador's code, their
share link, the portal's address and a single-use sign-in link (valid :data:`INVITE_TTL`, kept
as its SHA-256 like every portal link). The request's idempotency key makes the outbox key
``invite:<key>:<ambassador id>``: the same request sent twice (a double click, a retry after a
lost answer, two tabs) invites nobody twice, and the sign-in token is only created with the
message that carries it. Only active ambassadors with a code are invited; the rest are refused
with the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from connector.domain.ambassadors import Ambassador, AmbassadorStatus
from connector.domain.shops import Shop
from connector.ports import Clock, IdGenerator, Job, JobQueue, UnitOfWork
from connector.services.portal import token_hash

log = logging.getLogger(__name__)

# An invitation is read later than a requested link: longer-lived, still single use.
INVITE_TTL = timedelta(hours=72)
MAX_PER_REQUEST = 200
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

REFUSALS = {
    AmbassadorStatus.PAUSED: "paused: activate them first",
    AmbassadorStatus.APPLIED: "not approved yet",
    AmbassadorStatus.REMOVED: "removed from the program",
}


@dataclass(frozen=True)
class InvitationResult:
    ambassador_id: int
    outcome: str  # "invited", "already_invited" (this request was seen before), "refused"
    reason: str | None = None


@dataclass(frozen=True)
class PortalLinks:
    """Where the portal lives: ``login(token)`` the sign-in link, ``dashboard`` its page,
    ``share(code)`` the ambassador's share link."""

    dashboard: str
    login: Callable[[str], str]
    share: Callable[[str], str]


def invite(
    uow: UnitOfWork,
    jobs: JobQueue,
    ids: IdGenerator,
    clock: Clock,
    shop: Shop,
    ambassador_ids: Sequence[int],
    idempotency_key: str,
    links: PortalLinks,
) -> list[InvitationResult]:
    """Invite each ambassador once per ``idempotency_key``; one result per distinct id, in the
    order given (ids not of this shop: refused as not found). Commits."""
    assert shop.id is not None
    if not IDEMPOTENCY_KEY.match(idempotency_key):
        raise ValueError("idempotency key")
    now = clock.now()
    results: list[InvitationResult] = []
    store = shop.name or shop.domain
    with uow:
        for aid in dict.fromkeys(ambassador_ids):
            ambassador = uow.ambassadors.get(shop.id, aid)
            refusal = _refusal(ambassador)
            if refusal is not None or ambassador is None:
                results.append(InvitationResult(aid, "refused", refusal or "no such ambassador"))
                continue
            assert ambassador.code is not None
            token = ids.token(32)
            sent = uow.notifications.add(
                shop.id,
                f"invite:{idempotency_key}:{aid}",
                ambassador.email,
                f"You're invited to the {store} ambassador portal",
                _body(ambassador, store, links, token),
            )
            if not sent:
                results.append(InvitationResult(aid, "already_invited"))
                continue
            uow.engagement.add_login_token(shop.id, aid, token_hash(token), now + INVITE_TTL)
            results.append(InvitationResult(aid, "invited"))
        if any(r.outcome == "invited" for r in results):
            uow.after_commit(lambda: _wake(jobs))
        uow.commit()
    log.info(
        "ambassadors.invited",
        extra={"shop": shop.domain, "invited": sum(r.outcome == "invited" for r in results)},
    )
    return results


def _refusal(ambassador: Ambassador | None) -> str | None:
    if ambassador is None:
        return "no such ambassador"
    if ambassador.status in REFUSALS:
        return REFUSALS[ambassador.status]
    if not ambassador.code:
        return "no code yet"
    return None


def _body(ambassador: Ambassador, store: str, links: PortalLinks, token: str) -> str:
    code = ambassador.code or ""
    hours = int(INVITE_TTL.total_seconds() // 3600)
    return (
        f"Hello {ambassador.first_name or 'there'},\n\n"
        f"You're one of {store}'s ambassadors. Your code is {code}: friends who use it get "
        f"the program's discount, and you are credited for their orders.\n\n"
        f"Your share link: {links.share(code)}\n\n"
        f"Sign in to your ambassador page (this link works once, within {hours} hours):\n"
        f"{links.login(quote(token))}\n\n"
        f"Afterwards your page is always at {links.dashboard} (ask there for a new sign-in "
        "link by email).\n"
    )


def _wake(jobs: JobQueue) -> None:
    try:
        jobs.trigger(Job.SEND_NOTIFICATIONS)
    except Exception:  # noqa: BLE001 - the scheduled run sends it a little later
        log.warning("notifications.trigger_failed")
