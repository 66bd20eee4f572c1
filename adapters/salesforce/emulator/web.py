"""Small HTTP helpers shared by the emulator's route modules."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from .errors import ApiError

JSON_TYPE = "application/json;charset=UTF-8"


def api_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer with Salesforce's content type."""
    response = jsonify(body)
    response.status_code = status
    response.headers["Content-Type"] = JSON_TYPE
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def json_body() -> Any:
    """The request's JSON (None for an empty body); ApiError JSON_PARSER_ERROR if unreadable."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    body = request.get_json(force=True, silent=True)
    if body is None:
        first = raw.strip()[:1].decode(errors="replace")
        raise ApiError(
            400,
            "JSON_PARSER_ERROR",
            f"Unexpected character ('{first}'): was expecting a JSON value",
        )
    return body
