"""``/api/v1`` routes of the ambassador program: ambassadors, settings, tiers, candidates, tasks.

Registered on the same blueprint as :mod:`admin_ui.api` (same auth, same error shape).
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from flask import g, jsonify, request

from admin_ui.api import (
    ApiError,
    actor,
    bp,
    call,
    container,
    decode_cursor,
    encode_cursor,
    json_body,
)
from admin_ui.proxy import DEFAULT_PATH_PREFIX
from connector.domain.ambassadors import Ambassador, AmbassadorStatus
from connector.domain.money import Money
from connector.domain.tiers import Tier
from connector.ports import (
    AMBASSADOR_SORTS,
    ENGAGEMENT_BANDS,
    AmbassadorQuery,
    Job,
    RewardTotals,
)
from connector.services import ambassadors as service
from connector.services import engagement, invitations, program, tiers

MAX_PAGE = 200


def _tiers() -> dict[int | None, Tier]:
    with container().uow() as uow:
        return {t.id: t for t in uow.program.tiers(g.shop.id)}


def render(ambassadors: list[Ambassador]) -> list[dict[str, Any]]:
    """Ambassador JSON for a page of ambassadors: tiers and statistics read once."""
    with container().uow() as uow:
        tiers = {t.id: t for t in uow.program.tiers(g.shop.id)}
        ids = [a.id for a in ambassadors if a.id is not None]
        totals = uow.ledger.totals(g.shop.id, ids)
        scores = engagement.engagement_of(uow, g.shop.id, ids)
    return [
        ambassador_json(a, tiers, totals.get(a.id or 0), scores.get(a.id or 0))
        for a in ambassadors
    ]


def render_one(ambassador: Ambassador) -> dict[str, Any]:
    return render([ambassador])[0]


def ambassador_json(
    a: Ambassador,
    tiers: dict[int | None, Tier],
    totals: RewardTotals | None = None,
    score: tuple[Decimal, str] | None = None,
) -> dict[str, Any]:
    shop = g.shop
    currency = shop.currency or "USD"
    tier = tiers.get(a.tier_id)
    return {
        "id": a.id,
        "email": a.email,
        "first_name": a.first_name,
        "last_name": a.last_name,
        "customer_id": f"gid://shopify/Customer/{a.customer_id}" if a.customer_id else None,
        "status": a.status.value,
        "code": a.code,
        "code_state": a.code_state.value,
        "share_url": f"https://{shop.domain}/discount/{a.code}?redirect=%2F" if a.code else None,
        "tier": {"id": tier.id, "name": tier.name} if tier else None,
        "tier_locked": a.tier_locked,
        "source": a.source,
        "social": a.social,
        "since": a.since.isoformat() if a.since else None,
        "created_at": a.created_at.isoformat() if a.created_at else None,
        "updated_at": a.updated_at.isoformat() if a.updated_at else None,
        # As the last scoring left it (connector/services/engagement.py); not scored yet: 0.
        "engagement": {
            "score": float(score[0]) if score else 0.0,
            "band": score[1] if score else "not engaged",
        },
        "stats": _stats_json(totals, currency),
    }


def _stats_json(totals: RewardTotals | None, currency: str) -> dict[str, Any]:
    """From the ambassador's statistics row, which the ledger keeps in step in the same
    transaction as every entry; no row yet means nothing credited yet."""
    if totals is None:
        zero = Money.zero(currency).as_string()
        return {
            "attributed_orders": 0,
            "attributed_revenue": zero,
            "currency": currency,
            "rewards": {"pending": zero, "approved": zero, "paid": zero, "reversed": zero},
            "balance": zero,
            "last_referral_at": None,
        }

    def fmt(amount: Decimal) -> str:
        return Money(amount, totals.currency).as_string()

    return {
        "attributed_orders": totals.attributed_orders,
        "attributed_revenue": fmt(totals.attributed_revenue),
        "currency": totals.currency,
        "rewards": {
            "pending": fmt(totals.pending),
            "approved": fmt(totals.approved),
            "paid": fmt(totals.paid),
            "reversed": fmt(totals.reversed),
        },
        "balance": fmt(totals.balance),
        "last_referral_at": totals.last_referral_at.isoformat()
        if totals.last_referral_at
        else None,
    }


def _customer_id(value: Any) -> int:
    text = str(value or "").strip()
    if text.startswith("gid://shopify/Customer/"):
        text = text.rsplit("/", 1)[1]
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) >= 2**63:
        raise ApiError(422, "invalid_customer_id", "customer_id must be gid://shopify/Customer/N")
    return int(text)


@bp.post("/ambassadors")
def create_ambassador() -> Any:
    data = json_body()
    c = container()
    if "customer_id" in data:
        customer_id = _customer_id(data["customer_id"])
        customer = call(
            c.discounts.get_customer,
            g.shop.domain,
            call(c.access_token, g.shop.domain),
            customer_id,
        )
        result = call(
            service.enrol_customer,
            c.uow(),
            c.jobs,
            c.clock,
            g.shop,
            customer,
            customer_id=customer_id,
            actor=actor(),
            tier_id=data.get("tier_id"),
        )
    elif "email" in data:
        for field in ("email", "first_name", "last_name"):
            if not isinstance(data.get(field, ""), str):
                raise ApiError(422, "invalid_field", f"{field} must be a string")
        result = call(
            service.enrol,
            c.uow(),
            c.jobs,
            c.clock,
            g.shop,
            email=data["email"],
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            actor=actor(),
            tier_id=data.get("tier_id"),
        )
    else:
        raise ApiError(422, "missing_field", "give customer_id, or email with first and last name")
    return jsonify(render_one(result.ambassador)), 201 if result.created else 200


@bp.get("/ambassadors")
def list_ambassadors() -> Any:
    """One page of the list: filters, ``sort`` (a key of AMBASSADOR_SORTS, "-" for descending;
    default ``-created``) and a keyset cursor bound to that sort."""
    status = request.args.get("status") or None
    if status and status not in {s.value for s in AmbassadorStatus}:
        raise ApiError(422, "invalid_status", "status is applied, active, paused or removed")
    band = request.args.get("band") or None
    if band and band not in ENGAGEMENT_BANDS:
        raise ApiError(422, "invalid_band", "band is not engaged, marginal or engaged")
    sort = request.args.get("sort") or "-created"
    if sort.lstrip("-") not in AMBASSADOR_SORTS or sort.startswith("--"):
        raise ApiError(
            422, "invalid_sort", f"sort is one of {', '.join(AMBASSADOR_SORTS)}, '-' for descending"
        )
    tiers = _tiers()
    tier_arg = request.args.get("tier") or None
    tier_id = None
    if tier_arg:
        match = [t for t in tiers.values() if str(t.id) == tier_arg or t.name == tier_arg]
        if not match:
            raise ApiError(422, "invalid_tier", "no such tier")
        tier_id = match[0].id
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), MAX_PAGE)
    except ValueError:
        raise ApiError(422, "invalid_limit", "limit must be an integer") from None
    cursor = request.args.get("cursor")
    after_id, after = None, None
    if sort == "-created":  # the original cursor, still accepted from older pages
        after_id = decode_cursor("a", cursor)
    else:
        after = _decode_sort_cursor(sort, cursor)
    q = (request.args.get("q") or "").strip()[:200] or None
    if q and "\x00" in q:  # PostgreSQL text cannot hold NUL: refuse rather than fail
        raise ApiError(422, "invalid_query", "q must not contain NUL characters")
    query = AmbassadorQuery(
        status=status,
        tier_id=tier_id,
        text=q,
        band=band,
        sort=sort,
        after_id=after_id,
        after=after,
        limit=limit + 1,
    )
    with container().uow() as uow:
        rows = uow.ambassadors.search_keyed(g.shop.id, query)
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more and page:
        last, values = page[-1]
        next_cursor = (
            encode_cursor("a", last.id)
            if sort == "-created"
            else _encode_sort_cursor(sort, values, last.id or 0)
        )
    return jsonify({"items": render([a for a, _ in page]), "next_cursor": next_cursor})


@bp.post("/ambassadors/invitations")
def invite_ambassadors() -> Any:
    """Invite the given ambassadors to their portal (code, share link, a sign-in link), once per
    ``idempotency_key``: a repeated request reports ``already_invited`` and sends nothing."""
    data = json_body()
    raw, key = data.get("ambassador_ids"), data.get("idempotency_key")
    if not isinstance(key, str) or not invitations.IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            422, "invalid_idempotency_key", "idempotency_key: 8 to 64 letters, digits, - or _"
        )
    if (
        not isinstance(raw, list)
        or not 1 <= len(raw) <= invitations.MAX_PER_REQUEST
        or not all(type(v) is int and 0 < v < 2**63 for v in raw)
    ):
        raise ApiError(
            422,
            "invalid_ambassador_ids",
            f"ambassador_ids: 1 to {invitations.MAX_PER_REQUEST} ambassador ids",
        )
    c = container()
    domain = g.shop.domain
    portal = f"https://{domain}{DEFAULT_PATH_PREFIX}/dashboard"
    links = invitations.PortalLinks(
        dashboard=portal,
        login=lambda token: f"{portal}/login?token={token}",
        share=lambda code: f"https://{domain}/discount/{quote(code)}?redirect=%2F",
    )
    results = invitations.invite(c.uow(), c.jobs, c.ids, c.clock, g.shop, raw, key, links)
    return jsonify(
        {
            "items": [
                {"ambassador_id": r.ambassador_id, "outcome": r.outcome, "reason": r.reason}
                for r in results
            ],
            "invited": sum(r.outcome == "invited" for r in results),
        }
    )


def _encode_sort_cursor(sort: str, values: tuple[Any, ...], last_id: int) -> str:
    """Opaque: the sort, the last row's sort values (exact text for decimals) and its id."""
    raw = json.dumps(
        {"s": sort, "v": [str(v) if isinstance(v, Decimal) else v for v in values], "i": last_id},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_sort_cursor(sort: str, cursor: str | None) -> tuple[tuple[Any, ...], int] | None:
    """The keyset position of a cursor this API gave for this very sort; 422 for any other."""
    if not cursor:
        return None
    bad = ApiError(422, "invalid_cursor", "the cursor is not one this API gave for this sort")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise bad from None
    if not isinstance(data, dict) or data.get("s") != sort or not isinstance(data.get("v"), list):
        raise bad
    last_id, raw = data.get("i"), data["v"]
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 <= last_id < 2**63:
        raise bad
    key = sort.lstrip("-")
    if key == "created" and raw == []:
        return (), last_id
    if key == "name" and len(raw) == 2 and all(_plain_text(v, 120) for v in raw):
        return (raw[0], raw[1]), last_id
    if key in ("orders", "revenue", "engagement") and raw == [None]:
        return (None,), last_id  # among those with no statistics or score yet
    if key == "orders" and len(raw) == 1 and type(raw[0]) is int and 0 <= raw[0] < 2**31:
        return (raw[0],), last_id
    if key in ("revenue", "engagement") and len(raw) == 1 and _plain_text(raw[0], 24):
        try:
            value = Decimal(raw[0])
        except ArithmeticError:
            raise bad from None
        if value.is_finite() and abs(value) < Decimal(10) ** 14:
            return (value,), last_id
    raise bad


def _plain_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit and "\x00" not in value


def _ambassador_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ApiError(404, "not_found", "no such ambassador")
    return int(value)


@bp.get("/ambassadors/<ambassador_id>")
def get_ambassador(ambassador_id: str) -> Any:
    with container().uow() as uow:
        a = uow.ambassadors.get(g.shop.id, _ambassador_id(ambassador_id))
    if a is None:
        raise ApiError(404, "not_found", "no such ambassador")
    return jsonify(render_one(a))


@bp.get("/ambassadors/<ambassador_id>/history")
def ambassador_history(ambassador_id: str) -> Any:
    aid = _ambassador_id(ambassador_id)
    with container().uow() as uow:
        if uow.ambassadors.get(g.shop.id, aid) is None:
            raise ApiError(404, "not_found", "no such ambassador")
        entries = uow.ambassadors.history(g.shop.id, aid)
    return jsonify(
        {
            "items": [
                {
                    "kind": e.kind,
                    "actor": e.actor,
                    "at": e.at.isoformat(),
                    "before": e.before,
                    "after": e.after,
                    "reason": e.reason,
                    "data": e.data,
                }
                for e in entries
            ]
        }
    )


@bp.post("/ambassadors/<ambassador_id>/status")
def change_status(ambassador_id: str) -> Any:
    data = json_body()
    try:
        status = AmbassadorStatus(str(data.get("status")))
    except ValueError:
        raise ApiError(
            422, "invalid_status", "status is applied, active, paused or removed"
        ) from None
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
        raise ApiError(422, "invalid_reason", "reason: text up to 1000 characters")
    c = container()
    a = call(
        service.change_status,
        c.uow(),
        c.jobs,
        c.clock,
        g.shop,
        _ambassador_id(ambassador_id),
        status,
        actor=actor(),
        reason=reason,
    )
    return jsonify(render_one(a))


@bp.post("/ambassadors/<ambassador_id>/tier")
def change_tier(ambassador_id: str) -> Any:
    data = json_body()
    tier_id = data.get("tier_id")
    if tier_id is not None and (isinstance(tier_id, bool) or not isinstance(tier_id, int)):
        raise ApiError(422, "invalid_tier", "tier_id must be an integer or null")
    lock = data.get("locked", True)
    if not isinstance(lock, bool):
        raise ApiError(422, "invalid_field", "locked must be true or false")
    c = container()
    a = call(
        service.set_tier,
        c.uow(),
        c.clock,
        g.shop,
        _ambassador_id(ambassador_id),
        tier_id,
        actor=actor(),
        reason=data.get("reason"),
        lock=lock,
    )
    return jsonify(render_one(a))


@bp.post("/ambassadors/<ambassador_id>/code")
def change_code(ambassador_id: str) -> Any:
    data = json_body()
    if not isinstance(data.get("code"), str):
        raise ApiError(422, "invalid_code", "code must be a string")
    c = container()
    a = call(
        service.set_code,
        c.uow(),
        c.jobs,
        c.clock,
        g.shop,
        _ambassador_id(ambassador_id),
        data["code"],
        actor=actor(),
    )
    return jsonify(render_one(a))


@bp.post("/ambassadors/bulk")
def bulk_enrol() -> Any:
    """Enrol many customers (e.g. the top 50 candidates) as a background task with progress."""
    data = json_body()
    raw = data.get("customer_ids")
    if not isinstance(raw, list) or not raw or len(raw) > 10_000:
        raise ApiError(422, "invalid_customer_ids", "customer_ids: a list of 1 to 10,000 ids")
    ids = list(dict.fromkeys(_customer_id(v) for v in raw))
    c = container()
    with c.uow() as uow:
        run_id = uow.task_runs.start(g.shop.id, "enrol_customers", len(ids))
        uow.after_commit(
            lambda: c.jobs.enqueue(Job.ENROL_CUSTOMERS, g.shop.domain, run_id, ids, actor())
        )
        shop_domain = g.shop.domain
        uow.commit()
    return jsonify(
        {"task_id": run_id, "status_url": f"/api/v1/tasks/{run_id}", "shop": shop_domain}
    ), 202


@bp.get("/tasks/<int:task_id>")
def task(task_id: int) -> Any:
    with container().uow() as uow:
        run = uow.task_runs.get(g.shop.id, task_id)
    if run is None:
        raise ApiError(404, "not_found", "no such task")
    return jsonify(
        {
            "id": run.id,
            "kind": run.kind,
            "status": run.status,
            "total": run.total,
            "done": run.done,
            "failed": run.failed,
            "report": run.report,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        }
    )


def _limit(value: Any, default: int = 50) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError(422, "invalid_limit", "limit must be an integer from 1 to 500")
    try:
        limit = int(value)
    except ValueError:
        raise ApiError(422, "invalid_limit", "limit must be an integer from 1 to 500") from None
    return min(max(limit, 1), 500)


@bp.get("/candidates")
def candidates() -> Any:
    """Ranked now, page by page: for stores of up to ``PAGINATED_LIMIT`` customers. A larger
    store is scanned in the background (``POST /candidates/scans``): 409 ``scan_required``."""
    limit = _limit(request.args.get("limit"))
    c = container()
    total = call(c.customer_export.count_customers, g.shop.domain, c.access_token(g.shop.domain))
    if total > program.PAGINATED_LIMIT:
        raise ApiError(
            409,
            "scan_required",
            f"this store has {total} customers: start a scan with POST /api/v1/candidates/scans "
            "and read its result from the scan",
        )
    found = call(
        program.find_candidates, c.uow(), c.discounts, c.access_token, c.clock, g.shop, limit=limit
    )
    return jsonify({"items": [program.candidate_json(x) for x in found]})


@bp.post("/candidates/scans")
def start_candidate_scan() -> Any:
    """Rank every customer in the background (a bulk operation for large stores); progress
    and result at the scan's URL."""
    data = json_body(optional=True)
    limit = _limit(data.get("limit"))
    c = container()
    run_id = call(
        program.start_candidate_scan,
        c.uow(),
        c.customer_export,
        c.access_token,
        c.jobs,
        g.shop,
        limit=limit,
    )
    return jsonify({"scan_id": run_id, "status_url": f"/api/v1/candidates/scans/{run_id}"}), 202


@bp.get("/candidates/scans/<int:scan_id>")
def candidate_scan(scan_id: int) -> Any:
    with container().uow() as uow:
        run = uow.task_runs.get(g.shop.id, scan_id)
    if run is None or run.kind != program.SCAN_KIND:
        raise ApiError(404, "not_found", "no such scan")
    report = dict(run.report or {})
    return jsonify(
        {
            "id": run.id,
            "status": run.status,
            "method": report.get("method"),
            "scanned": run.done,
            "customers": run.total,
            "items": report.get("items", []),
            "error": report.get("error"),
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        }
    )


@bp.get("/program/settings")
def get_settings() -> Any:
    with container().uow() as uow:
        return jsonify(uow.program.settings(g.shop.id).to_dict())


@bp.patch("/program/settings")
def patch_settings() -> Any:
    c = container()
    updated = call(program.update_settings, c.uow(), g.shop, json_body(), c.jobs)
    return jsonify(updated.to_dict())


def tier_json(t: Tier) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "position": t.position,
        "commission_rate": str(t.commission_rate),
        "min_revenue": str(t.min_revenue) if t.min_revenue is not None else None,
        "min_orders": t.min_orders,
        "min_new_customers": t.min_new_customers,
        "perks": list(t.perks),
    }


