"""The OpenAPI paths of reward fulfilment (merged into the document of admin_ui.openapi)."""

from __future__ import annotations

from typing import Any

from admin_ui.openapi_parts import MONEY as _MONEY
from admin_ui.openapi_parts import TS as _TS
from admin_ui.openapi_parts import json_response as _json
from admin_ui.openapi_parts import operation as _op
from admin_ui.openapi_parts import path_id as _path_id
from admin_ui.openapi_parts import query as _query

_FORMS = ["cash", "store_credit", "gift_card", "discount_code", "free_product", "points"]
_STATES = ["awaiting_approval", "approved", "fulfilling", "fulfilled", "failed", "cancelled"]

PAYOUT = {
    "type": "object",
    "required": ["id", "ambassador_id", "form", "state", "amount", "value", "currency"],
    "properties": {
        "id": {"type": "integer"},
        "ambassador_id": {"type": "integer"},
        "batch_id": {"type": "integer", "nullable": True},
        "form": {"type": "string", "enum": _FORMS},
        "state": {"type": "string", "enum": _STATES},
        "amount": {**_MONEY, "description": "what leaves the ambassador's balance"},
        "value": {**_MONEY, "description": "what reaches the ambassador (bonus included)"},
        "currency": {"type": "string"},
        "idempotency_key": {"type": "string"},
        "external_id": {"type": "string", "nullable": True},
        "external_hint": {"type": "string", "nullable": True},
        "attempts": {"type": "integer"},
        "retry_at": _TS,
        "error_code": {"type": "string", "nullable": True},
        "error": {"type": "string", "nullable": True},
        "created_at": _TS,
        "updated_at": _TS,
        "fulfilled_at": _TS,
    },
}

BATCH = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "period": {"type": "string"},
        "created_at": _TS,
        "approved_at": _TS,
        "exported_at": _TS,
        "paid_at": _TS,
        "totals": {"type": "object"},
        "states": {"type": "object"},
    },
}


def payout_paths() -> dict[str, Any]:
    pid = [_path_id("payout_id")]
    bid = [_path_id("batch_id")]
    aid = [_path_id("ambassador_id")]
    payout = _json(PAYOUT)
    return {
        "/payouts": {
            "get": _op(
                "Payouts, newest first (state=failed is the dead-letter view)",
                _json(
                    {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": PAYOUT},
                            "next_cursor": {"type": "string", "nullable": True},
                        },
                    }
                ),
                params=[
                    _query("state", "comma list of states"),
                    _query("ambassador_id", "one ambassador's payouts"),
                    _query("batch_id", "one batch's payouts"),
                    _query("cursor", "next_cursor of the previous page"),
                ],
            )
        },
        "/payouts/{payout_id}": {
            "get": _op("One payout with its state history", payout, params=pid)
        },
        "/payouts/{payout_id}/approve": {
            "post": _op("Approve a payout awaiting approval (409 otherwise)", payout, params=pid)
        },
        "/payouts/{payout_id}/cancel": {
            "post": _op(
                "Reject, withdraw or release a payout: its amount returns to the balance",
                payout,
                params=pid,
                body={"type": "object", "properties": {"reason": {"type": "string"}}},
            )
        },
        "/payouts/{payout_id}/replay": {
            "post": _op("Send a failed payout back for fulfilment", payout, params=pid)
        },
        "/payouts/runs": {
            "post": _op(
                "Run payouts now (one run per period name; 409 if it exists)",
                status="201",
                body={
                    "type": "object",
                    "properties": {"period": {"type": "string", "maxLength": 40}},
                },
            )
        },
        "/payouts/batches": {
            "get": _op(
                "Payout batches, newest first",
                _json(
                    {"type": "object", "properties": {"items": {"type": "array", "items": BATCH}}}
                ),
            )
        },
        "/payouts/batches/{batch_id}/approve": {
            "post": _op(
                "Approve every payout of the batch awaiting approval", _json(BATCH), params=bid
            )
        },
        "/payouts/batches/{batch_id}/export": {
            "get": _op(
                "The batch's approved cash payouts as CSV (PayPal Payouts file or bank sheet)",
                {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
                params=[*bid, _query("format", "paypal (default) or bank")],
            )
        },
        "/payouts/batches/{batch_id}/paid": {
            "post": _op("Mark the batch's exported cash payouts paid (idempotent)", params=bid)
        },
        "/payouts/budget": {"get": _op("What the program owes by form, in hold, delivered")},
        "/ambassadors/{ambassador_id}/rewards": {
            "get": _op(
                "The ambassador's rewards: pending and when it unlocks, payable, points, form, "
                "next payout date, payouts",
                params=aid,
            )
        },
        "/ambassadors/{ambassador_id}/payout-preference": {
            "put": _op(
                "Choose the form this ambassador is paid in",
                params=aid,
                body={
                    "type": "object",
                    "required": ["form"],
                    "properties": {
                        "form": {"type": "string", "enum": _FORMS},
                        "paypal_email": {"type": "string", "format": "email"},
                    },
                },
            )
        },
        "/ambassadors/{ambassador_id}/redemptions": {
            "post": _op(
                "Redeem points for a reward of another form",
                payout,
                status="201",
                params=aid,
                body={
                    "type": "object",
                    "required": ["form", "points"],
                    "properties": {
                        "form": {"type": "string", "enum": _FORMS},
                        "points": {"type": "integer", "minimum": 1},
                    },
                },
            )
        },
    }
