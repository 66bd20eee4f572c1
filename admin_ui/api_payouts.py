"""``/api/v1`` routes of reward fulfilment: payouts and their history, batches and their cash
files, the budget, the dead-letter view with replay, and each ambassador's rewards (pending,
when it unlocks, what was paid in which form), choice of form and points redemption.
Registered on the API blueprint."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from flask import Response, g, jsonify, request

from admin_ui.api import ApiError, actor, bp, call, container, json_body
from connector.domain.content import storable
from connector.domain.money import Money
from connector.domain.payouts import PayoutState
from connector.ports import Payout, PayoutBatch
from connector.services import payouts
from connector.services.payouts import PayoutError


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(fn, *args, **kwargs)
    except PayoutError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None


def _text(value: Any, name: str, limit: int) -> str:
    """A short text the database can keep (no NUL, no lone surrogate), or a 422 naming it."""
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not storable(value):
        raise ApiError(422, f"invalid_{name}", f"{name} must be 1 to {limit} plain characters")
    return value


def _id(value: str, what: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise ApiError(404, "not_found", f"no such {what}")
    return int(value)


def _money(amount: Any, currency: str) -> str:
    return Money(amount, currency).as_string()


def payout_json(p: Payout) -> dict[str, Any]:
    return {
        "id": p.id,
        "ambassador_id": p.ambassador_id,
        "batch_id": p.batch_id,
        "form": p.form.value,
        "state": p.state.value,
        "amount": _money(p.amount, p.currency),
        "value": _money(p.value, p.currency),
        "currency": p.currency,
        "idempotency_key": p.idempotency_key,
        "external_id": p.external_id,
        "external_hint": p.external_hint,
        "attempts": p.attempts,
        "retry_at": p.retry_at.isoformat() if p.retry_at else None,
        "error_code": p.error_code,
        "error": p.error,
        "created_at": p.created_at.isoformat(),
        "updated_at": p.updated_at.isoformat(),
        "fulfilled_at": p.fulfilled_at.isoformat() if p.fulfilled_at else None,
    }


def batch_json(b: PayoutBatch, groups: list[tuple[str, str, str, Decimal, int]]) -> dict[str, Any]:
    """A batch with its payouts counted and summed by form and by state; ``groups`` are the
    repository's (form, state, currency, amount, count) rows for it."""
    totals: dict[str, dict[str, Any]] = {}
    states: dict[str, int] = {}
    for form, state, currency, amount, count in groups:
        t = totals.setdefault(form, {"count": 0, "amount": Money.zero(currency)})
        t["count"] += count
        t["amount"] = t["amount"] + Money(amount, currency)
        states[state] = states.get(state, 0) + count
    return {
        "id": b.id,
        "period": b.period,
        "created_at": b.created_at.isoformat(),
        "created_by": b.created_by,
        "approved_at": b.approved_at.isoformat() if b.approved_at else None,
        "approved_by": b.approved_by,
        "exported_at": b.exported_at.isoformat() if b.exported_at else None,
        "paid_at": b.paid_at.isoformat() if b.paid_at else None,
        "totals": {
            form: {"count": t["count"], "amount": t["amount"].as_string()}
            for form, t in sorted(totals.items())
        },
        "states": dict(sorted(states.items())),
    }


@bp.get("/payouts")
def list_payouts() -> Any:
    """Payouts, newest first; filter by ``state`` (comma list), ``ambassador_id``, ``batch_id``;
    ``cursor`` is the last id seen. ``state=failed`` is the dead-letter view."""
    c = container()
    states = []
    for raw in filter(None, (request.args.get("state") or "").split(",")):
        try:
            states.append(PayoutState(raw))
        except ValueError:
            raise ApiError(422, "invalid_state", f"unknown state {raw!r}") from None
    filters: dict[str, int | None] = {}
    for name in ("ambassador_id", "batch_id", "cursor"):
        value = request.args.get(name)
        if value is not None and (not value.isdigit() or len(value) > 18):
            raise ApiError(422, f"invalid_{name}", f"{name} must be a number")
        filters[name] = int(value) if value is not None else None
    with c.uow() as uow:
        found = uow.payouts.search(
            g.shop.id,
            states=states,
            ambassador_id=filters["ambassador_id"],
            batch_id=filters["batch_id"],
            before_id=filters["cursor"],
            limit=101,
        )
    page = found[:100]
    return jsonify(
        {
            "items": [payout_json(p) for p in page],
            "next_cursor": str(page[-1].id) if len(found) > 100 else None,
        }
    )


