"""The OpenAPI 3 document of ``/api/v1`` (served at ``/api/v1/openapi.json``).

Kept next to the routes; a test checks that every route and method is documented here.
"""

from __future__ import annotations

from typing import Any

from admin_ui import openapi_engagement
from admin_ui.openapi_parts import ERRORS as _ERRORS
from admin_ui.openapi_parts import MONEY as _MONEY
from admin_ui.openapi_parts import TS as _TS
from admin_ui.openapi_parts import json_response as _json
from admin_ui.openapi_parts import operation as _op
from admin_ui.openapi_parts import path_id as _path_id
from admin_ui.openapi_parts import query as _query
from admin_ui.openapi_parts import ref as _ref
from admin_ui.openapi_payouts import payout_paths
from connector.ports import AMBASSADOR_SORTS, ENGAGEMENT_BANDS

SCHEMAS: dict[str, Any] = {
    "SalesforceFields": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "missing": {"type": "array", "items": {"type": "string"}},
            "not_writable": {"type": "array", "items": {"type": "string"}},
            "checked_at": _TS,
            "permission_set_assigned": {"type": "boolean", "nullable": True},
            "message": {"type": "string"},
        },
    },
    "SalesforceState": {
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "status": {
                "type": "string",
                "enum": ["not_connected", "connected", "needs_reconnect", "disconnected"],
            },
            "message": {"type": "string"},
            "instance_url": {"type": "string", "nullable": True},
            "org_id": {"type": "string", "nullable": True},
            "connected_at": _TS,
            "fields": {"$ref": "#/components/schemas/SalesforceFields"},
            "budget": {"type": "object"},
            "last_sync_at": _TS,
            "last_sync": {"type": "object", "nullable": True},
            "last_error": {"type": "string", "nullable": True},
            "records": {
                "type": "object",
                "properties": {
                    "synced": {"type": "integer"},
                    "retry": {"type": "integer"},
                    "parked": {"type": "integer"},
                },
            },
            "parked": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Shop": {
        "type": "object",
        "properties": {
            "domain": {"type": "string"},
            "name": {"type": "string", "nullable": True},
            "currency": {"type": "string", "nullable": True},
            "status": {"type": "string", "enum": ["installed", "uninstalled"]},
            "installed_at": _TS,
            "webhooks_registered_at": _TS,
            "webhooks": {"type": "object"},
        },
    },
    "PrivacyRequest": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "topic": {"type": "string"},
            "customer_id": {"type": "integer", "nullable": True},
            "received_at": _TS,
            "completed_at": _TS,
            "summary": {"type": "object"},
        },
    },
    "Ambassador": {
        "type": "object",
        "required": ["id", "email", "status", "code", "tier", "engagement", "stats"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "customer_id": {"type": "string", "nullable": True},
            "status": {"type": "string", "enum": ["applied", "active", "paused", "removed"]},
            "code": {"type": "string", "nullable": True},
            "code_state": {
                "type": "string",
                "enum": ["none", "pending", "active", "inactive", "missing"],
            },
            "share_url": {"type": "string", "nullable": True},
            "tier": {
                "type": "object",
                "nullable": True,
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "tier_locked": {"type": "boolean"},
            "source": {"type": "string"},
            "social": {"type": "object"},
            "since": _TS,
            "created_at": _TS,
            "updated_at": _TS,
            "engagement": {
                "type": "object",
                "properties": {
                    "score": {"type": "number"},
                    "band": {"type": "string", "enum": ["not engaged", "marginal", "engaged"]},
                },
            },
            "stats": {
                "type": "object",
                "properties": {
                    "attributed_orders": {"type": "integer"},
                    "attributed_revenue": _MONEY,
                    "currency": {"type": "string"},
                    "rewards": {
                        "type": "object",
                        "properties": {
                            k: _MONEY for k in ("pending", "approved", "paid", "reversed")
                        },
                    },
                },
            },
        },
    },
    "AmbassadorPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref("Ambassador")},
            "next_cursor": {"type": "string", "nullable": True},
        },
    },
    "Enrolment": {
        "oneOf": [
            {
                "type": "object",
                "required": ["customer_id"],
                "properties": {
                    "customer_id": {"type": "string", "example": "gid://shopify/Customer/123"},
                    "tier_id": {"type": "integer"},
                },
            },
            {
                "type": "object",
                "required": ["email"],
                "properties": {
                    "email": {"type": "string"},
                    "first_name": {"type": "string"},
                    "last_name": {"type": "string"},
                    "tier_id": {"type": "integer"},
                },
            },
        ]
    },
    "Tier": {
        "type": "object",
        "required": ["name", "position", "commission_rate"],
        "properties": {
            "id": {"type": "integer", "readOnly": True},
            "name": {"type": "string"},
            "position": {"type": "integer", "minimum": 0, "maximum": 100},
            "commission_rate": _MONEY,
            "min_revenue": {**_MONEY, "nullable": True},
            "min_orders": {"type": "integer", "nullable": True},
            "min_new_customers": {"type": "integer", "nullable": True},
            "perks": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Candidate": {
        "type": "object",
        "properties": {
            "customer_id": {"type": "string", "description": "Customer GID"},
            "email": {"type": "string", "nullable": True},
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "orders": {"type": "integer"},
            "amount_spent": _MONEY,
            "currency": {"type": "string"},
            "last_order_at": _TS,
            "score": {"type": "number", "description": "0 to 1: spend, orders, recency, repeat"},
        },
    },
    "CandidateScan": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["running", "done", "failed"]},
            "method": {"type": "string", "enum": ["pages", "bulk"], "nullable": True},
            "scanned": {"type": "integer", "description": "customers read so far"},
            "customers": {"type": "integer", "description": "customers in the store"},
            "items": {"type": "array", "items": _ref("Candidate")},
            "error": {"allOf": [_ref("Error")], "nullable": True},
            "started_at": _TS,
            "finished_at": _TS,
        },
    },
    "Task": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "status": {"type": "string"},
            "total": {"type": "integer"},
            "done": {"type": "integer"},
            "failed": {"type": "integer"},
            "report": {"type": "object"},
            "started_at": _TS,
            "finished_at": _TS,
        },
    },
    "Attribution": {"type": "object", "required": [
        "order_id", "credited", "ambassador_id", "code", "rule", "reason", "candidates"],
        "properties": {
            "order_id": {"type": "integer"}, "credited": {"type": "boolean"},
            "ambassador_id": {"type": "integer", "nullable": True},
            "code": {"type": "string", "nullable": True}, "rule": {"type": "string"},
            "reason": {"type": "string"}, "explanation": {"type": "string"},
            "candidates": {"type": "array", "items": {"type": "object"}},
            "rate": {"type": "string", "nullable": True}, "revenue": _MONEY, "reward": _MONEY,
            "currency": {"type": "string"}, "cancelled": {"type": "boolean"}}},
    "ProgramSettings": {"type": "object", "description": "see connector/domain/program.py"},
    "Application": {
        "type": "object",
        "required": ["id", "status", "ambassador_id", "email", "answers", "social", "votes"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
            "ambassador_id": {"type": "integer"},
            "email": {"type": "string"},
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "customer_id": {"type": "string", "nullable": True},
            "answers": {
                "type": "array",
                "description": "as the applicant typed them (raw text: escape when displaying)",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "label": {"type": "string"},
                        "answer": {"type": "string"},
                    },
                },
            },
            "social": {
                "type": "object",
                "description": "instagram, tiktok, youtube (handles) and website (URL)",
                "additionalProperties": {"type": "string"},
            },
            "votes": {
                "type": "object",
                "properties": {
                    "approve": {"type": "integer"},
                    "reject": {"type": "integer"},
                    "required": {"type": "integer", "description": "approvals_required"},
                },
            },
            "tier_id": {"type": "integer", "nullable": True},
            "reason": {"type": "string", "nullable": True},
            "decided_by": {"type": "string", "nullable": True},
            "decided_at": _TS,
            "created_at": _TS,
        },
    },
    "ApplicationReview": {
        "allOf": [
            {"$ref": "#/components/schemas/Application"},
            {
                "type": "object",
                "properties": {
                    "reviews": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "reviewer": {"type": "string", "example": "merchant:42"},
                                "vote": {"type": "string", "enum": ["approve", "reject"]},
                                "comment": {"type": "string", "nullable": True},
                                "at": _TS,
                            },
                        },
                    },
                    "reapply_on": {**_TS, "description": "rejected: when they may apply again"},
                    "ambassador": {
                        "type": "object",
                        "nullable": True,
                        "properties": {
                            "id": {"type": "integer"},
                            "status": {"type": "string"},
                            "code": {"type": "string", "nullable": True},
                            "code_state": {"type": "string"},
                            "share_url": {"type": "string", "nullable": True},
                        },
                    },
                },
            },
        ]
    },
    "WebhookHealth": {
        "type": "object",
        "properties": {
            "inbox": {
                "type": "object",
                "description": "deliveries stored but not yet applied",
                "properties": {
                    "pending": {"type": "integer"},
                    "processing": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "oldest_pending_at": _TS,
                    "oldest_pending_age_seconds": {"type": "number", "nullable": True},
                    "last_received_at": _TS,
                },
            },
            "lag": {
                "type": "object",
                "description": "received_at - X-Shopify-Triggered-At of the last 24 hours",
                "properties": {
                    "window_hours": {"type": "integer"},
                    "deliveries": {"type": "integer"},
                    "p50_seconds": {"type": "number", "nullable": True},
                    "max_seconds": {"type": "number", "nullable": True},
                },
            },
            "reconciliation": {
                "type": "object",
                "properties": {
                    "last_run": {
                        "type": "object",
                        "nullable": True,
                        "properties": {
                            "id": {"type": "integer"},
                            "status": {"type": "string", "enum": ["running", "done", "failed"]},
                            "started_at": _TS,
                            "finished_at": _TS,
                            "window_start": _TS,
                            "window_end": _TS,
                            "seen": {"type": "integer"},
                            "applied": {"type": "integer"},
                            "found_only_by_reconciliation": {"type": "integer"},
                            "stale": {"type": "integer"},
                            "errors": {"type": "integer"},
                            "error": {"type": "string", "nullable": True},
                        },
                    },
                    "complete_through": {
                        **_TS,
                        "description": "orders updated before this were all read",
                    },
                    "found_only_by_reconciliation_7d": {
                        "type": "integer",
                        "description": "orders whose webhooks never came, last 7 days",
                    },
                },
            },
        },
    },
    "ApplicationPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Application"}},
            "next_cursor": {"type": "string", "nullable": True},
        },
    },
}


