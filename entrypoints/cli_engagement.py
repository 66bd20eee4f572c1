"""Engagement commands of ``ambassador`` (the scheduled jobs, by hand)."""

from __future__ import annotations

import click

from entrypoints.cli import main
from entrypoints.cli_program import _container, _shop


@main.command("score-engagement")
@click.option("--shop", "shop_domain", required=True)
def score_engagement(shop_domain: str) -> None:
    """Score every ambassador now and record today's band shares."""
    from connector.services import engagement

    c = _container()
    _shop(c, shop_domain)
    report = engagement.score_shop(c.uow, c.clock, shop_domain)
    counts = report.counts.counts()
    click.echo(
        f"scored {report.scored}: {counts['engaged']} engaged, {counts['marginal']} marginal, "
        f"{counts['not engaged']} not engaged"
    )


@main.command("close-challenges")
def close_challenges() -> None:
    """Close every challenge that has ended: final leaderboard, prizes to the ledger."""
    from connector.services import challenges

    c = _container()
    click.echo(f"closed {challenges.close_due(c.uow, c.clock)} challenge(s)")
