"""The emulator's HTTP face: a Flask WSGI app serving Shopify's routes under ``/{shop}``.

Routes (``{shop}`` is a ``*.myshopify.com`` domain; an unknown shop is a 404 as on Shopify):

* ``GET  /{shop}/admin/oauth/authorize`` – the merchant approves; 302 to ``redirect_uri``
  with ``code``, ``hmac``, ``host``, ``shop``, ``state``, ``timestamp``.
* ``POST /{shop}/admin/oauth/access_token`` – authorization code, token exchange, refresh
  (JSON or form body).
* ``POST /{shop}/admin/api/{version}/graphql.json`` – Admin GraphQL (``X-Shopify-Access-Token``).
* ``GET  /{shop}/admin/apps/{handle}`` – open the embedded app: 302 to the app URL with an
  id token, ``host`` and an HMAC-signed query.
* ``GET  /{shop}/discount/{code}?redirect=/path`` – shareable discount link: 302 with a
  ``discount_code`` cookie. ``POST /{shop}/cart/checkout`` – place an order (JSON: the
  arguments of :meth:`ShopifyEmulator.checkout`; the cookie's code when none is given).
  ``GET /{shop}/`` – a one-product storefront page for the demo.
* ``GET  /{shop}/_bulk/{id}.jsonl?expires=…&signature=…`` – a bulk operation's result file
  (the signed ``url`` / ``partialDataUrl`` of :mod:`.bulk`).
* Control API under ``/_emulator/`` and ``/{shop}/_emulator/`` (JSON), for tests and the demo.

Injected faults (:meth:`ShopifyEmulator.set_fault`) are applied here, before the request
reaches the emulator (or, with ``after``, once it has been carried out: the answer is lost).
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

from flask import Flask, Response, jsonify, redirect, request
from flask.typing import ResponseReturnValue

from .bulk import bulk_blueprint
from .control import NOT_FOUND, control_blueprint
from .emulator import Fault, ShopifyEmulator
from .storefront import storefront_blueprint


def create_emulator_app(emu: ShopifyEmulator, *, stop: threading.Event | None = None) -> Flask:
    """A WSGI app serving ``emu``. ``stop``, when set, cuts injected ``timeout`` sleeps short
    (``serve_in_thread`` sets it on shutdown)."""
    app = Flask("shopify_emulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    stopping = stop or threading.Event()

    @app.before_request
    def unknown_shop_is_404() -> ResponseReturnValue | None:
        shop = (request.view_args or {}).get("shop")
        if shop is not None and not emu.has_shop(shop):
            return jsonify(NOT_FOUND), 404
        return None

    def fault_response(shop: str, fault: Fault) -> ResponseReturnValue:
        if fault.kind == "timeout":
            emu.record_fault_call(shop, fault.kind, 504)  # recorded now: the client gives up first
            stopping.wait(fault.delay)
            return jsonify(errors="Gateway Timeout"), 504
        if fault.kind == "reset":
            emu.record_fault_call(shop, fault.kind, None)
            _reset_connection()
            return Response(b"", 500)
        if fault.kind == "429" or fault.kind == "throttled":
            emu.record_fault_call(shop, "429", 429)
            body = jsonify(
                errors="Exceeded 2 calls per second for api client. Reduce request "
                "rates to resume uninterrupted service."
            )
            return body, 429, {"Retry-After": str(fault.retry_after)}
        emu.record_fault_call(shop, fault.kind, fault.status)
        return jsonify(errors="Internal Server Error"), fault.status

    # --- OAuth ---------------------------------------------------------------------------

    @app.get("/<shop>/admin/oauth/authorize")
    def authorize(shop: str) -> ResponseReturnValue:
        params: dict[str, Any] = request.args.to_dict()
        params["grant_options[]"] = request.args.getlist("grant_options[]")
        status, target = emu.authorize(shop, params)
        if status == 302:
            return redirect(target, 302)
        return Response(target, status, mimetype="text/plain")

    @app.post("/<shop>/admin/oauth/access_token")
    def access_token(shop: str) -> ResponseReturnValue:
        fault = emu.take_fault("token")
        if fault is not None:
            return fault_response(shop, fault)
        params: dict[str, Any] = request.args.to_dict()
        if request.is_json:
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return jsonify(error="invalid_request", error_description="Malformed JSON"), 400
            params.update(body)
        else:
            params.update(request.form.to_dict())
        status, answer = emu.token_endpoint(shop, params)
        return jsonify(answer), status

    @app.get("/<shop>/admin/apps/<handle>")
    def open_app(shop: str, handle: str) -> ResponseReturnValue:
        if not emu.app_url:
            return jsonify(NOT_FOUND), 404
        return redirect(emu.admin_launch_url(shop), 302)

    # --- Admin GraphQL -------------------------------------------------------------------

    @app.post("/<shop>/admin/api/<version>/graphql.json")
    def graphql(shop: str, version: str) -> ResponseReturnValue:
        fault = emu.take_fault("graphql")
        if fault is not None and fault.kind != "throttled" and not fault.after:
            return fault_response(shop, fault)
        if request.mimetype == "application/graphql":
            payload: Any = {"query": request.get_data(as_text=True)}
        else:
            payload = request.get_json(force=True, silent=True)
        result = emu.graphql_endpoint(
            shop,
            version,
            request.headers.get("X-Shopify-Access-Token"),
            payload,
            fault="throttled" if fault is not None and fault.kind == "throttled" else None,
        )
        if fault is not None and fault.after:
            return fault_response(shop, fault)  # carried out; the answer is lost
        return jsonify(result.body), result.status, result.headers

    app.register_blueprint(bulk_blueprint(emu.bulk_operation, emu.bulk))
    app.register_blueprint(storefront_blueprint(emu))
    app.register_blueprint(control_blueprint(emu))
    return app


def _reset_connection() -> None:
    """Drop the client's connection without an answer (linger 0: closing sends a RST)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
