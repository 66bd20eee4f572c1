"""Background job functions, at stable import paths (RQ stores the path in Redis).

Thin by design: each takes primitive ids, gets the process's container, and calls one core
service. What to run and when is decided in the core.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from adapters.bootstrap import Container, bootstrap
from adapters.settings import Settings
from connector.ports import Job
from connector.services import inbox, installation

log = logging.getLogger(__name__)

_container: Container | None = None
_lock = threading.Lock()


def configure(container: Container | None) -> None:
    """Use this container for jobs run in this process (the web app, tests, the worker)."""
    global _container
    _container = container


def container() -> Container:
    global _container
    with _lock:
        if _container is None:
            _container = bootstrap(Settings.from_env())
        return _container


def _job_context() -> dict[str, Any]:
    try:
        from rq import get_current_job

        job = get_current_job()
        return {"job_id": job.id} if job else {}
    except Exception:  # noqa: BLE001 - best effort
        return {}


def process_inbox() -> dict[str, int]:
    c = container()
    result = inbox.process_inbox(c.uow, c.handlers, c.clock, c.jobs)
    log.info(
        "inbox.drained",
        extra={
            **_job_context(),
            "processed": result.processed,
            "skipped": result.skipped,
            "failed": result.failed,
        },
    )
    return {"processed": result.processed, "skipped": result.skipped, "failed": result.failed}


def sweep_inbox() -> bool:
    c = container()
    return inbox.sweep_inbox(c.uow, c.jobs, c.clock)


def register_webhooks(shop_domain: str) -> list[str]:
    c = container()
    topics = installation.register_webhooks(c.uow, c.shopify, c.clock, shop_domain, c.webhook_uri)
    log.info(
        "shopify.webhooks.registered",
        extra={**_job_context(), "shop": shop_domain, "topics": len(topics)},
    )
    return topics


def refresh_tokens() -> int:
    c = container()
    return installation.refresh_expiring_tokens(c.uow, c.shopify, c.clock)


__all__ = [
    "Job",
    "configure",
    "container",
    "process_inbox",
    "refresh_tokens",
    "register_webhooks",
    "sweep_inbox",
]
