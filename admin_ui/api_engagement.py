"""``/api/v1`` routes of engagement: scores and their explanation, challenges and leaderboards,
content submissions, the resources library, and return on influence.

Registered on the same blueprint as :mod:`admin_ui.api` (same auth, same error shape, every
query scoped to the session token's shop).
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request

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
from connector.domain.challenges import ChallengeStatus
from connector.domain.content import MAX_UPLOAD, SubmissionStatus
from connector.ports import Job
from connector.services import challenges, content, engagement, resources, roi

PAGE = 50


def _id(value: str, what: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise ApiError(404, "not_found", f"no such {what}")
    return int(value)


def _body_id(data: dict[str, Any], key: str) -> int:
    """A database id from a JSON body: a positive integer that fits BIGINT."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise ApiError(422, f"invalid_{key}", f"{key} must be a positive integer")
    return value


def _days(default: int = 90) -> int:
    raw = request.args.get("days")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 730:
        raise ApiError(422, "invalid_days", "days: an integer from 1 to 730")
    return int(raw)


# --- engagement scores ------------------------------------------------------------------------


@bp.get("/engagement")
def engagement_summary() -> Any:
    c = container()
    return jsonify(engagement.summary(c.uow(), c.clock, g.shop, _days()))


@bp.post("/engagement/recompute")
def engagement_recompute() -> Any:
    """Score the shop now (the schedule does it hourly)."""
    c = container()
    c.jobs.enqueue(Job.SCORE_ENGAGEMENT, g.shop.domain, job_id=f"score-engagement:{g.shop.id}")
    return jsonify({"queued": True}), 202


@bp.get("/ambassadors/<ambassador_id>/engagement")
def ambassador_engagement(ambassador_id: str) -> Any:
    aid = _id(ambassador_id, "ambassador")
    return jsonify(call(engagement.explanation, container().uow(), g.shop, aid))


# --- challenges -------------------------------------------------------------------------------


def _challenge_out(challenge: Any) -> dict[str, Any]:
    c = container()
    with c.uow() as uow:
        participants = len(uow.challenges.participants(g.shop.id, challenge.id))
    return challenges.challenge_json(challenge, c.clock.now(), participants)


@bp.get("/challenges")
def list_challenges() -> Any:
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in ChallengeStatus}:
        raise ApiError(422, "invalid_status", "status is open or closed")
    c = container()
    with c.uow() as uow:
        items = uow.challenges.search(g.shop.id, status=status)
        counts = {x.id: len(uow.challenges.participants(g.shop.id, x.id or 0)) for x in items}
    now = c.clock.now()
    return jsonify({"items": [challenges.challenge_json(x, now, counts[x.id]) for x in items]})


@bp.post("/challenges")
def create_challenge() -> Any:
    c = container()
    created = call(challenges.create, c.uow(), c.clock, g.shop, json_body(), actor())
    return jsonify(_challenge_out(created)), 201


@bp.get("/challenges/<challenge_id>")
def get_challenge(challenge_id: str) -> Any:
    found = call(challenges.get, container().uow(), g.shop, _id(challenge_id, "challenge"))
    return jsonify(_challenge_out(found))


@bp.get("/challenges/<challenge_id>/leaderboard")
def challenge_leaderboard(challenge_id: str) -> Any:
    c = container()
    challenge, rows, total = call(
        challenges.leaderboard,
        c.uow(),
        c.clock,
        g.shop,
        _id(challenge_id, "challenge"),
        masked=False,
    )
    return jsonify(
        {
            "challenge": challenges.challenge_json(challenge, c.clock.now(), total),
            "final": challenge.status is ChallengeStatus.CLOSED,
            "items": [challenges.standing_json(s) for s in rows],
        }
    )


@bp.post("/challenges/<challenge_id>/participants")
def join_challenge(challenge_id: str) -> Any:
    aid = _body_id(json_body(), "ambassador_id")
    c = container()
    added = call(challenges.join, c.uow(), c.clock, g.shop, _id(challenge_id, "challenge"), aid)
    return jsonify({"joined": True, "new": added}), 201 if added else 200


@bp.post("/challenges/<challenge_id>/close")
def close_challenge(challenge_id: str) -> Any:
    """Close an ended challenge now (the schedule does it within minutes): 409 before its end."""
    c = container()
    cid = _id(challenge_id, "challenge")
    found = call(challenges.get, c.uow(), g.shop, cid)
    if found.state(c.clock.now()) in ("upcoming", "running"):
        raise ApiError(409, "challenge_running", "the challenge has not ended yet")
    challenges.close(c.uow, c.clock, g.shop.id, cid)
    return jsonify(_challenge_out(call(challenges.get, c.uow(), g.shop, cid)))


# --- content submissions ----------------------------------------------------------------------