@bp.get("/payouts/<payout_id>")
def get_payout(payout_id: str) -> Any:
    """One payout with its state history."""
    c = container()
    pid = _id(payout_id, "payout")
    with c.uow() as uow:
        payout = uow.payouts.get(g.shop.id, pid)
        if payout is None:
            raise ApiError(404, "not_found", "no such payout")
        history = uow.payouts.events(g.shop.id, pid)
    return jsonify(
        {
            **payout_json(payout),
            "history": [
                {
                    "from": e.from_state,
                    "to": e.to_state,
                    "actor": e.actor,
                    "reason": e.reason,
                    "at": e.at.isoformat(),
                }
                for e in history
            ],
        }
    )


@bp.post("/payouts/<payout_id>/approve")
def approve_payout(payout_id: str) -> Any:
    c = container()
    (moved,) = _run(
        payouts.approve, c.uow, c.jobs, g.shop.domain, [_id(payout_id, "payout")], actor()
    )
    with c.uow() as uow:
        current = uow.payouts.get(g.shop.id, moved.id)
    return jsonify(payout_json(current or moved))


@bp.post("/payouts/<payout_id>/cancel")
def cancel_payout(payout_id: str) -> Any:
    """Reject, withdraw or release a payout: its amount returns to the balance."""
    c = container()
    body = json_body(optional=True)
    reason = _text(body.get("reason") or "cancelled by the merchant", "reason", 500)
    moved = _run(payouts.cancel, c.uow, g.shop.domain, _id(payout_id, "payout"), actor(), reason)
    return jsonify(payout_json(moved))


@bp.post("/payouts/<payout_id>/replay")
def replay_payout(payout_id: str) -> Any:
    """Send a failed payout back for fulfilment (the dead-letter view's replay)."""
    c = container()
    pid = _id(payout_id, "payout")
    _run(payouts.replay, c.uow, c.jobs, g.shop.domain, pid, actor())
    with c.uow() as uow:
        current = uow.payouts.get(g.shop.id, pid)
    assert current is not None
    return jsonify(payout_json(current))


@bp.post("/payouts/runs")
def create_payout_run() -> Any:
    """Run payouts now. ``period`` names the run (one per name); default: the schedule's
    current period, or a new manual run."""
    c = container()
    body = json_body(optional=True)
    period = body.get("period")
    if period is not None:
        period = _text(period, "period", 40)
    if period is None:
        period = f"manual:{c.clock.now():%Y-%m-%dT%H:%M:%S}"
    report = _run(
        payouts.run_payouts, c.uow, c.jobs, c.clock, g.shop.domain, actor=actor(), period=period
    )
    if report.batch_id is None:
        raise ApiError(409, "run_exists", f"the run {period!r} already exists")
    return jsonify(report.figures()), 201


@bp.get("/payouts/batches")
def list_batches() -> Any:
    c = container()
    with c.uow() as uow:
        batches = uow.payouts.batches(g.shop.id)
        groups = uow.payouts.batch_totals(g.shop.id, [b.id for b in batches])
    return jsonify({"items": [batch_json(b, groups[b.id]) for b in batches]})


@bp.post("/payouts/batches/<batch_id>/approve")
def approve_batch(batch_id: str) -> Any:
    c = container()
    bid = _id(batch_id, "batch")
    batch = _run(payouts.approve_batch, c.uow, c.jobs, c.clock, g.shop.domain, bid, actor())
    with c.uow() as uow:
        groups = uow.payouts.batch_totals(g.shop.id, [bid])[bid]
        batch = uow.payouts.batch(g.shop.id, bid) or batch
    return jsonify(batch_json(batch, groups))


