"""Content submissions (post URLs and reviews) with their disclosure check and the merchant's
decision, and the disclosure acknowledgement ambassadors give at onboarding."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from connector.domain.ambassadors import AmbassadorStatus
from connector.domain.content import (
    TEXT_MAX,
    ContentInvalid,
    Submission,
    SubmissionKind,
    SubmissionStatus,
    disclosure,
    normalise_url,
    storable,
    url_key,
)
from connector.domain.shops import Shop
from connector.ports import Clock, UnitOfWork
from connector.services.ambassadors import NotFound, ProgramError

log = logging.getLogger(__name__)


def submit(
    uow: UnitOfWork,
    clock: Clock,
    shop: Shop,
    ambassador_id: int,
    *,
    kind: Any,
    url: Any,
    text: Any = "",
) -> Submission:
    """Record a submission, checked for a disclosure. The same post twice (the URL compared
    without scheme, ``www.``, trailing slash, fragment or ``utm_*``) is 409 ``duplicate_url``."""
    assert shop.id is not None
    try:
        kind_ = SubmissionKind(str(kind or "post"))
    except ValueError:
        raise ProgramError("invalid_kind", "kind is post or review") from None
    if not isinstance(url, str):
        raise ProgramError("invalid_url", "url: an http(s) URL")
    if not isinstance(text, str) or len(text) > TEXT_MAX or not storable(text):
        raise ProgramError("invalid_text", f"text: up to {TEXT_MAX} characters")
    try:
        clean = normalise_url(url)
    except ContentInvalid as exc:
        raise ProgramError("invalid_url", str(exc)) from None
    with uow:
        ambassador = uow.ambassadors.get(shop.id, ambassador_id)
        if ambassador is None:
            raise NotFound("ambassador")
        if ambassador.status is not AmbassadorStatus.ACTIVE:
            raise ProgramError(
                "ambassador_not_active", "only active ambassadors submit content", status=409
            )
        program_text = uow.program.settings(shop.id).disclosure_text
        found = disclosure(text, program_text)
        added = uow.content.add_submission(
            Submission(
                id=None,
                shop_id=shop.id,
                ambassador_id=ambassador_id,
                kind=kind_,
                url=clean,
                text=text,
                disclosure_ok=found is not None,
                disclosure_found=found,
            )
        )
        if added is None:
            existing = uow.content.submission_by_url(shop.id, url_key(clean))
            mine = existing is not None and existing.ambassador_id == ambassador_id
            raise ProgramError(
                "duplicate_url",
                "you already submitted this post" if mine else "this post was already submitted",
                status=409,
            )
        uow.commit()
    return added


def decide(
    uow: UnitOfWork,
    clock: Clock,
    shop: Shop,
    submission_id: int,
    *,
    approve: bool,
    reason: Any,
    actor: str,
) -> Submission:
    """Approve or reject a pending submission; 409 ``already_decided`` otherwise."""
    assert shop.id is not None
    if reason is not None and (
        not isinstance(reason, str) or len(reason) > 1000 or not storable(reason)
    ):
        raise ProgramError("invalid_reason", "reason: text up to 1000 characters")
    if not approve and not (reason or "").strip():
        raise ProgramError("missing_reason", "say why the submission is rejected")
    with uow:
        found = uow.content.get_submission(shop.id, submission_id, for_update=True)
        if found is None:
            raise NotFound("submission")
        decided = replace(
            found,
            status=SubmissionStatus.APPROVED if approve else SubmissionStatus.REJECTED,
            reason=(reason or "").strip() or None,
            decided_by=actor,
            decided_at=clock.now(),
        )
        if not uow.content.decide(decided):
            raise ProgramError(
                "already_decided", f"this submission was already {found.status.value}", status=409
            )
        uow.commit()
    return decided


def disclosure_version(text: str) -> str:
    """What was acknowledged: a digest of the disclosure wording at the time."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def acknowledge_disclosure(
    uow: UnitOfWork, clock: Clock, shop: Shop, ambassador_id: int
) -> datetime:
    """Record (once per wording) that the ambassador agreed to disclose; returns when they
    first did."""
    assert shop.id is not None
    with uow:
        wording = uow.program.settings(shop.id).disclosure_text
        uow.engagement.record(
            shop.id, ambassador_id, "disclosure_ack", disclosure_version(wording), clock.now()
        )
        first = uow.engagement.first_event(shop.id, ambassador_id, "disclosure_ack")
        uow.commit()
    assert first is not None
    return first


def submission_json(s: Submission) -> dict[str, Any]:
    return {
        "id": s.id,
        "ambassador_id": s.ambassador_id,
        "kind": s.kind.value,
        "url": s.url,
        "text": s.text,
        "status": s.status.value,
        "disclosure": {
            "ok": s.disclosure_ok,
            "found": s.disclosure_found,
            "flag": None if s.disclosure_ok else "no disclosure (#ad, #sponsored, "
            "paid partnership or the program's own wording) found",
        },
        "reason": s.reason,
        "decided_by": s.decided_by,
        "decided_at": s.decided_at.isoformat() if s.decided_at else None,
        "created_at": s.created_at.isoformat() if s.created_at else None,
    }