@bp.get("/tiers")
def list_tiers() -> Any:
    return jsonify({"items": [tier_json(t) for t in _tiers().values()]})


@bp.post("/tiers")
def create_tier() -> Any:
    tier = call(program.parse_tier, json_body())
    return jsonify(tier_json(call(program.save_tier, container().uow(), g.shop, tier))), 201


@bp.put("/tiers/<int:tier_id>")
def update_tier(tier_id: int) -> Any:
    tier = call(program.parse_tier, json_body(), tier_id)
    return jsonify(tier_json(call(program.save_tier, container().uow(), g.shop, tier)))


@bp.delete("/tiers/<int:tier_id>")
def delete_tier(tier_id: int) -> Any:
    c = container()
    with c.uow() as uow:
        if not uow.program.delete_tier(g.shop.id, tier_id):
            raise ApiError(404, "not_found", "no such tier")
        uow.commit()
    return "", 204


@bp.post("/tiers/preview")
def preview_tiers() -> Any:
    """What-if: where would everyone land with these tiers? Nothing is saved."""
    data = json_body()
    raw = data.get("tiers")
    if not isinstance(raw, list) or not raw or len(raw) > 20:
        raise ApiError(422, "invalid_tiers", "tiers: a list of 1 to 20 tiers")
    proposed = [
        call(program.parse_tier, t, t.get("id") if isinstance(t, dict) else None) for t in raw
    ]
    c = container()
    result = program.preview_tiers(c.uow(), g.shop, proposed, tiers.results_for(c.uow, c.clock))
    return jsonify(
        {
            "up": result.up,
            "down": result.down,
            "same": result.same,
            "moves": [
                {"ambassador_id": a, "from_tier_id": f, "to_tier_id": t} for a, f, t in result.moves
            ],
        }
    )


@bp.post("/ambassadors/import")
def import_csv() -> Any:
    """Enrol from a CSV (``text/csv`` body, up to 2,000 rows): good rows in, bad rows reported."""
    from connector.services import csv_import

    data = request.get_data(cache=False)
    try:
        rows = csv_import.read_rows(data)
    except csv_import.CsvInvalid as exc:
        raise ApiError(422, exc.code, exc.message) from None
    if len(rows) > API_IMPORT_ROWS:
        raise ApiError(
            422,
            "too_many_rows",
            f"at most {API_IMPORT_ROWS} rows here; use the "
            "`ambassador import-csv` command for larger files",
        )
    c = container()
    report = csv_import.import_rows(c.uow, c.jobs, c.clock, g.shop, rows, actor=actor())
    return jsonify(report.as_dict())


API_IMPORT_ROWS = 2000