@bp.get("/submissions")
def list_submissions() -> Any:
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in SubmissionStatus}:
        raise ApiError(422, "invalid_status", "status is pending, approved or rejected")
    raw_ambassador = request.args.get("ambassador_id")
    ambassador_id = None
    if raw_ambassador:
        if not raw_ambassador.isdigit() or len(raw_ambassador) > 18:
            raise ApiError(422, "invalid_ambassador_id", "ambassador_id must be an integer")
        ambassador_id = int(raw_ambassador)
    after = decode_cursor("s", request.args.get("cursor"))
    with container().uow() as uow:
        rows = uow.content.submissions(
            g.shop.id,
            status=SubmissionStatus(status) if status else None,
            ambassador_id=ambassador_id,
            after_id=after,
            limit=PAGE + 1,
        )
    items, more = rows[:PAGE], len(rows) > PAGE
    return jsonify(
        {
            "items": [content.submission_json(s) for s in items],
            "next_cursor": encode_cursor("s", items[-1].id) if more and items else None,
        }
    )


@bp.post("/submissions")
def create_submission() -> Any:
    """Record a post or review for an ambassador (ambassadors submit from the portal)."""
    data = json_body()
    aid = _body_id(data, "ambassador_id")
    c = container()
    created = call(
        content.submit,
        c.uow(),
        c.clock,
        g.shop,
        aid,
        kind=data.get("kind", "post"),
        url=data.get("url"),
        text=data.get("text", ""),
    )
    return jsonify(content.submission_json(created)), 201


def _decide(submission_id: str, approve: bool) -> Any:
    data = json_body(optional=True)
    c = container()
    decided = call(
        content.decide,
        c.uow(),
        c.clock,
        g.shop,
        _id(submission_id, "submission"),
        approve=approve,
        reason=data.get("reason"),
        actor=actor(),
    )
    return jsonify(content.submission_json(decided))


@bp.post("/submissions/<submission_id>/approve")
def approve_submission(submission_id: str) -> Any:
    return _decide(submission_id, True)


@bp.post("/submissions/<submission_id>/reject")
def reject_submission(submission_id: str) -> Any:
    return _decide(submission_id, False)


@bp.get("/ambassadors/<ambassador_id>/disclosure")
def ambassador_disclosure(ambassador_id: str) -> Any:
    """When the ambassador acknowledged the disclosure duty (portal onboarding), if ever."""
    aid = _id(ambassador_id, "ambassador")
    with container().uow() as uow:
        if uow.ambassadors.get(g.shop.id, aid) is None:
            raise ApiError(404, "not_found", "no such ambassador")
        first = uow.engagement.first_event(g.shop.id, aid, "disclosure_ack")
        wording = uow.program.settings(g.shop.id).disclosure_text
    return jsonify(
        {
            "ambassador_id": aid,
            "acknowledged_at": first.isoformat() if first else None,
            "disclosure_text": wording,
        }
    )


# --- the resources library ----------------------------------------------------------------------


@bp.get("/resources")
def list_resources() -> Any:
    with container().uow() as uow:
        items = uow.content.resources(g.shop.id)
    return jsonify({"items": [resources.resource_json(r) for r in items]})


@bp.post("/resources")
def create_resource() -> Any:
    """A file (``multipart/form-data``: ``file``, ``title``, ``kind`` flyer or graphic) or a
    pre-written post (JSON ``{"title", "kind": "post", "body"}``)."""
    c = container()
    if request.mimetype == "multipart/form-data":
        # Above the app-wide limit (sized for webhooks): a flyer may be up to MAX_UPLOAD.
        request.max_content_length = MAX_UPLOAD + 64 * 1024
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(422, "missing_file", "send the file in the form field 'file'")
        data = upload.read(MAX_UPLOAD + 1)
        created = call(
            resources.upload,
            c.uow(),
            c.storage,
            c.ids,
            g.shop,
            title=request.form.get("title"),
            kind=request.form.get("kind", "flyer"),
            filename=upload.filename or "",
            content_type=upload.mimetype or "",
            data=data,
        )
    else:
        body = json_body()
        if body.get("kind", "post") != "post":
            raise ApiError(
                422, "invalid_kind", "files are sent as multipart/form-data; JSON is for posts"
            )
        created = call(
            resources.add_post, c.uow(), g.shop, title=body.get("title"), body=body.get("body")
        )
    return jsonify(resources.resource_json(created)), 201


@bp.get("/resources/<resource_id>/file")
def resource_file(resource_id: str) -> Any:
    c = container()
    found, data = call(
        resources.download, c.uow(), c.storage, c.clock, g.shop, _id(resource_id, "resource")
    )
    return file_response(found, data)


@bp.delete("/resources/<resource_id>")
def delete_resource(resource_id: str) -> Any:
    c = container()
    call(resources.archive, c.uow(), c.storage, g.shop, _id(resource_id, "resource"))
    return "", 204


def file_response(found: Any, data: bytes) -> Any:
    """An attachment (never rendered inline: an uploaded file cannot run as a page)."""
    response = Response(data, mimetype=found.content_type or "application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- return on influence ------------------------------------------------------------------------


@bp.get("/roi")
def return_on_influence() -> Any:
    c = container()
    return jsonify(
        call(
            roi.report,
            c.uow(),
            c.clock.now(),
            g.shop,
            request.args.get("from") or None,
            request.args.get("to") or None,
        )
    )
