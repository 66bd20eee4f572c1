# ruff: noqa: F811 - the fixtures are shared with test_admin_pages (imported by name)
"""The embedded engagement page: the same id-token checks as every admin page, the bands and
why, challenges and content to review, everything escaped."""

from __future__ import annotations

from datetime import timedelta

from connector.domain.ambassadors import Ambassador, AmbassadorStatus
from connector.domain.challenges import Challenge, Metric, Mode
from connector.domain.content import Submission, SubmissionKind
from entrypoints import jobs
from tests.conftest import SHOP
from tests.functional.test_admin_pages import (  # noqa: F401
    app,
    c,
    client,
    open_page,
    platform,
)

SCRIPT = "<script>alert(1)</script>"


def test_the_engagement_page_shows_bands_challenges_and_flags_escaped(c, client):
    assert open_page(client, "/app").status_code == 200  # installs the shop
    now = c.clock.now()
    with c.uow() as uow:
        shop = uow.shops.get(SHOP)
        a = uow.ambassadors.add(Ambassador(None, shop.id, "a@example.com",
                                           AmbassadorStatus.ACTIVE, first_name=SCRIPT))
        uow.challenges.add(Challenge(None, shop.id, SCRIPT, Metric.ORDERS, Mode.RANKING,
                                     now - timedelta(days=1), now + timedelta(days=1), "USD"))
        submission = uow.content.add_submission(Submission(
            None, shop.id, a.id, SubmissionKind.POST, f"https://x.com/{SCRIPT}", "no tag"))
        uow.commit()
    jobs.score_engagement()
    response = open_page(client, "/app/engagement")
    assert response.status_code == 200
    html = response.text
    assert 'data-page="engagement"' in html and 'aria-current="page"' in html
    assert "<strong>1</strong> (100.0 %)" in html  # one ambassador, not engaged
    assert "How recently a referral came in" in html
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<strong>Missing</strong>" in html  # the disclosure flag
    # the review actions the script wires to POST /submissions/{id}/approve and /reject
    assert f'data-approve="{submission.id}"' in html and f'data-reject="{submission.id}"' in html
    assert 'id="challenge-form"' in html and 'id="chart-bands"' in html
    assert open_page(client, "/app/engagement", token=False).status_code == 302
    home = open_page(client, "/app").text
    assert "/app/engagement?" in home  # in the navigation
