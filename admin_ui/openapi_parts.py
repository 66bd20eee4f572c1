"""Building blocks of the OpenAPI document, shared by :mod:`admin_ui.openapi` and the feature
modules that contribute paths to it (:mod:`admin_ui.openapi_engagement`,
:mod:`admin_ui.openapi_payouts`)."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = json_response(ref("Error"), "Error")
ERRORS = {code: ERROR for code in ("400", "401", "403", "404", "409", "422")}
MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal string"}
TS = {"type": "string", "format": "date-time", "nullable": True}


def operation(
    summary: str,
    ok: dict[str, Any] | None = None,
    *,
    body: dict[str, Any] | None = None,
    status: str = "200",
    params: list[dict[str, Any]] | None = None,
    tags: list[str] | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary}
    if tags:
        op["tags"] = tags
    op["responses"] = {status: ok or {"description": "OK"}, **(errors or ERRORS)}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }
