"""``ambassador`` subcommands for bulk work on the program, each with a progress bar."""

from __future__ import annotations

from pathlib import Path

import click

from adapters.bootstrap import Container, bootstrap
from adapters.logs import configure_logging
from connector.domain.shops import Shop
from entrypoints import jobs
from entrypoints.cli import _settings, main


def _container() -> Container:
    settings = _settings()
    configure_logging(settings.log_level)
    c = bootstrap(settings)
    jobs.configure(c)
    return c


def _shop(c: Container, domain: str) -> Shop:
    with c.uow() as uow:
        shop = uow.shops.get(domain.strip().lower())
    if shop is None or not shop.installed:
        raise click.ClickException(f"{domain} is not an installed shop")
    return shop


@main.command("import-csv")
@click.option("--shop", "shop_domain", required=True, help="the shop, e.g. x.myshopify.com")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_csv(shop_domain: str, path: Path) -> None:
    """Enrol ambassadors from a CSV file (email, first_name, last_name, customer_id, tier, code);
    prints a per-row report of what was rejected and why."""
    from connector.services import csv_import

    c = _container()
    shop = _shop(c, shop_domain)
    try:
        rows = csv_import.read_rows(path.read_bytes())
    except csv_import.CsvInvalid as exc:
        raise click.ClickException(exc.message) from None
    with click.progressbar(length=len(rows), label="enrolling") as bar:
        report = csv_import.import_rows(c.uow, c.jobs, c.clock, shop, rows, actor="cli",
                                        progress=bar.update)
    click.echo(f"enrolled {len(report.enrolled)}, already enrolled {len(report.existing)}, "
               f"rejected {len(report.rejected)}")
    for row in report.rejected:
        click.echo(f"  line {row['line']}: {row['email'] or '(no email)'}: {row['reason']}")


