"""Demo-only routes (registered only when ``AMBASSADOR_DEMO`` is set).

Outside the Shopify admin there is no App Bridge to hand the app a session token, so ``/demo``
stands in for it: it asks the local Shopify emulator for a fresh token (over HTTP, as any
stand-in named by ``SHOPIFY_API_BASE_URL`` would be asked) and opens the app home with it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, request

bp = Blueprint("demo", __name__)

DEMO_SHOP = "demo-store.myshopify.com"


@bp.get("/demo")
def open_app() -> Any:
    c = current_app.extensions["ambassador"]
    shop = request.args.get("shop", DEMO_SHOP)
    response = c.shopify_http.get(f"https://{shop}/_emulator/session-token")
    response.raise_for_status()
    token = response.json()["token"]
    query = urlencode({"shop": shop, "host": "ZGVtbw", "id_token": token})
    return redirect(f"/app?{query}", code=302)
