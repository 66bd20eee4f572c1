"""``/api/v1/salesforce/...``: connect, disconnect, field check and provisioning, sync state,
retry; and ``GET /salesforce/callback``, where Salesforce sends the merchant back.

Every API route acts on the signed-in shop only (``g.shop``, from the verified session token).
The callback has no session (a new top-level tab, no iframe cookies): it is tied to its shop by
the single-use ``state`` alone, which holds the PKCE verifier server-side.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request

from admin_ui.api import ApiError, bp, container
from connector.ports import CrmError, CrmReauthRequired, CrmUnavailable
from connector.services import salesforce
from connector.services.installation import NotInstalled

log = logging.getLogger(__name__)

callback_bp = Blueprint("salesforce_callback", __name__)

_DEPLOY_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")
#: The SFDX source that the one-click provisioning deploys (the same files as ``sf project
#: deploy start``).
SFDX_SOURCE = Path(__file__).resolve().parent.parent / "salesforce" / "force-app"


def _gateway() -> Any:
    c = container()
    if c.salesforce is None:
        raise ApiError(
            409,
            "salesforce_disabled",
            "Salesforce is not configured (SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET)",
        )
    return c.salesforce


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except salesforce.SalesforceError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    except NotInstalled:
        raise ApiError(403, "not_installed", "open the app in Shopify to reconnect it") from None
    except CrmReauthRequired:
        raise ApiError(
            409,
            "salesforce_needs_reconnect",
            "Salesforce refused the stored credentials: connect again",
        ) from None
    except CrmUnavailable as exc:
        raise ApiError(503, "salesforce_unavailable", str(exc), **{"Retry-After": "60"}) from None
    except CrmError as exc:
        raise ApiError(502, "salesforce_error", str(exc)) from None


@bp.get("/salesforce")
def salesforce_state() -> Any:
    """Connection, fields, budget, last sync, records synced and parked (with reasons)."""
    c = container()
    body = salesforce.state(c.uow, c.clock, g.shop)
    body["enabled"] = c.salesforce is not None
    return jsonify(body)


@bp.post("/salesforce/connect")
def salesforce_connect() -> Any:
    """``{"authorize_url"}`` for the merchant to open in a new top-level tab."""
    gateway = _gateway()
    c = container()
    url = salesforce.begin_connect(
        c.uow, gateway, c.ids, c.clock, g.shop, c.salesforce_redirect_uri
    )
    return jsonify({"authorize_url": url})


@bp.post("/salesforce/disconnect")
def salesforce_disconnect() -> Any:
    """Forget the tokens and revoke them at Salesforce."""
    gateway = _gateway()
    c = container()
    done = salesforce.disconnect(c.uow, gateway, c.clock, g.shop)
    return jsonify({"disconnected": done})


@bp.post("/salesforce/sync")
def salesforce_sync() -> Any:
    """Queue a sync of the changed ambassadors now (the schedule runs one every minute)."""
    _gateway()
    c = container()
    salesforce.queue_sync(c.jobs, g.shop.domain)
    return jsonify({"queued": True}), 202


@bp.post("/salesforce/retry")
def salesforce_retry() -> Any:
    """Make every parked (and backing-off) record due again, and queue a sync."""
    _gateway()
    c = container()
    n = salesforce.retry_parked(c.uow, c.jobs, g.shop)
    return jsonify({"retried": n}), 202


@bp.post("/salesforce/fields/check")
def salesforce_fields_check() -> Any:
    """Describe Contact now: which fields are missing or not writable (assigns the permission
    set to the connected user when that is what is missing)."""
    gateway = _gateway()
    c = container()
    report = _call(salesforce.verify_fields, c.uow, gateway, c.clock, g.shop.domain)
    return jsonify(salesforce.field_report_json(report))


@bp.post("/salesforce/provision")
def salesforce_provision() -> Any:
    """Create the fields and the permission set through the Metadata API (one deploy)."""
    from adapters.salesforce.metadata import package_zip

    gateway = _gateway()
    c = container()
    deploy_id = _call(
        salesforce.provision_fields, c.uow, gateway, g.shop.domain, package_zip(SFDX_SOURCE)
    )
    return jsonify({"deploy_id": deploy_id}), 202


@bp.get("/salesforce/provision/<deploy_id>")
def salesforce_provision_status(deploy_id: str) -> Any:
    """A deploy's progress; once it succeeded the fields are checked again."""
    if not _DEPLOY_ID.match(deploy_id):
        raise ApiError(422, "invalid_deploy_id", "not a Salesforce deploy id")
    gateway = _gateway()
    c = container()
    body = _call(salesforce.provision_status, c.uow, gateway, c.clock, g.shop.domain, deploy_id)
    return jsonify(body)


def _page(status: int, title: str, message: str) -> Response:
    html = render_template("message.html", title=title, message=message)
    return Response(html, status=status, mimetype="text/html")


@callback_bp.get("/salesforce/callback")
def salesforce_callback() -> Any:
    """Salesforce's redirect after the merchant approved (or refused) access."""
    from flask import current_app

    c = current_app.extensions["ambassador"]
    state = (request.args.get("state") or "")[:256]
    code = (request.args.get("code") or "")[:2048]
    if request.args.get("error"):
        # The state is still consumed so it cannot be replayed with a code later.
        if state:
            with c.uow() as uow:
                uow.oauth_states.consume(state, c.clock.now())
                uow.commit()
        return _page(
            400,
            "Salesforce was not connected",
            "Access was not granted in Salesforce. Start again from the app.",
        )
    if c.salesforce is None:
        return _page(
            409,
            "Salesforce is not configured",
            "Set SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET.",
        )
    if not state or not code:
        return _page(400, "Salesforce was not connected", "The link is incomplete.")
    try:
        domain = salesforce.complete_connect(
            c.uow, c.salesforce, c.jobs, c.clock, state, code, c.salesforce_redirect_uri
        )
    except salesforce.SalesforceError as exc:
        log.warning("salesforce.callback_refused", extra={"code": exc.code})
        return _page(
            exc.status if exc.status < 500 else 502,
            "Salesforce was not connected",
            f"{exc.message}. Start again from the app.",
        )
    except CrmUnavailable:
        return _page(503, "Salesforce is unavailable", "Try again in a few minutes.")
    return _page(
        200,
        "Salesforce connected",
        f"{domain} is connected. Ambassadors are being synced to their Contacts; "
        "you can close this tab.",
    )
