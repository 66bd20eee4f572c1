"""``/api/v1`` routes of attribution and the ledger: why an order was (not) credited, and an
ambassador's ledger entries. Registered on the API blueprint."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from admin_ui.api import ApiError, bp, container
from connector.domain.attribution import EXPLANATIONS
from connector.domain.money import Money


def _order_id(value: str) -> int:
    text = value.strip()
    if text.startswith("gid://shopify/Order/"):
        text = text.rsplit("/", 1)[1]
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) >= 2**63:
        raise ApiError(404, "not_found", "no such order")
    return int(text)


@bp.get("/orders/<path:order_id>/attribution")
def order_attribution(order_id: str) -> Any:
    """Who was credited for the order and by which rule, or why nobody was."""
    c = container()
    oid = _order_id(order_id)
    with c.uow() as uow:
        record = uow.ledger.attribution(g.shop.id, oid)
    if record is None:
        raise ApiError(404, "not_found",
                       "this order has not reached the app yet; reconciliation picks up "
                       "orders whose webhooks were missed")
    return jsonify({
        "order_id": record.order_id,
        "credited": record.ambassador_id is not None,
        "ambassador_id": record.ambassador_id,
        "code": record.code,
        "rule": record.rule,
        "reason": record.reason.value,
        "explanation": EXPLANATIONS[record.reason],
        "candidates": [{"ambassador_id": cand.ambassador_id, "code": cand.code,
                        "discount": Money(cand.discount, record.currency).as_string(),
                        "verdict": cand.verdict.value,
                        "explanation": EXPLANATIONS[cand.verdict]}
                       for cand in record.candidates],
        "rate": str(record.rate) if record.rate is not None else None,
        "revenue": Money(record.base, record.currency).as_string(),
        "reward": Money(record.reward, record.currency).as_string(),
        "currency": record.currency,
        "cancelled": record.cancelled,
        "decided_at": record.decided_at.isoformat() if record.decided_at else None,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
    })


@bp.get("/ambassadors/<ambassador_id>/ledger")
def ambassador_ledger(ambassador_id: str) -> Any:
    """The ambassador's ledger entries, newest first (cursor: the last entry id seen)."""
    # ASCII digits only ("²".isdigit() is true, int() refuses it); ids are BIGINT.
    if not (ambassador_id.isascii() and ambassador_id.isdigit()) or int(ambassador_id) >= 2**63:
        raise ApiError(404, "not_found", "no such ambassador")
    c = container()
    cursor = request.args.get("cursor")
    if cursor is not None and (
        not (cursor.isascii() and cursor.isdigit()) or int(cursor) >= 2**63
    ):
        raise ApiError(422, "invalid_cursor", "the cursor is not one this API gave")
    with c.uow() as uow:
        if uow.ambassadors.get(g.shop.id, int(ambassador_id)) is None:
            raise ApiError(404, "not_found", "no such ambassador")
        entries = uow.ledger.entries(g.shop.id, int(ambassador_id),
                                     after_id=int(cursor) if cursor else None, limit=101)
    page, more = entries[:100], len(entries) > 100
    return jsonify({
        "items": [{
            "id": e.id, "order_id": e.order_id, "kind": e.kind,
            "amount": Money(e.amount, e.currency).as_string(), "currency": e.currency,
            "presentment_amount": str(e.presentment_amount)
            if e.presentment_amount is not None else None,
            "presentment_currency": e.presentment_currency, "reason": e.reason,
            "created_at": e.created_at.isoformat() if e.created_at else None,
        } for e in page],
        "next_cursor": str(page[-1].id) if more and page else None,
    })
