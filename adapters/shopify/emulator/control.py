"""The control API for tests and the demo (JSON), under ``/_emulator/`` and
``/{shop}/_emulator/``. Each route calls the :class:`ShopifyEmulator` method of the same name;
bad input is a 4xx ``{"errors": {field: [message]}}``, never a 500.

Global: ``POST /_emulator/shops``, ``GET /_emulator/state``, ``POST|DELETE /_emulator/faults``,
``GET /_emulator/deliveries``, ``GET /_emulator/graphql-calls``,
``POST /_emulator/webhooks/redeliver``, ``POST /_emulator/webhooks/flush``.
Per shop: ``POST customers``, ``POST checkout``, ``POST orders/{id}/refund``,
``POST orders/{id}/cancel``, ``POST uninstall``, ``POST webhooks``, ``GET session-token``,
``POST access-token``, ``GET admin-url``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from .commerce import CommerceError
from .emulator import ShopifyEmulator

NOT_FOUND = {"errors": "Not Found"}


def control_blueprint(emu: ShopifyEmulator) -> Blueprint:
    bp = Blueprint("control", __name__)

    @bp.post("/_emulator/shops")
    def control_add_shop() -> ResponseReturnValue:
        data = _json()
        domain = data.get("shop") or data.get("domain")

        def run() -> tuple[Any, int]:
            shop = emu.add_shop(
                str(domain),
                currency=data.get("currency", "USD"),
                name=data.get("name"),
                plan=data.get("plan"),
                email=data.get("email"),
                timezone=data.get("timezone", "America/New_York"),
                fx_rates=data.get("fx_rates"),
            )
            body = {
                "id": shop.id,
                "shop": shop.domain,
                "name": shop.name,
                "currency": shop.currency,
                "plan": shop.plan,
            }
            return body, 201

        return run_action(run)

    @bp.get("/_emulator/state")
    def control_state() -> ResponseReturnValue:
        return jsonify(emu.state_summary())

    @bp.post("/_emulator/faults")
    def control_faults() -> ResponseReturnValue:
        data = _json()
        names = ("scope", "retry_after", "status", "delay", "after")
        options = {k: data[k] for k in names if k in data}

        def run() -> tuple[Any, int]:
            emu.set_fault(str(data.get("kind")), int(data.get("count", 1)), **options)
            return {"ok": True}, 200

        return run_action(run)

    @bp.delete("/_emulator/faults")
    def control_clear_faults() -> ResponseReturnValue:
        emu.clear_faults()
        return jsonify(ok=True)

    @bp.get("/_emulator/deliveries")
    def control_deliveries() -> ResponseReturnValue:
        return jsonify([_delivery_json(d) for d in list(emu.deliveries)])

    @bp.get("/_emulator/graphql-calls")
    def control_graphql_calls() -> ResponseReturnValue:
        return jsonify(list(emu.graphql_calls))

    @bp.post("/_emulator/webhooks/redeliver")
    def control_redeliver() -> ResponseReturnValue:
        return jsonify([_delivery_json(d) for d in emu.redeliver_failed()])

    @bp.post("/_emulator/webhooks/flush")
    def control_flush() -> ResponseReturnValue:
        return jsonify([_delivery_json(d) for d in emu.flush_webhooks()])

    @bp.post("/<shop>/_emulator/customers")
    def control_customer(shop: str) -> ResponseReturnValue:
        data = _json()
        allowed = (
            "email",
            "first_name",
            "last_name",
            "phone",
            "orders_count",
            "amount_spent",
            "tags",
            "note",
        )
        return run_action(
            lambda: (emu.add_customer(shop, **{k: data[k] for k in allowed if k in data}), 201)
        )

    @bp.post("/<shop>/_emulator/checkout")
    def control_checkout(shop: str) -> ResponseReturnValue:
        data = _json()
        return run_action(lambda: (checkout_from_json(emu, shop, data), 201))

    @bp.post("/<shop>/_emulator/orders/<order_id>/refund")
    def control_refund(shop: str, order_id: str) -> ResponseReturnValue:
        data = _json()
        return run_action(
            lambda: (emu.refund(shop, order_id, data.get("line_items"), data.get("note")), 201)
        )

    @bp.post("/<shop>/_emulator/orders/<order_id>/cancel")
    def control_cancel(shop: str, order_id: str) -> ResponseReturnValue:
        data = _json()
        return run_action(
            lambda: (
                emu.cancel(
                    shop,
                    order_id,
                    reason=data.get("reason", "customer"),
                    refund=bool(data.get("refund")),
                ),
                200,
            )
        )

    @bp.post("/<shop>/_emulator/uninstall")
    def control_uninstall(shop: str) -> ResponseReturnValue:
        result = emu.uninstall(shop)
        result["deliveries"] = [_delivery_json(d) for d in result["deliveries"]]
        return jsonify(result)

    @bp.post("/<shop>/_emulator/webhooks")
    def control_send_webhook(shop: str) -> ResponseReturnValue:
        data = _json()

        def run() -> tuple[Any, int]:
            result = emu.send_webhook(
                shop, str(data["topic"]), dict(data.get("payload") or {}), data.get("webhook_id")
            )
            result["deliveries"] = [_delivery_json(d) for d in result["deliveries"]]
            return result, 200

        return run_action(run)

    @bp.get("/<shop>/_emulator/session-token")
    def control_session_token(shop: str) -> ResponseReturnValue:
        user_id = request.args.get("user_id", default=1, type=int)
        ttl = request.args.get("ttl", default=60, type=int)
        return jsonify(token=emu.mint_session_token(shop, user_id=user_id, ttl=ttl), shop=shop)

    @bp.post("/<shop>/_emulator/access-token")
    def control_access_token(shop: str) -> ResponseReturnValue:
        data = _json()
        return jsonify(emu.issue_access_token(shop, expiring=bool(data.get("expiring", True))))

    @bp.get("/<shop>/_emulator/admin-url")
    def control_admin_url(shop: str) -> ResponseReturnValue:
        return run_action(lambda: ({"url": emu.admin_launch_url(shop)}, 200))

    return bp


def _json() -> dict[str, Any]:
    data = request.get_json(force=True, silent=True)
    return data if isinstance(data, dict) else {}


def run_action(action: Callable[[], tuple[Any, int]]) -> ResponseReturnValue:
    """Run a control action; bad input becomes a 4xx JSON error, never a 500."""
    try:
        body, status = action()
    except CommerceError as exc:
        return jsonify(errors={exc.field or "base": [exc.message]}), exc.status
    except KeyError as exc:
        return jsonify(errors={"base": [f"not found: {exc}"]}), 404
    except (TypeError, ValueError) as exc:
        return jsonify(errors={"base": [str(exc)]}), 400
    return jsonify(body), status


def _delivery_json(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "body": record["body"].decode("utf-8")}


def checkout_from_json(emu: ShopifyEmulator, shop: str, data: dict[str, Any]) -> dict[str, Any]:
    """:meth:`ShopifyEmulator.checkout` with its arguments from a JSON body."""
    return emu.checkout(
        shop,
        customer_email=data.get("customer_email") or data.get("email"),
        line_items=data.get("line_items") or [],
        discount_codes=data.get("discount_codes") or [],
        currency=data.get("currency"),
        first_name=data.get("first_name"),
        last_name=data.get("last_name"),
        test=bool(data.get("test", False)),
        shipping_address=data.get("shipping_address"),
        note=data.get("note"),
    )
