"""Run the emulator on a local port in a daemon thread (werkzeug's threaded server)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .admin_schema import admin_schema
from .app import create_emulator_app
from .emulator import ShopifyEmulator

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to this module's logger at DEBUG, not to stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("shopify_emulator.request", extra={"line": self.requestline, "status": code})


class EmulatorServer:
    """The running server: ``shutdown()`` stops it (and cuts injected ``timeout`` sleeps);
    anything else is the underlying werkzeug server's."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread, stop: threading.Event):
        self._server = server
        self.thread = thread
        self._stop = stop

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def shutdown(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self.thread.join(timeout=5)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def serve_in_thread(
    emu: ShopifyEmulator, host: str = "127.0.0.1", port: int = 0
) -> tuple[EmulatorServer, str]:
    """Serve ``emu`` on ``host:port`` (0: any free port). Returns ``(server, base_url)``, e.g.
    ``"http://127.0.0.1:54321"``, and sets ``emu.base_url``."""
    # Build the Admin schema now, in the background, so the first GraphQL call is not the one
    # that waits a second for it.
    threading.Thread(target=admin_schema, name="shopify-emulator:schema", daemon=True).start()
    stop = threading.Event()
    app = create_emulator_app(emu, stop=stop)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
        name=f"shopify-emulator:{server.server_port}",
        daemon=True,
    )
    thread.start()
    base_url = f"http://{host}:{server.server_port}"
    emu.base_url = base_url
    return EmulatorServer(server, thread, stop), base_url
