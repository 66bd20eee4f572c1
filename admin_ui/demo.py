"""Demo-only routes (registered only when ``AMBASSADOR_DEMO`` is set).

Outside the Shopify admin there is no App Bridge to hand the app a session token, so ``/demo``
stands in for it: it asks the local Shopify emulator for a fresh token (over HTTP, as any
stand-in named by ``SHOPIFY_API_BASE_URL`` would be asked) and opens the app home with it.
``/demo/session-token`` stands in for App Bridge's ``shopify.idToken()`` (the admin pages'
script asks it when App Bridge is absent), and the patch-id-token bounce of a page opened
without a token (a reload, a link) is answered here with a fresh token instead of App Bridge.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from flask import Blueprint, current_app, jsonify, redirect, request

from connector.domain.shops import InvalidShopDomain, normalise_shop_domain

bp = Blueprint("demo", __name__)

DEMO_SHOP = "demo-store.myshopify.com"


@bp.get("/demo")
def open_app() -> Any:
    shop = request.args.get("shop", DEMO_SHOP)
    token = _emulator_token(shop)
    query = urlencode({"shop": shop, "host": "ZGVtbw", "id_token": token})
    return redirect(f"/app?{query}", code=302)


def _emulator_token(shop: str) -> str:
    """A fresh session token for ``shop``, minted by the emulator (over HTTP)."""
    c = current_app.extensions["ambassador"]
    response = c.shopify_http.get(f"https://{shop}/_emulator/session-token")
    response.raise_for_status()
    return str(response.json()["token"])


@bp.get("/demo/session-token")
def session_token() -> Any:
    """``{"token": ...}``: what App Bridge's ``shopify.idToken()`` gives inside the admin."""
    try:
        shop = normalise_shop_domain(request.args.get("shop") or DEMO_SHOP)
    except InvalidShopDomain:
        return jsonify(error={"code": "invalid_shop", "message": "not a myshopify.com domain"}), 400
    try:
        token = _emulator_token(shop)
    except httpx.HTTPError:
        return jsonify(
            error={"code": "emulator_unavailable", "message": "the Shopify emulator did not answer"}
        ), 502
    response = jsonify(token=token, shop=shop)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_app_request
def _patch_id_token_stand_in() -> Any:
    """An admin page opened without a token bounces to ``/app/patch-id-token``, where App
    Bridge would fetch one inside the admin. There is no admin in the demo: reload the page
    (a path of this app, never another site) with a fresh token from the emulator instead."""
    if request.path != "/app/patch-id-token":
        return None
    reload = request.args.get("shopify-reload", "")
    if reload != "/app" and not reload.startswith(("/app/", "/app?")):
        return None
    try:
        shop = normalise_shop_domain(request.args.get("shop"))
        token = _emulator_token(shop)
    except (InvalidShopDomain, httpx.HTTPError):
        return None  # the ordinary patch page
    separator = "&" if "?" in reload else "?"
    return redirect(f"{reload}{separator}{urlencode({'id_token': token})}", code=302)
