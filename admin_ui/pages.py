"""The embedded admin pages of the ambassador program (``/app/...``).

Each page is a server-rendered shell (escaped by Jinja) that ``static/admin.js`` fills through
the JSON API with the session token. Every page makes the same checks as the app home
(:func:`admin_ui.app_home.embedded_shop`): a verified id token for the shop in the query, or
the bounce through the patch-id-token page. The shop always comes from that verified token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from admin_ui.app_home import embedded_page, embedded_shop
from connector.ports import AMBASSADOR_SORTS, ENGAGEMENT_BANDS

bp = Blueprint("pages", __name__, url_prefix="/app")

AMBASSADOR_STATUSES = ("applied", "active", "paused", "removed")
APPLICATION_STATUSES = ("pending", "approved", "rejected")
SORTS = tuple(f"{d}{k}" for k in AMBASSADOR_SORTS for d in ("", "-"))


def _render(template: str, page: str, **context: Any) -> Any:
    shop = embedded_shop()
    if isinstance(shop, Response):
        return shop
    return embedded_page(template, shop, page=page, **context)


def _arg(name: str, allowed: tuple[str, ...] | None = None, limit: int = 200) -> str:
    value = (request.args.get(name) or "").strip()[:limit]
    return value if allowed is None or value in allowed else ""


@bp.get("/ambassadors")
def ambassadors() -> Any:
    """The list: search, status, tier and band filters and the sort (initial values from the
    query), bulk actions."""
    return _render(
        "admin/ambassadors.html",
        "ambassadors",
        statuses=AMBASSADOR_STATUSES,
        bands=ENGAGEMENT_BANDS,
        filters={
            "q": _arg("q"),
            "status": _arg("status", AMBASSADOR_STATUSES),
            "tier": _arg("tier", limit=80),
            "band": _arg("band", ENGAGEMENT_BANDS),
            "sort": _arg("sort", SORTS) or "-created",
        },
        page_size=_page_size(),
    )


def _page_size() -> int:
    """Rows per page of the list (``?limit=``, 1 to 200; default 50)."""
    value = _arg("limit", limit=3)
    return min(max(int(value), 1), 200) if value.isascii() and value.isdigit() else 50


@bp.get("/ambassadors/<int:ambassador_id>")
def ambassador(ambassador_id: int) -> Any:
    """One ambassador: code, statistics, tier, status, history, ledger."""
    return _render(
        "admin/ambassador.html",
        "ambassadors",
        ambassador_id=ambassador_id,
        statuses=AMBASSADOR_STATUSES,
    )


@bp.get("/candidates")
def candidates() -> Any:
    """Find ambassadors: the best customers, bulk enrolment with progress, CSV import."""
    return _render("admin/candidates.html", "candidates")


@bp.get("/applications")
def applications() -> Any:
    """The review queue (pending first; the other states through the filter)."""
    return _render(
        "admin/applications.html",
        "applications",
        statuses=APPLICATION_STATUSES,
        status=_arg("status", APPLICATION_STATUSES) or "pending",
    )


@bp.get("/applications/<int:application_id>")
def application(application_id: int) -> Any:
    """One application: answers, social handles, votes; approve (with a tier) or reject."""
    return _render("admin/application.html", "applications", application_id=application_id)


@bp.get("/settings")
def settings() -> Any:
    return _render("admin/settings.html", "settings")


@bp.get("/tiers")
def tiers() -> Any:
    return _render("admin/tiers.html", "tiers")


@bp.get("/salesforce")
def salesforce() -> Any:
    """Salesforce: connect, fields, sync state, parked records and retry."""
    return _render("admin/salesforce.html", "salesforce")


@bp.get("/payouts")
def payouts() -> Any:
    """Payouts: what is owed by form, runs and batches (cash files), failures with replay."""
    return _render("admin/payouts.html", "payouts")


@bp.get("/health")
def health() -> Any:
    """System health: webhook lag and backlog, parked deliveries, reconciliation findings,
    background queues, the Salesforce API budget; refreshed live while open."""
    return _render("admin/health.html", "health")
