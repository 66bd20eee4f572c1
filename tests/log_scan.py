"""Tokens never reach the logs: every log record of the whole test run is scanned, raw (before
the production formatter's redaction, which is only a safety net), for the shapes of the tokens
the platforms issue. Any hit fails the run at the end, naming the logger.

Shapes: Shopify access, refresh, user and session tokens (``shpat_``/``shprt_``/``shpua_``/
``shpss_`` + hex, as the emulator issues them), Salesforce access tokens (``<org id>!AQ…``) and
refresh tokens (``5Aep861…``).
"""

from __future__ import annotations

import logging
import re

SECRET = re.compile(
    r"shp(?:at|rt|ua|ss)_[0-9a-f]{16,}|00D\w{12,15}![\w.-]{20,}|5Aep861[\w.-]{20,}"
)
_STANDARD = set(vars(logging.makeLogRecord({})))  # the attributes every record has


class SecretScan(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is scanned as it is
            text = f"{record.msg} {record.args}"
        extra = " ".join(f"{k}={v!r}" for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        found = SECRET.search(f"{text} {extra}")
        if found:
            self.leaks.append(f"{record.name} ({record.levelname}): {found.group(0)[:10]}...")


SCAN = SecretScan()