@main.command("enrol-top")
@click.option("--shop", "shop_domain", required=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def enrol_top(shop_domain: str, limit: int) -> None:
    """Enrol the shop's best customers who are not ambassadors yet."""
    from connector.services import ambassadors, program

    c = _container()
    shop = _shop(c, shop_domain)
    try:  # a large store is read through a Shopify bulk operation (it may take minutes)
        found = program.best_candidates(c.uow, c.discounts, c.customer_export, c.access_token,
                                        c.clock, shop, limit=limit)
    except ambassadors.ProgramError as exc:
        raise click.ClickException(exc.message) from None
    created = 0
    with click.progressbar(found, label="enrolling top customers") as bar:
        for candidate in bar:
            result = ambassadors.enrol_customer(c.uow(), c.jobs, c.clock, shop,
                                                candidate.customer,
                                                customer_id=candidate.customer.id,
                                                source="invite", actor="cli")
            created += result.created
    click.echo(f"enrolled {created} of {len(found)} candidates")


@main.command("sync-codes")
@click.option("--shop", "shop_domain", required=True)
def sync_codes(shop_domain: str) -> None:
    """Make the codes in Shopify match the program (issue, remove, repair), in bulk."""
    from connector.services import codes

    c = _container()
    _shop(c, shop_domain)
    with click.progressbar(length=0, label="syncing codes", show_pos=True) as bar:
        report = codes.sync_codes(c.uow, c.discounts, c.access_token, c.clock, shop_domain,
                                  progress=lambda done, failed: bar.update(done + failed))
    click.echo(f"added {report.added}, removed {report.removed}, "
               f"collisions {report.collisions}, errors {len(report.errors)}")
    for error in report.errors:
        click.echo(f"  {error}")


@main.command("sync-salesforce")
@click.option("--shop", "shop_domain", required=True)
@click.option("--full", is_flag=True, help="write every ambassador, not only the changed ones")
def sync_salesforce(shop_domain: str, full: bool) -> None:
    """Write the shop's ambassadors to their Salesforce Contacts now (a backfill)."""
    from connector.services import salesforce

    c = _container()
    _shop(c, shop_domain)
    if c.salesforce is None:
        raise click.ClickException("Salesforce is not configured (SALESFORCE_CLIENT_ID/SECRET)")
    with click.progressbar(length=0, label="syncing to Salesforce", show_pos=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        report = salesforce.sync(
            c.uow, c.salesforce, c.clock, shop_domain, full=full, progress=progress,
            budget_share=c.settings.salesforce_api_budget_share,
        )
    click.echo(f"{report.status}: {report.written} written ({report.created} new Contacts, "
               f"{report.matched} matched by email), {report.parked} parked, "
               f"{report.retrying} to retry, {report.calls} API calls")
    for note in report.notes[:20]:
        click.echo(f"  {note}")
    if report.error:
        click.echo(f"  {report.error}")
    if report.status not in {"done", "nothing_to_do", "partial"}:
        raise SystemExit(1)


@main.command("evaluate-tiers")
@click.option("--shop", "shop_domain", required=True)
def evaluate_tiers(shop_domain: str) -> None:
    """Promote and demote ambassadors from their results now."""
    from connector.services import tiers

    c = _container()
    _shop(c, shop_domain)
    report = tiers.evaluate_tiers(c.uow, c.clock, shop_domain)
    click.echo(f"evaluated {report.evaluated}: {report.promoted} promoted, "
               f"{report.demoted} demoted, {report.in_grace} in grace")


@main.command("approve-rewards")
def approve_rewards() -> None:
    """Approve every reward whose hold has ended (the hourly job, by hand)."""
    from connector.services import attribution

    c = _container()
    click.echo(f"approved rewards of {attribution.approve_due_rewards(c.uow, c.clock)} "
               "ambassador(s)")


@main.command("run-payouts")
@click.option("--shop", "shop_domain", required=True)
@click.option(
    "--period",
    default=None,
    help="a name for this run (default: the schedule's current period; one run per name)",
)
def run_payouts(shop_domain: str, period: str | None) -> None:
    """Create payouts now for every ambassador whose payable balance reaches the minimum."""
    from connector.services import payouts

    c = _container()
    _shop(c, shop_domain)
    with c.uow() as uow:
        shop = uow.shops.get(shop_domain)
        schedule = uow.program.settings(shop.id).payouts.schedule if shop and shop.id else None
    if period is None and schedule is not None and schedule.value == "manual":
        period = f"manual:{c.clock.now():%Y-%m-%dT%H:%M:%S}"
    report = payouts.run_payouts(c.uow, c.jobs, c.clock, shop_domain, actor="cli", period=period)
    if report.batch_id is None:
        click.echo(f"nothing to do: the run for {report.period} already exists")
        return
    click.echo(
        f"batch #{report.batch_id} ({report.period}): {report.created} payout(s), "
        f"{report.total} in all; below the minimum {report.below_minimum}, "
        f"netted below zero {report.negative}, kept as points {report.points_kept}"
    )
    for form, total in sorted(report.by_form.items()):
        click.echo(f"  {form}: {total}")


@main.command("fulfil-payouts")
@click.option("--shop", "shop_domain", default=None, help="only this shop")
def fulfil_payouts(shop_domain: str | None) -> None:
    """Deliver every payout that is due now, here, one after another (with a progress bar)."""
    from connector.services import payouts

    c = _container()
    with c.uow() as uow:
        due = uow.payouts.due(c.clock.now(), limit=100_000)
        domains = uow.payouts.shop_domains({s for s, _ in due})
    work = [(domains[s], p) for s, p in due if s in domains]
    if shop_domain:
        work = [(d, p) for d, p in work if d == shop_domain]
    outcomes: dict[str, int] = {}
    with click.progressbar(work, label="fulfilling payouts") as bar:
        for domain, payout_id in bar:
            outcome = payouts.fulfil_payout(c.fulfilment(), domain, payout_id)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    click.echo(", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) or "nothing due")