@bp.get("/payouts/batches/<batch_id>/export")
def export_batch(batch_id: str) -> Any:
    """The batch's approved cash payouts as a CSV: ``format=paypal`` (PayPal Payouts upload)
    or ``format=bank`` (a generic bank sheet)."""
    c = container()
    style = request.args.get("format", "paypal")
    currency, rows = _run(
        payouts.cash_file, c.uow, c.clock, g.shop.domain, _id(batch_id, "batch"), style
    )
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    name = f"payouts-{batch_id}-{style}-{currency}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/payouts/batches/<batch_id>/paid")
def mark_batch_paid(batch_id: str) -> Any:
    """The merchant sent the batch's cash: its approved cash payouts become fulfilled."""
    c = container()
    changed = _run(
        payouts.mark_batch_paid, c.uow, c.clock, g.shop.domain, _id(batch_id, "batch"), actor()
    )
    return jsonify({"fulfilled": changed})


@bp.get("/payouts/budget")
def payout_budget() -> Any:
    """What the program owes by form, what is in hold, what was delivered, and failures."""
    c = container()
    b = _run(payouts.budget, c.uow, g.shop.domain)

    def money(values: dict[str, Any]) -> dict[str, str]:
        return {k: _money(v, b.currency) for k, v in sorted(values.items())}

    return jsonify(
        {
            "currency": b.currency,
            "owed_in_payouts": money(b.in_flight),
            "payable_not_in_payouts": money(b.payable_unreserved),
            "pending_in_hold": _money(b.pending_hold, b.currency),
            "delivered": money(b.delivered),
            "failed": b.failed,
            "awaiting_approval": b.awaiting_approval,
        }
    )


@bp.get("/ambassadors/<ambassador_id>/rewards")
def ambassador_rewards(ambassador_id: str) -> Any:
    """The ambassador's side: pending and when it unlocks, payable now (and as points), the
    form and the forms they may choose, the next payout date, and what was paid."""
    c = container()
    view = _run(
        payouts.rewards_view, c.uow, c.clock, g.shop.domain, _id(ambassador_id, "ambassador")
    )
    return jsonify(
        {
            "currency": view.currency,
            "pending": _money(view.pending, view.currency),
            "unlocks": [
                {"at": at.isoformat(), "amount": _money(amount, view.currency)}
                for at, amount in view.unlocks
            ],
            "payable": _money(view.payable, view.currency),
            "points": view.points,
            "form": view.form.value,
            "choosable_forms": [f.value for f in view.choosable],
            "minimum": _money(view.minimum, view.currency),
            "next_payout_at": view.next_payout_at.isoformat() if view.next_payout_at else None,
            "payouts": [payout_json(p) for p in view.payouts],
        }
    )


@bp.put("/ambassadors/<ambassador_id>/payout-preference")
def set_payout_preference(ambassador_id: str) -> Any:
    """The form this ambassador is paid in (among the program's choosable forms)."""
    c = container()
    body = json_body()
    form = body.get("form")
    email = body.get("paypal_email")
    if not isinstance(form, str) or (email is not None and not isinstance(email, str)):
        raise ApiError(400, "invalid_body", "form (text) and optional paypal_email (text)")
    if email:
        _text(email, "paypal_email", 254)
    pref = _run(
        payouts.set_preference, c.uow, g.shop.domain, _id(ambassador_id, "ambassador"), form, email
    )
    return jsonify({"form": pref.form.value, "paypal_email": pref.paypal_email})


@bp.post("/ambassadors/<ambassador_id>/redemptions")
def redeem_points(ambassador_id: str) -> Any:
    """Redeem points for a reward of another form now."""
    c = container()
    body = json_body()
    form, count = body.get("form"), body.get("points")
    if not isinstance(form, str) or isinstance(count, bool) or not isinstance(count, int):
        raise ApiError(400, "invalid_body", "form (text) and points (whole number)")
    created = _run(
        payouts.redeem,
        c.uow,
        c.jobs,
        g.shop.domain,
        _id(ambassador_id, "ambassador"),
        form,
        count,
        actor(),
    )
    with c.uow() as uow:
        current = uow.payouts.get(g.shop.id, created.id)
    return jsonify(payout_json(current or created)), 201
