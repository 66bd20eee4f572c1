"""The two error shapes of the Salesforce REST API.

* A request-level error (:class:`ApiError`): an HTTP 4xx/5xx whose body is a JSON list of
  ``{"message", "errorCode"[, "fields"]}`` (``fields`` only where Salesforce sends it).
* A per-record error (:class:`RecordError`) inside a 200 answer of sObject Collections or a
  Bulk API result row: ``{"statusCode", "message", "fields"}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """A whole request fails: ``status`` and a one-element error list."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            entry["fields"] = list(self.fields)
        return [entry]


def not_found(message: str = "The requested resource does not exist") -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


@dataclass
class RecordError(Exception):
    """One record of a batch fails (the others may succeed)."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_bulk(self) -> str:
        """The ``sf__Error`` cell of a Bulk API 2.0 failed row: ``CODE:message:fields --``."""
        return f"{self.status_code}:{self.message}:{','.join(self.fields)} --"
