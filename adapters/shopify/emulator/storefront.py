"""The storefront side of the emulator: Shopify's shareable discount links and a checkout.

* ``GET /{shop}/discount/{code}?redirect=/path``: 302 to the path with a ``discount_code``
  cookie, as Shopify's discount links do (only paths on the shop, never another host).
* ``POST /{shop}/cart/checkout``: place an order. JSON takes the arguments of
  :meth:`ShopifyEmulator.checkout` (``customer_email``, ``line_items``, ``discount_codes``,
  ``currency``…) and answers the REST order (201); without codes, the cookie's code applies.
  The demo page's form posts here too and gets a page back.
* ``GET /{shop}/`` (and any other storefront path): a one-product page for the demo.
"""

from __future__ import annotations

import html
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request
from flask.typing import ResponseReturnValue

from .commerce import CommerceError
from .control import NOT_FOUND, checkout_from_json, run_action
from .emulator import ShopifyEmulator


def storefront_blueprint(emu: ShopifyEmulator) -> Blueprint:
    bp = Blueprint("storefront", __name__)

    @bp.get("/<shop>/discount/<code>")
    def discount_link(shop: str, code: str) -> ResponseReturnValue:
        target = request.args.get("redirect") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # only paths on the shop, never another host
        response = redirect(f"/{shop}{target}", 302)
        response.set_cookie("discount_code", code, path=f"/{shop}", samesite="Lax")
        return response

    @bp.post("/<shop>/cart/checkout")
    def cart_checkout(shop: str) -> ResponseReturnValue:
        cookie_code = request.cookies.get("discount_code")
        if request.is_json:
            payload = request.get_json(silent=True)
            if not isinstance(payload, dict):
                return jsonify(errors={"base": ["Malformed JSON"]}), 400
            if not payload.get("discount_codes") and cookie_code:
                payload["discount_codes"] = [cookie_code]
            return run_action(lambda: (checkout_from_json(emu, shop, payload), 201))
        form = request.form
        code = form.get("discount_code") or cookie_code
        data: dict[str, Any] = {
            "customer_email": form.get("email"),
            "first_name": form.get("first_name") or None,
            "last_name": form.get("last_name") or None,
            "discount_codes": [code] if code else [],
            "line_items": [
                {
                    "title": form.get("title") or "Demo product",
                    "price": form.get("price") or "50.00",
                    "quantity": form.get("quantity", default=1, type=int) or 1,
                }
            ],
        }
        try:
            order = checkout_from_json(emu, shop, data)
        except CommerceError as exc:
            return _page(emu, shop, f"<p class=error>{html.escape(exc.message)}</p>"), exc.status
        summary = (
            f"<p>Thank you! Order <b>{html.escape(order['name'])}</b>: "
            f"{html.escape(order['total_price'])} {html.escape(order['currency'])}"
            f" (discounts {html.escape(order['total_discounts'])}).</p>"
        )
        return _page(emu, shop, summary), 201

    @bp.get("/<shop>/")
    @bp.get("/<shop>/<path:page>")
    def storefront(shop: str, page: str = "") -> ResponseReturnValue:
        if page.startswith(("admin", "_emulator")):
            return jsonify(NOT_FOUND), 404
        return _page(emu, shop, "")

    return bp


def _page(emu: ShopifyEmulator, shop: str, message: str) -> Response:
    name = html.escape(emu.shop(shop).name)
    code = request.cookies.get("discount_code") or ""
    applied = (
        f"<p>Discount code <b>{html.escape(code)}</b> will apply at checkout.</p>" if code else ""
    )
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{name}</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}.error{{color:#b00}}</style>
</head><body>
<h1>{name}</h1>
<p><i>Local Shopify emulator storefront.</i></p>
{message}{applied}
<form method="post" action="/{html.escape(shop)}/cart/checkout">
<p>Demo product, 50.00 {html.escape(emu.shop(shop).currency)}
 &times; <input name="quantity" type="number" min="1" value="1" size="3"></p>
<p><label>Email <input name="email" type="email" required></label></p>
<p><label>First name <input name="first_name"></label>
 <label>Last name <input name="last_name"></label></p>
<p><label>Discount code <input name="discount_code" value="{html.escape(code)}"></label></p>
<p><button>Place order</button></p>
</form></body></html>"""
    return Response(body, mimetype="text/html")
