"""Bulk API 2.0 ingest (placeholder, filled in below)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint


def bulk_blueprint(emu: Any) -> Blueprint:
    return Blueprint("bulk", __name__)
