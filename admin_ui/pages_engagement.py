"""The embedded admin's engagement pages: ``/app/engagement`` (bands and why, shares over time,
challenges, content to review and return on influence, rendered on the server; the actions
through the JSON API and the charts are added by ``static/admin.js``), ``/app/resources`` (the
resources library) and ``/app/roi`` (return on influence), both filled by ``admin.js``."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from admin_ui.app_home import chart_library, embedded_page, embedded_shop
from admin_ui.pages import bp
from connector.domain.content import ALLOWED_TYPES, MAX_UPLOAD, SubmissionStatus
from connector.services import challenges, content, engagement, roi


@bp.get("/engagement")
def engagement_page() -> Any:
    shop = embedded_shop()
    if isinstance(shop, Response):
        return shop
    assert shop.id is not None
    c = current_app.extensions["ambassador"]
    now = c.clock.now()
    summary = engagement.summary(c.uow(), c.clock, shop, 30)
    with c.uow() as uow:
        found = uow.challenges.search(shop.id)[:20]
        counts = {x.id: len(uow.challenges.participants(shop.id, x.id or 0)) for x in found}
        pending = uow.content.submissions(shop.id, status=SubmissionStatus.PENDING, limit=20)
    return embedded_page(
        "admin/engagement.html",
        shop,
        page="engagement",
        summary=summary,
        challenges=[challenges.challenge_json(x, now, counts[x.id]) for x in found],
        submissions=[content.submission_json(s) for s in pending],
        roi=roi.report(c.uow(), now, shop, None, None),
        chart_library=chart_library(),
    )


@bp.get("/resources")
def resources_page() -> Any:
    """The resources library: the list (``GET /api/v1/resources``), upload (flyer, graphic or
    a pre-written post) and delete with a confirmation, all through the API by ``admin.js``."""
    shop = embedded_shop()
    if isinstance(shop, Response):
        return shop
    return embedded_page(
        "admin/resources.html",
        shop,
        page="resources",
        max_upload=MAX_UPLOAD,
        max_upload_mib=MAX_UPLOAD // (1024 * 1024),
        accept=",".join(ext for exts in ALLOWED_TYPES.values() for ext in exts),
    )


@bp.get("/roi")
def roi_page() -> Any:
    """Return on influence: ``GET /api/v1/roi`` per month as a chart (revenue against cost)
    with its table, the totals, and per tier and per challenge; drawn by ``admin.js``."""
    shop = embedded_shop()
    if isinstance(shop, Response):
        return shop
    return embedded_page(
        "admin/roi.html",
        shop,
        page="roi",
        chart_library=chart_library(),
        max_months=roi.MAX_MONTHS,
    )
