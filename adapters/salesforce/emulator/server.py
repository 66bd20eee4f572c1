"""Run the emulator on a local port in a daemon thread (werkzeug's threaded server), over HTTP
or, with ``tls=True``, over HTTPS with a throw-away self-signed certificate (for clients that
insist on ``https://``, such as simple-salesforce, which builds every URL as
``https://{host}/...``)."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_emulator_app
from .emulator import SalesforceEmulator

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to this module's logger at DEBUG, not to stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("salesforce_emulator.request", extra={"line": self.requestline, "status": code})


class EmulatorServer:
    """The running server: ``shutdown()`` stops it (and cuts injected latency short).
    ``ca_file`` is the certificate to trust when served with ``tls=True`` (else None)."""

    def __init__(
        self,
        server: BaseWSGIServer,
        thread: threading.Thread,
        stop: threading.Event,
        ca_file: str | None,
    ) -> None:
        self._server = server
        self.thread = thread
        self._stop = stop
        self.ca_file = ca_file

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


def _self_signed(host: str) -> tuple[str, str]:
    """A certificate and key for ``host`` (IP or name) in a temporary directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="salesforce-emulator-"))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def serve_in_thread(
    emu: SalesforceEmulator, host: str = "127.0.0.1", port: int = 0, *, tls: bool = False
) -> tuple[EmulatorServer, str]:
    """Serve ``emu`` on ``host:port`` (0: any free port). Returns ``(server, base_url)``, e.g.
    ``"http://127.0.0.1:54321"``, and sets ``emu.base_url`` (the ``instance_url`` of its
    tokens). With ``tls=True`` the URL is ``https://`` and ``server.ca_file`` is the
    certificate a client must trust (``httpx.Client(verify=...)``, ``requests``' ``verify``)."""
    stop = threading.Event()
    app = create_emulator_app(emu, stop=stop)
    ssl_context = None
    ca_file = None
    if tls:
        ca_file, key_file = _self_signed(host)
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(ca_file, key_file)
    server = make_server(
        host, port, app, threaded=True, request_handler=_QuietHandler, ssl_context=ssl_context
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
        name=f"salesforce-emulator:{server.server_port}",
        daemon=True,
    )
    thread.start()
    scheme = "https" if tls else "http"
    base_url = f"{scheme}://{host}:{server.server_port}"
    emu.base_url = base_url
    return EmulatorServer(server, thread, stop, ca_file), base_url
