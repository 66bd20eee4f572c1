"""The ``ambassador`` command: serve, worker, migrate, demo."""

from __future__ import annotations

import logging
import multiprocessing
import sys
from pathlib import Path
from typing import Any

import click

from adapters.logs import configure_logging
from adapters.settings import Settings, SettingsError, database_url_from_env

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """Ambassador Connector: Shopify ambassador program with a native Salesforce sync."""


# --- migrate -------------------------------------------------------------------------------


def run_migrations(database_url: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


@main.command()
def migrate() -> None:
    """Apply database migrations (``alembic upgrade head``); the release phase runs this."""
    configure_logging()
    url = database_url_from_env()
    run_migrations(url)
    click.echo("database is at the latest migration")


# --- serve ---------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a server binds wide
@click.option("--port", type=int, default=None, help="default: $PORT or 8000")
@click.option("--workers", type=int, default=None, help="default: $WEB_CONCURRENCY or 2×cores+1")
def serve(host: str, port: int | None, workers: int | None) -> None:
    """The web app under gunicorn."""
    settings = _settings()
    run_gunicorn(settings, host, port or settings.port, workers or settings.web_concurrency)


def run_gunicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    from entrypoints.wsgi import create_app

    embedded = settings.embedded_jobs

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers or (multiprocessing.cpu_count() * 2 + 1))
            # Threaded workers: with sync workers an idle keep-alive connection (a browser's
            # speculative one) holds a whole worker; without a buffering proxy in front, two
            # such connections made the admin hang (tests/browser/test_production_wiring.py).
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", settings.web_threads)
            self.cfg.set("graceful_timeout", 25)  # Heroku sends SIGTERM, then SIGKILL at 30 s
            self.cfg.set("timeout", 30)
            self.cfg.set("accesslog", "-" if settings.log_level == "DEBUG" else None)

        def load(self) -> Any:
            return create_app(settings, background_jobs=embedded)

    Server().run()


# --- worker --------------------------------------------------------------------------------


@main.command()
@click.option("--burst", is_flag=True, help="Process what is queued, then exit.")
def worker(burst: bool) -> None:
    """An RQ worker on every queue the app uses, with RQ's scheduler (and the periodic jobs)."""
    settings = _settings()
    configure_logging(settings.log_level)
    if not settings.redis_url:
        raise click.ClickException("REDIS_URL is not set: without it jobs run inside `serve`")
    from redis import Redis
    from rq import Queue, SimpleWorker

    from adapters.bootstrap import bootstrap
    from adapters.queue.registry import QUEUES
    from entrypoints import jobs

    container = bootstrap(settings)
    jobs.configure(container)
    redis = container.redis or Redis.from_url(settings.redis_url)
    cron = None if burst else _start_cron(settings.redis_url)
    try:
        # SimpleWorker runs jobs in this process instead of forking per job: ~4× the job
        # throughput (PLATFORM.md), and the container's pools are reused. Jobs keep their
        # timeouts (signal-based), and a crash is recovered by RQ's maintenance like a fork's.
        class Worker(SimpleWorker):
            def request_stop(self, signum: Any, frame: Any) -> None:
                # Warm shutdown (SIGTERM): RQ lets the running job finish; the inbox drain,
                # which would go on while webhooks keep coming, stops after its current
                # batch, so the worker exits well within the platform's 30 s.
                jobs.shutdown.set()
                super().request_stop(signum, frame)

        queues = [Queue(name, connection=redis) for name in QUEUES]
        w = Worker(queues, connection=redis, maintenance_interval=60)
        w.work(burst=burst, with_scheduler=True)
    finally:
        if cron is not None:
            cron.terminate()


def _start_cron(redis_url: str) -> multiprocessing.Process:
    process = multiprocessing.Process(
        target=_run_cron, args=(redis_url,), daemon=True, name="rq-cron"
    )
    process.start()
    return process


def _run_cron(redis_url: str) -> None:
    from redis import Redis
    from rq.cron import CronScheduler

    from adapters.queue.inprocess import resolve
    from adapters.queue.registry import JOBS, SCHEDULE

    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    for job, every in SCHEDULE.items():
        spec = JOBS[job]
        scheduler.register(resolve(spec.func), spec.queue, interval=every, job_timeout=spec.timeout)
    scheduler.start()


# --- demo ----------------------------------------------------------------------------------


@main.command()
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--emulator-port", type=int, default=8100, show_default=True)
@click.option("--customers", type=int, default=60, show_default=True)
def demo(port: int, emulator_port: int, customers: int) -> None:
    """The whole system on this machine with nothing installed but Python."""
    from entrypoints.demo import run_demo

    run_demo(port=port, emulator_port=emulator_port, customers=customers)


# --- reconcile -----------------------------------------------------------------------------


@main.command()
@click.option("--shop", "shop_domain", default=None, help="one shop (default: every installed one)")
@click.option(
    "--hours",
    type=click.IntRange(1, 24 * 60),
    default=None,
    help="read at least this far back (default: from the last complete run)",
)
def reconcile(shop_domain: str | None, hours: int | None) -> None:
    """Read recent orders and refunds from Shopify and apply what webhooks missed."""
    from datetime import timedelta

    from adapters.bootstrap import bootstrap
    from connector.services import reconciliation
    from connector.services.installation import NotInstalled
    from entrypoints import jobs

    settings = _settings()
    configure_logging(settings.log_level)
    container = bootstrap(settings)
    jobs.configure(container)
    with container.uow() as uow:
        domains = (
            [shop_domain.strip().lower()] if shop_domain else uow.shops.installed_domains()
        )
    failed = False
    for domain in domains:
        since = container.clock.now() - timedelta(hours=hours) if hours else None
        try:
            with click.progressbar(length=0, label=f"reconciling {domain}", show_pos=True) as bar:
                report = reconciliation.reconcile(
                    container.uow,
                    container.orders_source,
                    container.access_token,
                    container.clock,
                    domain,
                    since=since,
                    grace=timedelta(0),  # by hand: everything up to now, in flight or not
                    progress=bar.update,
                )
        except NotInstalled:
            click.echo(f"{domain}: not installed")
            failed = True
            continue
        click.echo(
            f"{domain}: {report.status}; read {report.seen} order(s) updated from "
            f"{report.window_start.isoformat()}: {report.applied} applied "
            f"({report.found_only_here} found only now), {report.stale} stale, "
            f"{len(report.errors)} error(s)"
        )
        for error in report.errors:
            click.echo(f"  {error}")
        failed = failed or report.status == "failed"
    if failed:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# Program subcommands live in their own module; importing it registers them on ``main``.
from entrypoints import (  # noqa: E402
    cli_engagement,  # noqa: F401
    cli_program,  # noqa: F401
)
