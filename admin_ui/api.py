"""``/api/v1``: the JSON API of the embedded admin (and of merchants' own tools).

Auth: ``Authorization: Bearer <Shopify session token>``. Every handler reads the shop from the
verified token (``g.shop``) and scopes every query to it: a token for shop A never sees shop B.
Errors: ``{"error": {"code", "message"}}`` with a fitting 4xx.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from admin_ui.openapi import openapi_document
from connector.ports import PlatformError, PlatformRetryable, PrivacyRequest
from connector.services.ambassadors import ProgramError
from connector.services.installation import NotInstalled

log = logging.getLogger(__name__)

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

PUBLIC_ENDPOINTS = {"api_v1.openapi"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def container() -> Any:
    """The app's container (adapters wired by bootstrap)."""
    return current_app.extensions["ambassador"]


def json_body(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; 400 for anything else (``optional``: an empty body is {})."""
    if optional and not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return data


def actor() -> str:
    """Who acts, for audit trails: the merchant user of the session token."""
    return f"merchant:{g.get('user_id') or 'admin'}"


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a core service, turning its errors into API errors (never a 500 for bad input)."""
    try:
        return fn(*args, **kwargs)
    except ProgramError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    except NotInstalled:
        raise ApiError(403, "not_installed", "open the app in Shopify to reconnect it") from None
    except PlatformRetryable as exc:
        raise ApiError(503, "shopify_unavailable", str(exc), **{"Retry-After": "30"}) from None
    except PlatformError as exc:
        raise ApiError(502, "shopify_error", str(exc)) from None


def encode_cursor(kind: str, last_id: int | None) -> str:
    """An opaque keyset cursor: the list's kind and the last id seen."""
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The last id of a cursor this API gave for this kind of list; 422 for anything else."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != kind or not value.isdigit() or len(value) > 18:
            raise ValueError(raw)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "invalid_cursor", "the cursor is not one this API gave") from None


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    response = jsonify({"error": {"code": exc.code, "message": exc.message}})
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    code = (exc.name or "error").lower().replace(" ", "_")
    response = jsonify({"error": {"code": code, "message": exc.description}})
    response.status_code = exc.code or 400
    return response


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    c = current_app.extensions["ambassador"]
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else None
    verified = c.verifier.session_token(token)
    if not verified.ok:
        raise ApiError(
            401,
            "invalid_session",
            "missing, invalid or expired session token",
            **{"X-Shopify-Retry-Invalid-Session-Request": "1"},
        )
    with c.uow() as uow:
        shop = uow.shops.get(verified.shop)
    if shop is None or not shop.installed:
        raise ApiError(403, "not_installed", "the app is not installed on this shop; open it first")
    g.shop = shop
    # The Shopify staff member behind the token (votes and audit entries name them).
    g.user_id = str((verified.claims or {}).get("sub") or "") or None


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


@bp.get("/shop")
def shop() -> Any:
    """The installation and the health of its webhook intake."""
    c = current_app.extensions["ambassador"]
    with c.uow() as uow:
        stats = uow.inbox.stats(c.clock.now(), g.shop.domain)
    s = g.shop
    return jsonify(
        {
            "domain": s.domain,
            "name": s.name,
            "currency": s.currency,
            "status": s.status.value,
            "installed_at": _iso(s.installed_at),
            "webhooks_registered_at": _iso(s.webhooks_registered_at),
            "webhooks": {
                "pending": stats.pending,
                "processing": stats.processing,
                "failed": stats.failed,
                "oldest_pending_at": _iso(stats.oldest_pending_at),
                "last_received_at": _iso(stats.last_received_at),
            },
        }
    )


@bp.get("/privacy/requests")
def privacy_requests() -> Any:
    """Privacy requests Shopify sent for this shop, newest first (exports included)."""
    c = current_app.extensions["ambassador"]
    with c.uow() as uow:
        items = uow.privacy_requests.list(g.shop.domain)
    return jsonify({"items": [_privacy(r) for r in items]})


@bp.get("/privacy/requests/<int:request_id>")
def privacy_request(request_id: int) -> Any:
    c = current_app.extensions["ambassador"]
    with c.uow() as uow:
        item = uow.privacy_requests.get(g.shop.domain, request_id)
    if item is None:
        raise ApiError(404, "not_found", "no such privacy request")
    return jsonify(_privacy(item))


def _privacy(r: PrivacyRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "topic": r.topic,
        "customer_id": r.customer_id,
        "received_at": _iso(r.received_at),
        "completed_at": _iso(r.completed_at),
        "summary": r.summary,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
