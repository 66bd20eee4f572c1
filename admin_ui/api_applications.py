"""``/api/v1/applications``: the review queue of storefront applications.

Registered on the same blueprint as :mod:`admin_ui.api` (same session-token auth, same error
shape, every query scoped to ``g.shop``). The reviewer is the Shopify staff member behind the
session token (``merchant:<sub>``): one vote each, a second vote replaces the first.
"""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from admin_ui.api import (
    ApiError,
    actor,
    bp,
    call,
    container,
    decode_cursor,
    encode_cursor,
    json_body,
)
from connector.domain.applications import (
    Application,
    ApplicationStatus,
    ApplicationVote,
    VoteChoice,
    share_url,
)
from connector.services import applications as service

MAX_PAGE = 200










def _application_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ApiError(404, "not_found", "no such application")
    return int(value)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def application_json(
    a: Application, approve_votes: int, reject_votes: int, required: int
) -> dict[str, Any]:
    return {
        "id": a.id,
        "status": a.status.value,
        "ambassador_id": a.ambassador_id,
        "email": a.email,
        "first_name": a.first_name,
        "last_name": a.last_name,
        "customer_id": f"gid://shopify/Customer/{a.customer_id}" if a.customer_id else None,
        "answers": [{"id": x.id, "label": x.label, "answer": x.answer} for x in a.answers],
        "social": a.social,
        "votes": {"approve": approve_votes, "reject": reject_votes, "required": required},
        "tier_id": a.tier_id,
        "reason": a.reason,
        "decided_by": a.decided_by,
        "decided_at": _iso(a.decided_at),
        "created_at": _iso(a.created_at),
    }


def _vote_json(v: ApplicationVote) -> dict[str, Any]:
    return {"reviewer": v.reviewer, "vote": v.choice.value, "comment": v.comment, "at": _iso(v.at)}


def review_json(r: service.Review) -> dict[str, Any]:
    approve_votes = sum(1 for v in r.votes if v.choice is VoteChoice.APPROVE)
    body = application_json(
        r.application, approve_votes, len(r.votes) - approve_votes, r.approvals_required
    )
    a = r.ambassador
    body.update(
        {
            "reviews": [_vote_json(v) for v in r.votes],
            "reapply_on": _iso(r.reapply_on),
            "ambassador": {
                "id": a.id,
                "status": a.status.value,
                "code": a.code,
                "code_state": a.code_state.value,
                "share_url": share_url(g.shop.domain, a.code) if a.code else None,
            }
            if a is not None
            else None,
        }
    )
    return body


@bp.get("/applications")
def list_applications() -> Any:
    """The review queue, oldest first (first come, first reviewed)."""
    raw_status = request.args.get("status") or None
    try:
        status = ApplicationStatus(raw_status) if raw_status else None
    except ValueError:
        raise ApiError(422, "invalid_status", "status is pending, approved or rejected") from None
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), MAX_PAGE)
    except ValueError:
        raise ApiError(422, "invalid_limit", "limit must be an integer") from None
    after = decode_cursor("p", request.args.get("cursor"))
    queue = service.review_queue(container().uow(), g.shop, status, after, limit + 1)
    items, more = queue.items[:limit], len(queue.items) > limit
    return jsonify(
        {
            "items": [
                application_json(
                    i.application, i.approve_votes, i.reject_votes, queue.approvals_required
                )
                for i in items
            ],
            "next_cursor": encode_cursor("p", items[-1].application.id) if more and items else None,
        }
    )


@bp.get("/applications/<application_id>")
def get_application(application_id: str) -> Any:
    r = call(service.review, container().uow(), g.shop, _application_id(application_id))
    return jsonify(review_json(r))


@bp.post("/applications/<application_id>/votes")
def vote(application_id: str) -> Any:
    """Vote approve or reject (one vote per reviewer; voting again replaces it). The vote that
    reaches the program's ``approvals_required`` approves the application."""
    aid = _application_id(application_id)
    data = json_body()
    try:
        choice = VoteChoice(str(data.get("vote")))
    except ValueError:
        raise ApiError(422, "invalid_vote", 'vote is "approve" or "reject"') from None
    c = container()
    r = call(
        service.vote,
        c.uow(),
        c.jobs,
        c.clock,
        g.shop,
        aid,
        reviewer=actor(),
        choice=choice,
        comment=data.get("comment"),
    )
    return jsonify(review_json(r))


@bp.post("/applications/<application_id>/approve")
def approve(application_id: str) -> Any:
    aid = _application_id(application_id)
    data = json_body(optional=True)  # the body is only for the optional tier_id
    tier_id = data.get("tier_id")
    if tier_id is not None and (isinstance(tier_id, bool) or not isinstance(tier_id, int)):
        raise ApiError(422, "invalid_tier", "tier_id must be an integer")
    c = container()
    r = call(
        service.approve, c.uow(), c.jobs, c.clock, g.shop, aid, actor=actor(), tier_id=tier_id
    )
    return jsonify(review_json(r))


@bp.post("/applications/<application_id>/reject")
def reject(application_id: str) -> Any:
    """Turn the application down. The reason is sent to the applicant."""
    aid = _application_id(application_id)
    data = json_body()
    c = container()
    r = call(
        service.reject,
        c.uow(),
        c.jobs,
        c.clock,
        g.shop,
        aid,
        actor=actor(),
        reason=data.get("reason"),
    )
    return jsonify(review_json(r))
