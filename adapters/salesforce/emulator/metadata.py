"""Metadata API deploy (placeholder)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint


def metadata_blueprint(emu: Any) -> Blueprint:
    return Blueprint("metadata", __name__)
