"""The embedded admin's engagement page (``/app/engagement``): bands and why, shares over time,
challenges, content to review and return on influence, rendered on the server; the actions
(through the JSON API) and the bands chart are added by ``static/admin.js``."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from admin_ui.app_home import chart_library, embedded_page, embedded_shop
from admin_ui.pages import bp
from connector.domain.content import SubmissionStatus
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
