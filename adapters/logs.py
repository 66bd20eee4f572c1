"""Structured logs: one line per event, ``event key=value ...`` from the record's ``extra``.

Events are dotted names (``shopify.webhook.duplicate``); context goes in ``extra``. Tokens and
secrets are never passed to a logger; a filter masks anything token-shaped that slips through.
"""

from __future__ import annotations

import json
import logging
import re
import sys

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SECRETISH = re.compile(
    r"\b(shpat_|shpca_|shprt_|shpss_|atkn_)[A-Za-z0-9_-]{8,}|Bearer\s+[A-Za-z0-9._-]{16,}"
    r"|(access_token|refresh_token|client_secret|password)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with anything token-shaped (Shopify and Salesforce tokens, bearer strings,
    ``access_token=...``-style pairs) replaced by ``[REDACTED]``."""
    return _SECRETISH.sub("[REDACTED]", text)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        parts = [
            self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            record.levelname,
            record.name,
            record.getMessage(),
        ]
        parts += [f"{k}={json.dumps(v, default=str)}" for k, v in sorted(extras.items())]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, KeyValueFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level)
