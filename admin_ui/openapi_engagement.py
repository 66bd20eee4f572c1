"""OpenAPI paths and schemas of the engagement routes (:mod:`admin_ui.api_engagement`), merged
into the document by :func:`admin_ui.openapi.openapi_document`."""

from __future__ import annotations

from typing import Any

from admin_ui.openapi_parts import ERRORS, operation, path_id, query, ref
from admin_ui.openapi_parts import MONEY as _MONEY
from admin_ui.openapi_parts import TS as _TS
from admin_ui.openapi_parts import json_response as _json

_ERRORS = {**ERRORS, "413": ERRORS["400"]}  # uploads can be too large
_ref, _path_id, _query = ref, path_id, query


def _op(
    summary: str,
    ok: dict[str, Any] | None = None,
    *,
    body: dict[str, Any] | None = None,
    status: str = "200",
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return operation(summary, ok, body=body, status=status, params=params,
                     tags=["engagement"], errors=_ERRORS)


_BANDS = {"type": "string", "enum": ["not engaged", "marginal", "engaged"]}
_PER_BAND_INT = {
    "type": "object",
    "properties": {b: {"type": "integer"} for b in ("not engaged", "marginal", "engaged")},
}
_PER_BAND_SHARE = {
    "type": "object",
    "description": "percent, one decimal, as strings",
    "properties": {b: {"type": "string"} for b in ("not engaged", "marginal", "engaged")},
}

SCHEMAS: dict[str, Any] = {
    "EngagementSummary": {
        "type": "object",
        "properties": {
            "counts": _PER_BAND_INT,
            "shares": _PER_BAND_SHARE,
            "scored": {"type": "integer"},
            "computed_at": _TS,
            "over_time": {
                "type": "array",
                "description": "one entry per day the scores were computed",
                "items": {
                    "type": "object",
                    "properties": {
                        "day": {"type": "string", "format": "date"},
                        "counts": _PER_BAND_INT,
                        "shares": _PER_BAND_SHARE,
                    },
                },
            },
            "weights": {"type": "object", "additionalProperties": {"type": "integer"}},
            "components": {"type": "array", "items": {"type": "object"}},
            "thresholds": {
                "type": "object",
                "properties": {"marginal": _MONEY, "engaged": _MONEY},
            },
            "window_days": {"type": "integer"},
        },
    },
    "EngagementExplanation": {
        "type": "object",
        "properties": {
            "ambassador_id": {"type": "integer"},
            "score": {"type": "number", "minimum": 0, "maximum": 100},
            "band": _BANDS,
            "computed_at": _TS,
            "components": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "weight": {"type": "integer"},
                        "value": {"type": "string"},
                        "fraction": {"type": "string", "description": "0 to 1 of full marks"},
                        "points": {"type": "string", "description": "what it adds to the score"},
                    },
                },
            },
            "thresholds": {"type": "object"},
            "how_to_rise": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ChallengeInput": {
        "type": "object",
        "description": "a named initiative (name, metric, mode, starts_at, ends_at), or a "
        "preset: monthly (month YYYY-MM) or annual_most_raised (year)",
        "properties": {
            "preset": {"type": "string", "enum": ["monthly", "annual_most_raised"]},
            "month": {"type": "string", "example": "2026-12"},
            "year": {"type": "integer"},
            "name": {"type": "string", "maxLength": 120},
            "metric": {
                "type": "string",
                "enum": ["revenue", "orders", "new_customers", "approved_content"],
            },
            "mode": {"type": "string", "enum": ["target", "ranking"]},
            "target": {**_MONEY, "description": "mode target: the value to reach"},
            "starts_at": {"type": "string", "format": "date-time"},
            "ends_at": {"type": "string", "format": "date-time"},
            "prizes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["amount"],
                    "properties": {
                        "rank": {"type": "integer", "description": "ranking: the place"},
                        "amount": _MONEY,
                        "label": {"type": "string"},
                    },
                },
            },
        },
    },
    "Challenge": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "metric": {"type": "string"},
            "mode": {"type": "string", "enum": ["target", "ranking"]},
            "target": {**_MONEY, "nullable": True},
            "starts_at": _TS,
            "ends_at": _TS,
            "currency": {"type": "string"},
            "prizes": {"type": "array", "items": {"type": "object"}},
            "preset": {"type": "string", "nullable": True},
            "state": {"type": "string", "enum": ["upcoming", "running", "ended", "closed"]},
            "closed_at": _TS,
            "participants": {"type": "integer", "nullable": True},
            "tie_rule": {"type": "string"},
        },
    },
    "Leaderboard": {
        "type": "object",
        "properties": {
            "challenge": _ref("Challenge"),
            "final": {"type": "boolean"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "rank": {"type": "integer"},
                        "ambassador_id": {"type": "integer"},
                        "name": {"type": "string"},
                        "value": _MONEY,
                        "reached_at": _TS,
                        "prize": {**_MONEY, "nullable": True},
                    },
                },
            },
        },
    },
    "Submission": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "ambassador_id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["post", "review"]},
            "url": {"type": "string", "description": "as submitted (raw: escape when displaying)"},
            "text": {"type": "string", "description": "caption or review (raw text)"},
            "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
            "disclosure": {
                "type": "object",
                "properties": {
                    "ok": {"type": "boolean"},
                    "found": {"type": "string", "nullable": True},
                    "flag": {"type": "string", "nullable": True},
                },
            },
            "reason": {"type": "string", "nullable": True},
            "decided_by": {"type": "string", "nullable": True},
            "decided_at": _TS,
            "created_at": _TS,
        },
    },
    "Resource": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "kind": {"type": "string", "enum": ["flyer", "graphic", "post"]},
            "filename": {"type": "string", "nullable": True},
            "content_type": {"type": "string", "nullable": True},
            "size": {"type": "integer"},
            "body": {"type": "string", "nullable": True},
            "downloads": {"type": "integer"},
            "download_url": {"type": "string", "nullable": True},
            "created_at": _TS,
        },
    },
}


