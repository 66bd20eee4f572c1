"""The emulator's HTTP face: a Flask WSGI app serving the login host and the instance host of
one org (both on the same base URL). The package docstring lists the routes.

Every request first meets the injected faults ("down", latency); REST requests under
``/services/data/vNN.N/`` are then checked in Salesforce's order: API version (404 NOT_FOUND),
session (401 INVALID_SESSION_ID with ``WWW-Authenticate: Token``), daily pool (403
REQUEST_LIMIT_EXCEEDED, not charged), then charged and run. Every authenticated REST answer
carries ``Sforce-Limit-Info: api-usage=N/M``.
"""

from __future__ import annotations

import socket
import struct
import threading
from urllib.parse import urlencode

from flask import Flask, Response, g, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import escape
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .bulk import bulk_blueprint
from .control import control_blueprint
from .emulator import SalesforceEmulator
from .errors import ApiError
from .metadata import metadata_blueprint
from .web import api_json, json_body

#: Longest URI (and URI plus headers) Salesforce accepts, in bytes (knowledge article 000386264).
URI_LIMIT = 16384

_CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow Access?</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto">
<h1>Allow Access?</h1>
<p><strong>{username}</strong> ({org}, emulated Salesforce org)</p>
<p>The app <code>{client_id}</code> is asking to:</p>
<ul><li>Manage user data via APIs (api)</li>
<li>Perform requests at any time (refresh_token, offline_access)</li></ul>
<form method="post" action="/services/oauth2/authorize">
{hidden}
<button type="submit" name="decision" value="allow" id="oaapprove">Allow</button>
<button type="submit" name="decision" value="deny" id="oadeny">Deny</button>
</form></body></html>"""

_AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "prompt",
    "login_hint",
    "display",
)


def create_emulator_app(emu: SalesforceEmulator, *, stop: threading.Event | None = None) -> Flask:
    """A WSGI app serving ``emu``. ``stop``, when set, cuts injected latency short."""
    app = Flask("salesforce_emulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    stopping = stop or threading.Event()

    @app.before_request
    def gate() -> ResponseReturnValue | None:
        g.counted = False
        g.session = None
        if request.path == "/" or request.path.startswith("/_emulator/"):
            return None  # the emulator's own pages: never faulted, never charged
        # Salesforce: URI at most 16,384 bytes (414), URI and headers together too (431).
        uri = len(request.environ.get("RAW_URI") or request.full_path)
        headers = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
        if uri > URI_LIMIT:
            return Response("URI Too Long", 414, mimetype="text/plain")
        if uri + headers > URI_LIMIT:
            return Response("Request Header Fields Too Large", 431, mimetype="text/plain")
        down = emu.down_response()
        if down is not None:
            status, code = down
            return api_json(
                [
                    {
                        "message": "Service Unavailable: the org is under maintenance",
                        "errorCode": code,
                    }
                ],
                status,
            )
        if emu.latency:
            stopping.wait(emu.latency)
        parts = request.path.split("/")
        # ["", "services", "data", "vNN.N", ...]
        if len(parts) >= 4 and parts[1] == "services" and parts[2] == "data" and parts[3]:
            version = emu.check_version(parts[3])
            g.session = emu.authenticate(request.headers.get("Authorization"), version)
            emu.charge_api_call()  # 403 REQUEST_LIMIT_EXCEEDED (with the usage header) if spent
            g.counted = True
            emu.apply_call_fault()
        return None

    @app.after_request
    def account(response: Response) -> Response:
        path = request.path
        if (
            request.method in ("POST", "PATCH", "PUT", "DELETE")
            and path.startswith("/services/data/")
            and ("/sobjects/" in path or "/composite/" in path)
            and 200 <= response.status_code < 300
            and g.get("counted")
        ):
            how = emu.take_lost_answer()  # the write is committed; its answer now goes astray
            if how == "reset":
                emu.record_call(request.method, path, 0, True)
                _reset_connection()
                return Response(b"", 500)
            if how == "5xx":
                response = api_json(
                    [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error "
                      "occurred. Please include this ErrorId if you contact support"}],
                    500,
                )
        if g.get("session") is not None:  # authenticated: the usage header, as on Salesforce
            response.headers["Sforce-Limit-Info"] = emu.limit_info()
        if path.startswith(("/services/", "/id/")):
            emu.record_call(request.method, path, response.status_code, bool(g.get("counted")))
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return api_json(error.body(), error.status, error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        if isinstance(error, MethodNotAllowed):
            allowed = ",".join(
                m for m in (error.valid_methods or []) if m not in ("HEAD", "OPTIONS")
            )
            return api_json(
                [
                    {
                        "errorCode": "METHOD_NOT_ALLOWED",
                        "message": f"HTTP Method '{request.method}' not allowed. "
                        f"Allowed are {allowed}",
                    }
                ],
                405,
            )
        if error.code == 404:
            return api_json(
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                404,
            )
        return error

    # --- OAuth (login host) -----------------------------------------------------------------

    @app.get("/services/oauth2/authorize")
    def authorize() -> ResponseReturnValue:
        params = {k: v for k, v in request.args.items() if k in _AUTHORIZE_PARAMS}
        problem = emu.check_authorize(params)
        if problem is not None:
            return redirect(
                "/setup/secur/RemoteAccessErrorPage.apexp?"
                + urlencode({"error": problem[0], "error_description": problem[1]}),
                302,
            )
        if emu.auto_approve:
            return _back_to_app(params, emu.approve(params))
        hidden = "\n".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
            for k, v in params.items()
        )
        page = _CONSENT_PAGE.format(
            username=escape(emu.user.username),
            org=escape(emu.org_id),
            client_id=escape(params.get("client_id", "")),
            hidden=hidden,
        )
        return Response(page, 200, mimetype="text/html")

    @app.post("/services/oauth2/authorize")
    def authorize_decision() -> ResponseReturnValue:
        params = {k: v for k, v in request.form.items() if k in _AUTHORIZE_PARAMS}
        problem = emu.check_authorize(params)
        if problem is not None:
            return redirect(
                "/setup/secur/RemoteAccessErrorPage.apexp?"
                + urlencode({"error": problem[0], "error_description": problem[1]}),
                302,
            )
        if request.form.get("decision") == "allow":
            return _back_to_app(params, emu.approve(params))
        return _back_to_app(params, emu.deny(params))

    def _back_to_app(params: dict[str, str], answer: dict[str, str]) -> ResponseReturnValue:
        target = params["redirect_uri"]
        joiner = "&" if "?" in target else "?"
        return redirect(target + joiner + urlencode(answer), 302)

    @app.get("/setup/secur/RemoteAccessErrorPage.apexp")
    def oauth_error_page() -> ResponseReturnValue:
        error = escape(request.args.get("error", ""))
        description = escape(request.args.get("error_description", ""))
        return Response(
            f"<!doctype html><title>Error</title><h1>OAuth Error</h1>"
            f"<p>We can't authorize you because of an OAuth error.</p>"
            f"<p>error={error}</p><p>error_description={description}</p>",
            200,
            mimetype="text/html",
        )

    @app.post("/services/oauth2/token")
    def token() -> ResponseReturnValue:
        form = request.form.to_dict()
        status, body = emu.token_endpoint(form, request.headers.get("Authorization"))
        return api_json(body, status)

    @app.route("/services/oauth2/revoke", methods=["GET", "POST"])
    def revoke() -> ResponseReturnValue:
        values = request.form if request.method == "POST" else request.args
        if emu.revoke(values.get("token", "")):
            return Response(b"", 200)
        return api_json(
            {
                "error": "unsupported_token_type",
                "error_description": "this token type is not supported",
            },
            400,
        )

    @app.get("/id/<org_id>/<user_id>")
    def identity(org_id: str, user_id: str) -> ResponseReturnValue:
        body = emu.identity(request.headers.get("Authorization"), request.args.get("oauth_token"))
        if body is None or org_id != emu.org_id or user_id != emu.user.id:
            return Response("Bad_OAuth_Token", 403, mimetype="text/plain")
        return api_json(body)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> ResponseReturnValue:
        base = emu.instance_url
        return api_json(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/services/oauth2/authorize",
                "token_endpoint": f"{base}/services/oauth2/token",
                "revocation_endpoint": f"{base}/services/oauth2/revoke",
                "userinfo_endpoint": f"{base}/services/oauth2/userinfo",
                "scopes_supported": ["api", "refresh_token", "offline_access", "id"],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
            }
        )

    # --- REST (instance host) -----------------------------------------------------------

    @app.get("/services/data")
    @app.get("/services/data/")
    def versions() -> ResponseReturnValue:
        return api_json(emu.versions())

    @app.get("/services/data/<version>")
    @app.get("/services/data/<version>/")
    def resources(version: str) -> ResponseReturnValue:
        base = f"/services/data/v{g.session.version}"
        return api_json(
            {
                "sobjects": f"{base}/sobjects",
                "query": f"{base}/query",
                "limits": f"{base}/limits",
                "composite": f"{base}/composite",
                "jobs": f"{base}/jobs",
                "metadata": f"{base}/metadata",
            }
        )

    @app.get("/services/data/<version>/limits")
    @app.get("/services/data/<version>/limits/")
    def limits(version: str) -> ResponseReturnValue:
        return api_json(emu.limits())

    @app.get("/services/data/<version>/query")
    @app.get("/services/data/<version>/query/")
    def query(version: str) -> ResponseReturnValue:
        batch = None
        options = request.headers.get("Sforce-Query-Options", "")
        for option in options.split(","):
            key, _, value = option.strip().partition("=")
            if key == "batchSize" and value.isdigit():
                batch = max(200, min(2000, int(value)))
        return api_json(emu.query(g.session, request.args.get("q", ""), batch))

    @app.get("/services/data/<version>/query/<locator>")
    def query_more(version: str, locator: str) -> ResponseReturnValue:
        return api_json(emu.query_more(g.session, locator))

    @app.get("/services/data/<version>/sobjects")
    @app.get("/services/data/<version>/sobjects/")
    def describe_global(version: str) -> ResponseReturnValue:
        return api_json(emu.describe_global(g.session))

    @app.get("/services/data/<version>/sobjects/<name>")
    @app.get("/services/data/<version>/sobjects/<name>/")
    def sobject_info(version: str, name: str) -> ResponseReturnValue:
        return api_json(emu.sobject_info(g.session, name))

    @app.post("/services/data/<version>/sobjects/<name>")
    @app.post("/services/data/<version>/sobjects/<name>/")
    def create(version: str, name: str) -> ResponseReturnValue:
        status, body = emu.create_record(g.session, name, json_body())
        location = f"/services/data/v{g.session.version}/sobjects/{name}/{body['id']}"
        return api_json(body, status, {"Location": location})

    @app.get("/services/data/<version>/sobjects/<name>/describe")
    @app.get("/services/data/<version>/sobjects/<name>/describe/")
    def describe(version: str, name: str) -> ResponseReturnValue:
        return api_json(emu.describe(g.session, name))

    @app.get("/services/data/<version>/sobjects/<name>/<record_id>")
    def get_record(version: str, name: str, record_id: str) -> ResponseReturnValue:
        fields = [f for f in request.args.get("fields", "").split(",") if f.strip()]
        return api_json(emu.get_record(g.session, name, record_id, [f.strip() for f in fields]))

    @app.patch("/services/data/<version>/sobjects/<name>/<record_id>")
    def update_record(version: str, name: str, record_id: str) -> ResponseReturnValue:
        emu.update_record(g.session, name, record_id, json_body())
        return Response(b"", 204)

    @app.delete("/services/data/<version>/sobjects/<name>/<record_id>")
    def delete_record(version: str, name: str, record_id: str) -> ResponseReturnValue:
        emu.delete_record(g.session, name, record_id)
        return Response(b"", 204)

    @app.patch("/services/data/<version>/sobjects/<name>/<field_name>/<path:value>")
    def upsert_record(version: str, name: str, field_name: str, value: str) -> ResponseReturnValue:
        status, body = emu.upsert_record(g.session, name, field_name, value, json_body())
        return api_json(body, status)

    @app.route("/services/data/<version>/composite/sobjects", methods=["POST", "PATCH"])
    def collections(version: str) -> ResponseReturnValue:
        _require_version(46)
        if request.method == "POST":
            return api_json(emu.collection_create(g.session, json_body()))
        return api_json(emu.collection_update(g.session, json_body()))

    @app.patch("/services/data/<version>/composite/sobjects/<name>/<field_name>")
    def collections_upsert(version: str, name: str, field_name: str) -> ResponseReturnValue:
        _require_version(46)
        return api_json(emu.collection_upsert(g.session, name, field_name, json_body()))

    app.register_blueprint(control_blueprint(emu))
    app.register_blueprint(bulk_blueprint(emu))
    app.register_blueprint(metadata_blueprint(emu))
    return app


def _require_version(minimum: int) -> None:
    """Resources newer than the requested API version do not exist in it."""
    if float(g.session.version) < minimum:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


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