_TIMESERIES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "currency": {"type": "string", "nullable": True},
        "days": {"type": "integer"},
        "series": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date"},
                    "orders": {"type": "integer"},
                    "revenue": _MONEY,
                },
            },
        },
        "totals": {
            "type": "object",
            "properties": {"orders": {"type": "integer"}, "revenue": _MONEY},
        },
    },
}

_PROGRAM_FIGURES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "currency": {"type": "string", "nullable": True},
        "statuses": {"type": "object", "additionalProperties": {"type": "integer"}},
        "tiers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "tier_id": {"type": "integer", "nullable": True},
                    "name": {"type": "string"},
                    "ambassadors": {"type": "integer"},
                },
            },
        },
        "top": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "first_name": {"type": "string"},
                    "last_name": {"type": "string"},
                    "email": {"type": "string"},
                    "code": {"type": "string", "nullable": True},
                    "orders": {"type": "integer"},
                    "revenue": _MONEY,
                    "currency": {"type": "string"},
                },
            },
        },
    },
}

_SYSTEM_HEALTH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "inbox": {"type": "object"},
        "failed_deliveries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "topic": {"type": "string"},
                    "webhook_id": {"type": "string"},
                    "attempts": {"type": "integer"},
                    "last_error": {"type": "string", "nullable": True},
                    "received_at": _TS,
                },
            },
        },
        "jobs": {
            "type": "object",
            "properties": {
                "mode": {"type": "string", "enum": ["rq", "in-process", "unavailable"]},
                "queues": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}


def openapi_document() -> dict[str, Any]:
    aid = [_path_id("ambassador_id")]
    amb = _json(_ref("Ambassador"))
    return {
        "openapi": "3.0.3",
        "info": {"title": "Ambassador Connector API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"sessionToken": []}],
        "components": {
            "securitySchemes": {
                "sessionToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Shopify App Bridge session token",
                }
            },
            "schemas": {**SCHEMAS, **openapi_engagement.SCHEMAS},
        },
        "paths": {
            "/shop": {
                "get": _op("The installation and its webhook intake health", _json(_ref("Shop")))
            },
            "/privacy/requests": {"get": _op("Privacy requests received (exports included)")},
            "/privacy/requests/{request_id}": {
                "get": _op(
                    "One privacy request",
                    _json(_ref("PrivacyRequest")),
                    params=[_path_id("request_id")],
                )
            },
            "/ambassadors": {
                "get": _op(
                    "List ambassadors, newest first or by `sort` (keyset cursor pagination; "
                    "ties broken by id)",
                    _json(_ref("AmbassadorPage")),
                    params=[
                        _query("status", "applied, active, paused or removed"),
                        _query("tier", "tier id or name"),
                        _query("q", "email, name or code"),
                        _query(
                            "band",
                            "engagement band (not scored yet counts as not engaged)",
                            {"type": "string", "enum": list(ENGAGEMENT_BANDS)},
                        ),
                        _query(
                            "sort",
                            "sort key, '-' for descending; ambassadors with nothing credited "
                            "or not scored yet sort below every value; default -created",
                            {
                                "type": "string",
                                "enum": [f"{d}{k}" for k in AMBASSADOR_SORTS for d in ("", "-")],
                            },
                        ),
                        _query("cursor", "next_cursor of the previous page"),
                        _query("limit", "1 to 200", {"type": "integer"}),
                    ],
                ),
                "post": _op(
                    "Enrol a customer (or a person by email) and issue their code; "
                    "200 with the existing ambassador when already enrolled",
                    amb,
                    body=_ref("Enrolment"),
                    status="201",
                ),
            },
            "/ambassadors/bulk": {
                "post": _op(
                    "Enrol many customers as a background task",
                    _json({"type": "object", "properties": {"task_id": {"type": "integer"}}}),
                    body={
                        "type": "object",
                        "required": ["customer_ids"],
                        "properties": {
                            "customer_ids": {"type": "array", "items": {"type": "string"}}
                        },
                    },
                    status="202",
                )
            },
            "/ambassadors/invitations": {
                "post": _op(
                    "Invite ambassadors to their portal (code, share link, a sign-in link valid "
                    "72 hours) through the notification outbox; once per idempotency_key; paused, "
                    "applied and removed ambassadors refused with the reason",
                    _json({"type": "object", "properties": {
                        "invited": {"type": "integer"},
                        "items": {"type": "array", "items": {"type": "object", "properties": {
                            "ambassador_id": {"type": "integer"},
                            "outcome": {"type": "string",
                                        "enum": ["invited", "already_invited", "refused"]},
                            "reason": {"type": "string", "nullable": True}}}}}}),
                    body={
                        "type": "object",
                        "required": ["ambassador_ids", "idempotency_key"],
                        "properties": {
                            "ambassador_ids": {"type": "array", "minItems": 1, "maxItems": 200,
                                               "items": {"type": "integer"}},
                            "idempotency_key": {"type": "string",
                                                "pattern": "^[A-Za-z0-9_-]{8,64}$"},
                        },
                    },
                )
            },
            "/ambassadors/import": {"post": {
                "summary": "Enrol from a CSV file; a per-row report of what was rejected and why",
                "requestBody": {"required": True, "content": {"text/csv": {
                    "schema": {"type": "string"}}}},
                "responses": {"200": {"description": "OK"}, **_ERRORS}}},
            "/ambassadors/{ambassador_id}": {"get": _op("One ambassador", amb, params=aid)},
            "/ambassadors/{ambassador_id}/history": {
                "get": _op("The ambassador's audit trail", params=aid)
            },
            "/ambassadors/{ambassador_id}/status": {
                "post": _op(
                    "Change status (the code follows)",
                    amb,
                    params=aid,
                    body={
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
                    },
                )
            },
            "/ambassadors/{ambassador_id}/tier": {
                "post": _op(
                    "Set the tier by hand (locked against evaluation)",
                    amb,
                    params=aid,
                    body={
                        "type": "object",
                        "properties": {
                            "tier_id": {"type": "integer", "nullable": True},
                            "locked": {"type": "boolean"},
                            "reason": {"type": "string"},
                        },
                    },
                )
            },
            "/ambassadors/{ambassador_id}/code": {
                "post": _op(
                    "Choose or rotate the code",
                    amb,
                    params=aid,
                    body={
                        "type": "object",
                        "required": ["code"],
                        "properties": {"code": {"type": "string"}},
                    },
                )
            },
            "/tasks/{task_id}": {
                "get": _op(
                    "Progress of a background task",
                    _json(_ref("Task")),
                    params=[_path_id("task_id")],
                )
            },
            "/candidates": {
                "get": _op(
                    "Best customers not enrolled yet, ranked now (stores of up to 2,500 "
                    "customers; 409 scan_required above: use a scan)",
                    _json(
                        {
                            "type": "object",
                            "properties": {"items": {"type": "array", "items": _ref("Candidate")}},
                        }
                    ),
                    params=[_query("limit", "1 to 500", {"type": "integer"})],
                )
            },
            "/candidates/scans": {
                "post": _op(
                    "Rank every customer in the background (a Shopify bulk operation for large "
                    "stores); follow the scan for progress and the result",
                    _json(
                        {
                            "type": "object",
                            "properties": {
                                "scan_id": {"type": "integer"},
                                "status_url": {"type": "string"},
                            },
                        }
                    ),
                    body={
                        "type": "object",
                        "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 500}},
                    },
                    status="202",
                )
            },
            "/candidates/scans/{scan_id}": {
                "get": _op(
                    "A scan: progress (customers read), then the ranked candidates or the error",
                    _json(_ref("CandidateScan")),
                    params=[_path_id("scan_id")],
                )
            },
            "/program/settings": {
                "get": _op("Program settings", _json(_ref("ProgramSettings"))),
                "patch": _op(
                    "Change program settings (partial)",
                    _json(_ref("ProgramSettings")),
                    body=_ref("ProgramSettings"),
                ),
            },
            "/tiers": {
                "get": _op("Tiers, lowest first"),
                "post": _op("Create a tier", _json(_ref("Tier")), body=_ref("Tier"), status="201"),
            },
            "/tiers/{tier_id}": {
                "put": _op(
                    "Replace a tier",
                    _json(_ref("Tier")),
                    body=_ref("Tier"),
                    params=[_path_id("tier_id")],
                ),
                "delete": _op(
                    "Archive a tier",
                    {"description": "Archived"},
                    status="204",
                    params=[_path_id("tier_id")],
                ),
            },
            "/orders/{order_id}/attribution": {"get": _op(
                "Who was credited for an order by which rule, or why nobody was",
                _json(_ref("Attribution")), params=[{
                    "name": "order_id", "in": "path", "required": True,
                    "description": "numeric id of the webhook payload, or the order GID",
                    "schema": {"type": "string"}}])},
            "/ambassadors/{ambassador_id}/ledger": {"get": _op(
                "The ambassador's reward ledger, newest first", params=[
                    *aid, _query("cursor", "next_cursor of the previous page")])},
            "/applications": {
                "get": _op(
                    "The review queue of storefront applications, oldest first",
                    _json(_ref("ApplicationPage")),
                    params=[
                        _query("status", "pending, approved or rejected (all when absent)"),
                        _query("cursor", "next_cursor of the previous page"),
                        _query("limit", "1 to 200", {"type": "integer"}),
                    ],
                )
            },
            "/applications/{application_id}": {
                "get": _op(
                    "One application with its votes",
                    _json(_ref("ApplicationReview")),
                    params=[_path_id("application_id")],
                )
            },
            "/applications/{application_id}/votes": {
                "post": _op(
                    "Vote as the signed-in staff member (a second vote replaces the first); the "
                    "vote that reaches approvals_required approves. 409 once decided",
                    _json(_ref("ApplicationReview")),
                    params=[_path_id("application_id")],
                    body={
                        "type": "object",
                        "required": ["vote"],
                        "properties": {
                            "vote": {"type": "string", "enum": ["approve", "reject"]},
                            "comment": {"type": "string", "maxLength": 1000},
                        },
                    },
                )
            },
            "/applications/{application_id}/approve": {
                "post": _op(
                    "Approve now: the ambassador becomes active and their code is issued. "
                    "409 once decided",
                    _json(_ref("ApplicationReview")),
                    params=[_path_id("application_id")],
                    body={
                        "type": "object",
                        "description": "optional: an empty body approves in the entry tier",
                        "properties": {"tier_id": {"type": "integer", "description": "start tier"}},
                    },
                )
            },
            "/applications/{application_id}/reject": {
                "post": _op(
                    "Reject with a reason, which is sent to the applicant with the date they "
                    "may apply again. 409 once decided",
                    _json(_ref("ApplicationReview")),
                    params=[_path_id("application_id")],
                    body={
                        "type": "object",
                        "required": ["reason"],
                        "properties": {"reason": {"type": "string", "maxLength": 1000}},
                    },
                )
            },
            "/health/webhooks": {
                "get": _op(
                    "Webhook intake health: inbox backlog, lag, and what reconciliation found",
                    _json(_ref("WebhookHealth")),
                )
            },
            "/health/system": {
                "get": _op(
                    "System health: the shop's webhook backlog and parked deliveries, and the "
                    "background queues (counts only)",
                    _json(_SYSTEM_HEALTH),
                )
            },
            "/health/shopify-budget": {
                "get": _op(
                    "The shop's Shopify Admin GraphQL bucket as last reported (throttleStatus)",
                    _json({"type": "object", "properties": {"budget": {
                        "type": "object", "nullable": True, "properties": {
                            "currently_available": {"type": "number"},
                            "maximum_available": {"type": "number"},
                            "used": {"type": "number"},
                            "restore_rate": {"type": "number"},
                            "read_at": _TS,
                            "age_seconds": {"type": "number"}}}}}),
                )
            },
            "/health/jobs/failed": {
                "get": _op(
                    "The shop's background jobs that failed, newest first, with a one-line error",
                    _json({"type": "object", "properties": {
                        "mode": {"type": "string", "enum": ["rq", "in-process", "unavailable"]},
                        "items": {"type": "array", "items": {"type": "object", "properties": {
                            "id": {"type": "string"}, "job": {"type": "string"},
                            "queue": {"type": "string"}, "failed_at": _TS,
                            "error": {"type": "string"}}}}}}),
                )
            },
            "/health/jobs/{job_id}/retry": {
                "post": {
                    "summary": "Queue a failed job of the shop again (once: requeued is false "
                    "when it was already retried)",
                    "parameters": [{"name": "job_id", "in": "path", "required": True,
                                    "schema": {"type": "string",
                                               "pattern": "^[A-Za-z0-9_-]{1,200}$"}}],
                    "responses": {
                        "200": _json({"type": "object", "properties": {
                            "id": {"type": "string"}, "requeued": {"type": "boolean"}}}),
                        **_ERRORS,
                    },
                }
            },
            "/health/deliveries/{delivery_id}/replay": {
                "post": {
                    "summary": "Try a parked webhook delivery again, with fresh attempts",
                    "parameters": [_path_id("delivery_id")],
                    "responses": {
                        "200": _json({"type": "object", "properties": {
                            "id": {"type": "integer"}, "replayed": {"type": "boolean"}}}),
                        **_ERRORS,
                    },
                }
            },
            "/ambassadors/{ambassador_id}/salesforce": {
                "get": _op(
                    "The ambassador's Salesforce Contact: sync state, Contact id, last error",
                    _json({"type": "object", "properties": {
                        "state": {"type": "string",
                                  "enum": ["synced", "retry", "parked", "not_synced"]},
                        "contact_id": {"type": "string", "nullable": True},
                        "synced_at": _TS,
                        "error_code": {"type": "string", "nullable": True},
                        "error_message": {"type": "string", "nullable": True},
                        "retry_at": _TS,
                        "note": {"type": "string", "nullable": True},
                    }}),
                    params=[_path_id("ambassador_id")],
                )
            },
            "/analytics/timeseries": {
                "get": _op(
                    "Orders credited to ambassadors and revenue credited per UTC day "
                    "(every day of the range present)",
                    _json(_TIMESERIES),
                    params=[_query("days", "days back, today included (1-366, default 30)",
                                   {"type": "integer", "minimum": 1, "maximum": 366})],
                )
            },
            "/analytics/program": {
                "get": _op(
                    "Ambassadors by status, active ambassadors by tier, top ambassadors by "
                    "credited revenue",
                    _json(_PROGRAM_FIGURES),
                    params=[_query("limit", "how many top ambassadors (1-50, default 10)",
                                   {"type": "integer", "minimum": 1, "maximum": 50})],
                )
            },
            "/tiers/preview": {
                "post": _op(
                    "What-if: where everyone would land with these tiers (nothing saved)",
                    body={
                        "type": "object",
                        "properties": {"tiers": {"type": "array", "items": _ref("Tier")}},
                    },
                )
            },
            "/salesforce": {
                "get": _op(
                    "Salesforce: connection state, field check, API budget, last sync, records "
                    "synced and parked (with Salesforce's reasons)",
                    _json(_ref("SalesforceState")),
                )
            },
            "/salesforce/connect": {
                "post": _op(
                    "Start connecting an org (OAuth web server flow with PKCE): open "
                    "authorize_url in a new top-level tab; Salesforce returns to "
                    "/salesforce/callback, then the backfill starts by itself",
                    _json(
                        {
                            "type": "object",
                            "required": ["authorize_url"],
                            "properties": {"authorize_url": {"type": "string"}},
                        }
                    ),
                )
            },
            "/salesforce/disconnect": {
                "post": _op(
                    "Disconnect: tokens dropped and revoked at Salesforce",
                    _json({"type": "object", "properties": {"disconnected": {"type": "boolean"}}}),
                )
            },
            "/salesforce/sync": {
                "post": _op("Queue a sync of the changed ambassadors now", status="202")
            },
            "/salesforce/retry": {
                "post": _op(
                    "Retry every parked record (and those backing off) now",
                    _json({"type": "object", "properties": {"retried": {"type": "integer"}}}),
                    status="202",
                )
            },
            "/salesforce/fields/check": {
                "post": _op(
                    "Describe Contact: which Ambassador fields are missing or not writable "
                    "(assigns the permission set to the connected user when it can)",
                    _json(_ref("SalesforceFields")),
                )
            },
            "/salesforce/provision": {
                "post": _op(
                    "Create the fields and the permission set through the Metadata API",
                    _json({"type": "object", "properties": {"deploy_id": {"type": "string"}}}),
                    status="202",
                )
            },
            "/salesforce/provision/{deploy_id}": {
                "get": _op(
                    "Progress of a provisioning deploy (fields checked again once it succeeded)",
                    params=[
                        {
                            "name": "deploy_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                )
            },
            **payout_paths(),
            **openapi_engagement.paths(),
        },
    }
