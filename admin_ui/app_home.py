"""The embedded app home (token exchange on load) and the authorization-code install link."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request

from adapters.db.engine import DatabaseUnavailable
from admin_ui.shopify_urls import admin_app_url, shop_url
from connector.domain.shops import InvalidShopDomain, Shop, normalise_shop_domain
from connector.ports import PlatformError
from connector.services import installation

log = logging.getLogger(__name__)

bp = Blueprint("app_home", __name__)


def _page(status: int, title: str, message: str) -> Response:
    html = render_template("message.html", title=title, message=message)
    return Response(html, status=status, mimetype="text/html")


def embedded_shop() -> Shop | Response:
    """What every embedded admin page (``/app``, ``/app/...``) checks first.

    ``?shop=S&host=H&id_token=T``: verifies T (signature, audience, expiry, ``dest`` = S) and
    installs (token exchange) when the shop has no valid offline token. Returns the installed
    shop, or the response to send instead: 400 for a bad shop domain, the bounce through the
    patch-id-token page when there is no token, 401, 502 or 503.
    """
    c = current_app.extensions["ambassador"]
    try:
        shop = normalise_shop_domain(request.args.get("shop"))
    except InvalidShopDomain:
        return _page(400, "Invalid shop", "The shop parameter is not a myshopify.com domain.")
    id_token = request.args.get("id_token")
    if not id_token:
        # Loaded without a token (a bookmark, a reload): let App Bridge fetch one and come back.
        status, body, headers = c.verifier.app_home_bounce(request.url)
        return Response(body, status=status, headers=headers)
    verified = c.verifier.session_token(id_token)
    if not verified.ok or verified.shop != shop:
        log.warning(
            "shopify.app_home.invalid_id_token", extra={"shop": shop, "code": verified.code}
        )
        return _page(401, "Session expired", "Reopen the app from your Shopify admin.")
    try:
        installed = installation.install_from_id_token(
            c.uow(), c.shopify, c.jobs, c.clock, shop, id_token
        )
    except PlatformError as exc:
        log.error("shopify.app_home.install_failed", extra={"shop": shop, "error": str(exc)})
        return _page(502, "Shopify did not answer", "Installation could not finish; try again.")
    except DatabaseUnavailable:
        return _page(503, "Temporarily unavailable", "Please try again in a moment.")
    return installed


def embedded_page(template: str, shop: Shop, **context: Any) -> Response:
    """Render an embedded admin page for ``shop``; only the Shopify admin may frame it."""
    c = current_app.extensions["ambassador"]
    html = render_template(
        template,
        shop=shop,
        api_key=c.settings.shopify_api_key,
        host=request.args.get("host", ""),
        demo=c.settings.demo,
        **context,
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"frame-ancestors https://{shop.domain} https://admin.shopify.com;"
    )
    return response


@bp.get("/app")
def app_home() -> Any:
    """``/app?shop=S&host=H&id_token=T``: verify T; install (token exchange) if needed; render."""
    shop = embedded_shop()
    if isinstance(shop, Response):
        return shop
    assert shop.id is not None
    with current_app.extensions["ambassador"].uow() as uow:
        counts = uow.ambassadors.count_by_status(shop.id)
    return embedded_page("app.html", shop, counts=counts, chart_library=chart_library())


def chart_library() -> bool:
    """Whether ``scripts/build-assets`` put Chart.js in ``static/vendor/``. Without it the
    dashboard shows its figures as tables (always on the page) and says so."""
    static = current_app.static_folder
    return static is not None and (Path(static) / "vendor" / "chart.umd.js").is_file()


@bp.get("/app/patch-id-token")
def patch_id_token() -> Any:
    c = current_app.extensions["ambassador"]
    status, body, headers = c.verifier.patch_id_token_page(request.url, dict(request.headers))
    return Response(body, status=status, headers=headers)


@bp.get("/auth")
def begin_install() -> Any:
    """Install link for non-embedded installs: 302 to Shopify's authorize URL with a fresh state."""
    c = current_app.extensions["ambassador"]
    try:
        shop = normalise_shop_domain(request.args.get("shop"))
    except InvalidShopDomain:
        return _page(400, "Invalid shop", "The shop parameter is not a myshopify.com domain.")
    state = installation.begin_authorization(c.uow(), c.ids, c.clock, shop)
    url = shop_url(
        c.settings.shopify_api_base_url,
        shop,
        "/admin/oauth/authorize",
        {
            "client_id": c.settings.shopify_api_key,
            "scope": ",".join(c.settings.shopify_scopes),
            "redirect_uri": f"{c.settings.app_url}/auth/callback",
            "state": state,
        },
    )
    return redirect(url, code=302)


@bp.get("/auth/callback")
def finish_install() -> Any:
    """Checks the query HMAC, the shop domain and the single-use state, then exchanges the code."""
    c = current_app.extensions["ambassador"]
    params: dict[str, Any] = {
        k: (request.args.getlist(k) if k.endswith("[]") else request.args[k]) for k in request.args
    }
    if not c.verifier.oauth_query(params):
        return _page(400, "Invalid request", "The request signature does not match.")
    try:
        shop = normalise_shop_domain(params.get("shop"))
    except InvalidShopDomain:
        return _page(400, "Invalid shop", "The shop parameter is not a myshopify.com domain.")
    code = params.get("code", "")
    if not code:
        return _page(400, "Invalid request", "The authorization code is missing.")
    try:
        installation.complete_authorization(
            c.uow(), c.shopify, c.jobs, c.clock, shop, params.get("state", ""), code
        )
    except installation.InvalidState:
        return _page(400, "Link expired", "This install link has expired or was already used.")
    except PlatformError as exc:
        log.warning("shopify.auth.code_refused", extra={"shop": shop, "error": str(exc)})
        return _page(400, "Installation refused", "Shopify refused the authorization; retry.")
    return redirect(
        admin_app_url(
            c.settings.shopify_api_base_url, c.settings.app_url, shop, c.settings.shopify_api_key
        ),
        code=302,
    )
