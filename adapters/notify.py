"""Notifier backends (:class:`connector.ports.Notifier`).

``ConsoleNotifier`` is the default, for development and the demo: it writes each message to a
stream (standard output) instead of sending it. An email backend plugs in the same way (one
``send(to, subject, body)``), chosen in :func:`adapters.bootstrap.bootstrap`.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

log = logging.getLogger(__name__)


class ConsoleNotifier:
    """Prints messages instead of sending them. The message itself goes to the stream, never
    to the logs (which carry no personal data); the log line only says one was written."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # one message at a time, never interleaved

    def send(self, to: str, subject: str, body: str) -> None:
        stream = self._stream or sys.stdout
        text = f"--- message ---\nTo: {to}\nSubject: {subject}\n\n{body.rstrip()}\n--- end ---\n"
        with self._lock:
            stream.write(text)
            stream.flush()
        log.info("notify.console.written")