def paths() -> dict[str, Any]:
    cid = [_path_id("challenge_id")]
    return {
        "/engagement": {
            "get": _op(
                "Engagement at a glance: counts and shares per band, shares over time, the "
                "weights and thresholds",
                _json(_ref("EngagementSummary")),
                params=[_query("days", "history: 1 to 730 days (90)", {"type": "integer"})],
            )
        },
        "/engagement/recompute": {
            "post": _op("Score every ambassador of the shop now", status="202")
        },
        "/ambassadors/{ambassador_id}/engagement": {
            "get": _op(
                "One ambassador's score explained: components with weights, values and points",
                _json(_ref("EngagementExplanation")),
                params=[_path_id("ambassador_id")],
            )
        },
        "/challenges": {
            "get": _op(
                "Challenges, newest first",
                params=[_query("status", "open or closed")],
            ),
            "post": _op(
                "Create a challenge (named, monthly, or the annual most-raised award)",
                _json(_ref("Challenge")),
                body=_ref("ChallengeInput"),
                status="201",
            ),
        },
        "/challenges/{challenge_id}": {
            "get": _op("One challenge", _json(_ref("Challenge")), params=cid)
        },
        "/challenges/{challenge_id}/leaderboard": {
            "get": _op(
                "The leaderboard (live while open, final once closed). Ties: equal metric, "
                "whoever reached it first; then the lower ambassador id",
                _json(_ref("Leaderboard")),
                params=cid,
            )
        },
        "/challenges/{challenge_id}/participants": {
            "post": _op(
                "Enter an active ambassador (idempotent; 409 once ended)",
                params=cid,
                body={
                    "type": "object",
                    "required": ["ambassador_id"],
                    "properties": {"ambassador_id": {"type": "integer"}},
                },
                status="201",
            )
        },
        "/submissions": {
            "get": _op(
                "Content submissions, newest first, with the disclosure flag",
                params=[
                    _query("status", "pending, approved or rejected"),
                    _query("ambassador_id", "one ambassador's", {"type": "integer"}),
                    _query("cursor", "next_cursor of the previous page"),
                ],
            ),
            "post": _op(
                "Record a post URL or review for an ambassador; 409 duplicate_url for a post "
                "already submitted",
                _json(_ref("Submission")),
                body={
                    "type": "object",
                    "required": ["ambassador_id", "url"],
                    "properties": {
                        "ambassador_id": {"type": "integer"},
                        "kind": {"type": "string", "enum": ["post", "review"]},
                        "url": {"type": "string"},
                        "text": {"type": "string", "maxLength": 5000},
                    },
                },
                status="201",
            ),
        },
        "/submissions/{submission_id}/approve": {
            "post": _op(
                "Approve a pending submission (409 once decided)",
                _json(_ref("Submission")),
                params=[_path_id("submission_id")],
                body={"type": "object", "properties": {"reason": {"type": "string"}}},
            )
        },
        "/submissions/{submission_id}/reject": {
            "post": _op(
                "Reject a pending submission with a reason (409 once decided)",
                _json(_ref("Submission")),
                params=[_path_id("submission_id")],
                body={
                    "type": "object",
                    "required": ["reason"],
                    "properties": {"reason": {"type": "string", "maxLength": 1000}},
                },
            )
        },
        "/ambassadors/{ambassador_id}/disclosure": {
            "get": _op(
                "When the ambassador acknowledged the disclosure duty, and the wording",
                params=[_path_id("ambassador_id")],
            )
        },
        "/resources": {
            "get": _op("The resources library (not archived), newest first"),
            "post": {
                **_op(
                    "Upload a flyer or graphic (multipart: file, title, kind; PDF, PNG, JPEG, "
                    "GIF or WebP up to 10 MiB: 422 invalid_file, 413 too_large) or write a post "
                    "(JSON; the program's disclosure is added when missing)",
                    _json(_ref("Resource")),
                    status="201",
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file", "title"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "title": {"type": "string", "maxLength": 200},
                                    "kind": {"type": "string", "enum": ["flyer", "graphic"]},
                                },
                            }
                        },
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["title", "body"],
                                "properties": {
                                    "title": {"type": "string", "maxLength": 200},
                                    "kind": {"type": "string", "enum": ["post"]},
                                    "body": {"type": "string", "maxLength": 5000},
                                },
                            }
                        },
                    },
                },
            },
        },
        "/resources/{resource_id}": {
            "delete": _op(
                "Archive a resource (its file is deleted)",
                {"description": "Archived"},
                status="204",
                params=[_path_id("resource_id")],
            )
        },
        "/resources/{resource_id}/file": {
            "get": {
                **_op("Download a resource's file", params=[_path_id("resource_id")]),
                "responses": {
                    "200": {
                        "description": "the file, as an attachment",
                        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
                    },
                    **_ERRORS,
                },
            }
        },
        "/roi": {
            "get": _op(
                "Return on influence: business value (attributed revenue, orders, new customers, "
                "average order, refunds), reach (ambassadors active, codes used, share of store "
                "revenue), content (approved posts and reviews) against cost (reward-ledger "
                "entries by form), in total, per month, per tier and per challenge",
                params=[
                    _query("from", "first month, YYYY-MM (default: 11 months before to)"),
                    _query("to", "last month, YYYY-MM (default: this month)"),
                ],
            )
        },
        "/challenges/{challenge_id}/close": {
            "post": _op(
                "Close an ended challenge now: final leaderboard, prizes as bonus entries in "
                "the reward ledger (409 while running)",
                _json(_ref("Challenge")),
                params=cid,
            )
        },
    }
