"""Shopify-shaped order and refund payloads for the ledger tests: an order with three lines
(ids 11, 12, 13), a version number that sets ``updated_at``, and refunds of one line each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)
LINES = ((11, "40.00"), (12, "15.50"), (13, "100.00"))


def order_payload(order_id: int, version: int, data: Any) -> dict[str, Any]:
    """``data``: (codes [(code, discount)], quantities of the 3 lines, financial status,
    cancelled)."""
    codes, quantities, status, cancelled = data
    return {
        "id": order_id,
        "name": f"#{order_id}",
        "currency": "USD",
        "presentment_currency": "EUR",
        "created_at": T0.isoformat(),
        "updated_at": (T0 + timedelta(minutes=version)).isoformat(),
        "financial_status": status,
        "cancelled_at": (T0 + timedelta(hours=1)).isoformat() if cancelled else None,
        "test": False,
        "email": "buyer@example.com",
        "customer": {"id": 777, "created_at": T0.isoformat()},
        "discount_codes": [{"code": c, "amount": a, "type": "fixed_amount"} for c, a in codes],
        "line_items": [
            {
                "id": line_id,
                "quantity": q,
                "price": price,
                "price_set": {
                    "shop_money": {"amount": price},
                    "presentment_money": {"amount": str(Decimal(price) * Decimal("0.9"))},
                },
                "discount_allocations": [{"amount": "1.00"}] if codes and q else [],
            }
            for (line_id, price), q in zip(LINES, quantities, strict=True)
        ],
        "refunds": [],
    }


def refund_payload(order_id: int, refund_id: int, data: Any) -> dict[str, Any]:
    """``data``: (line id, quantity, subtotal refunded)."""
    line_id, quantity, amount = data
    return {
        "id": refund_id,
        "order_id": order_id,
        "created_at": T0.isoformat(),
        "refund_line_items": [
            {
                "line_item_id": line_id,
                "quantity": quantity,
                "subtotal_set": {"shop_money": {"amount": amount}},
            }
        ],
    }
