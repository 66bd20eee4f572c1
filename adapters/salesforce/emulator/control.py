"""Emulator-only pages and a JSON control API for the demo (tests call the Python methods).
None of this exists on Salesforce; none of it is charged to the API pool or logged as a call.

* ``GET /`` — the org's Contacts with their Ambassador fields, as a CRM user would see them.
* ``GET /_emulator/state`` — a summary (API usage, fields, permission sets, counts).
* ``GET /_emulator/contacts``, ``POST /_emulator/contacts`` (seed one: JSON field values).
* ``GET /_emulator/writes`` — :meth:`SalesforceEmulator.write_log`.
* ``POST /_emulator/faults`` ``{"kind": ..., ...}`` and ``DELETE /_emulator/faults``: kinds
  ``expire_sessions``, ``revoke_refresh_tokens``, ``lock_records`` (``count``), ``lock_calls``
  (``count``), ``exhaust_pool``, ``api_usage`` (``used``, ``limit``), ``down``, ``up``,
  ``latency`` (``seconds``), ``lose_answers`` (``count``, ``how``: ``reset`` or ``5xx``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from markupsafe import escape

from .emulator import SalesforceEmulator
from .errors import ApiError, RecordError
from .schema import to_json_value
from .web import api_json


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: to_json_value(v) for k, v in record.items()}


def control_blueprint(emu: SalesforceEmulator) -> Blueprint:
    bp = Blueprint("control", __name__)

    @bp.get("/")
    def org_page() -> ResponseReturnValue:
        columns = ["Name", "Email"] + [n for n in emu.field_names() if n.startswith("Ambassador_")]
        rows = "".join(
            "<tr>"
            + f"<td><code>{escape(c['Id'])}</code></td>"
            + "".join(f"<td>{escape(to_json_value(c.get(n)) or '')}</td>" for n in columns)
            + "</tr>"
            for c in emu.contacts()
        )
        head = "".join(f"<th>{escape(n)}</th>" for n in ["Id", *columns])
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>Salesforce emulator: Contacts</title></head>"
            "<body style='font-family: sans-serif'><h1>Contacts</h1>"
            f"<p>Emulated org {escape(emu.org_id)} &middot; API usage {escape(emu.limit_info())}"
            "</p><table border='1' cellpadding='4' style='border-collapse: collapse'>"
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></body></html>"
        )
        return Response(page, 200, mimetype="text/html")

    @bp.get("/_emulator/state")
    def state() -> ResponseReturnValue:
        with emu.lock:
            names = emu.permission_set_names()
            return api_json(
                {
                    "org_id": emu.org_id,
                    "user_id": emu.user.id,
                    "api_usage": emu.api_usage,
                    "daily_api_limit": emu.daily_api_limit,
                    "contacts": len(emu.contacts()),
                    "contact_fields": emu.field_names(),
                    "permission_sets": names,
                    "assigned_permission_sets": [n for n in names if emu.is_assigned(n)],
                    "writes": len(emu.write_log()),
                    "bulk_jobs": len(emu.bulk_jobs),
                    "deploys": len(emu.deploys),
                }
            )

    @bp.get("/_emulator/contacts")
    def contacts() -> ResponseReturnValue:
        return api_json([_jsonable(c) for c in emu.contacts()])

    @bp.post("/_emulator/contacts")
    def add_contact() -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return api_json({"error": "a JSON object of field values is required"}, 400)
        try:
            created = emu.add_contact(**body)
        except (KeyError, TypeError, ApiError, RecordError) as error:
            return api_json({"error": str(error)}, 400)
        return api_json(_jsonable(created), 201)

    @bp.get("/_emulator/writes")
    def writes() -> ResponseReturnValue:
        return api_json(emu.write_log())

    @bp.post("/_emulator/faults")
    def faults() -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        kind = body.get("kind")
        try:
            if kind == "expire_sessions":
                emu.expire_sessions()
            elif kind == "revoke_refresh_tokens":
                emu.revoke_refresh_token()
            elif kind == "lock_records":
                emu.fail_next_records_with_lock(int(body.get("count", 1)))
            elif kind == "lock_calls":
                emu.fail_next_calls_with_lock(int(body.get("count", 1)))
            elif kind == "exhaust_pool":
                emu.exhaust_api_pool()
            elif kind == "api_usage":
                limit = body.get("limit")
                emu.set_api_usage(int(body["used"]), int(limit) if limit is not None else None)
            elif kind == "down":
                emu.set_down(True)
            elif kind == "up":
                emu.set_down(False)
            elif kind == "lose_answers":
                emu.lose_next_write_answers(
                    int(body.get("count", 1)), how=str(body.get("how", "reset"))
                )
            elif kind == "latency":
                emu.set_latency(float(body.get("seconds", 0)))
            else:
                return api_json({"error": f"unknown fault kind {kind!r}"}, 400)
        except (KeyError, TypeError, ValueError) as error:
            return api_json({"error": f"bad fault arguments: {error}"}, 400)
        return api_json({"ok": True})

    @bp.delete("/_emulator/faults")
    def clear_faults() -> ResponseReturnValue:
        emu.clear_faults()
        return api_json({"ok": True})

    return bp
