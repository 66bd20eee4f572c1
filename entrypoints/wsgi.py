"""``create_app()``: the Flask application factory (gunicorn: ``entrypoints.wsgi:create_app()``).

Nothing is built at import time; migrations are never run from here (the release phase does).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.routing import IntegerConverter

# Imported for their side effect: each registers its routes on the API blueprint.
import admin_ui.api_analytics
import admin_ui.api_applications
import admin_ui.api_engagement
import admin_ui.api_health
import admin_ui.api_ledger
import admin_ui.api_payouts
import admin_ui.api_program
import admin_ui.api_salesforce
import admin_ui.pages_engagement
import admin_ui.portal  # noqa: F401
from adapters.bootstrap import Container, bootstrap
from adapters.logs import configure_logging
from adapters.queue.inprocess import InProcessJobQueue
from adapters.queue.registry import SCHEDULE
from adapters.settings import Settings
from admin_ui.api import bp as api_bp
from admin_ui.api_salesforce import callback_bp as salesforce_callback_bp
from admin_ui.app_home import bp as app_home_bp
from admin_ui.pages import bp as pages_bp
from admin_ui.proxy import bp as proxy_bp
from entrypoints import jobs, metrics
from webhooks.shopify import bp as webhooks_bp

log = logging.getLogger(__name__)

ADMIN_UI = Path(__file__).resolve().parent.parent / "admin_ui"


class DatabaseIdConverter(IntegerConverter):
    """Path integers are database ids (BIGINT): a larger number matches no route (a JSON 404),
    instead of reaching PostgreSQL as an out-of-range value (found by the API fuzz test)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    *,
    background_jobs: bool = False,
) -> Flask:
    """Build the app. ``background_jobs`` starts the periodic jobs in this process (embedded
    mode, no Redis: ``ambassador serve``/``demo``); with Redis, ``ambassador worker`` runs them."""
    settings = settings or (container.settings if container else Settings.from_env())
    configure_logging(settings.log_level)
    container = container or bootstrap(settings)
    jobs.configure(container)  # in-process jobs (embedded mode) use this same container
    if background_jobs and isinstance(container.jobs, InProcessJobQueue):
        container.jobs.start_schedule(SCHEDULE)

    app = Flask(
        __name__,
        template_folder=str(ADMIN_UI / "templates"),
        static_folder=str(ADMIN_UI / "static"),
        instance_path=str(settings.instance_path),
    )
    # Before any route is added: every <int:...> in a path is an id that must fit BIGINT.
    app.url_map.converters["int"] = DatabaseIdConverter
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.webhook_max_bytes,
        SESSION_COOKIE_SECURE=settings.app_url.startswith("https://"),
        SESSION_COOKIE_SAMESITE="None" if settings.app_url.startswith("https://") else "Lax",
    )
    app.extensions["ambassador"] = container
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(app_home_bp)
    app.register_blueprint(pages_bp)  # the embedded admin pages under /app/...
    app.register_blueprint(api_bp)
    app.register_blueprint(proxy_bp)  # storefront pages through Shopify's app proxy
    app.register_blueprint(salesforce_callback_bp)  # Salesforce's OAuth redirect (no session)
    if settings.demo:
        from admin_ui.demo import bp as demo_bp

        app.register_blueprint(demo_bp)

    metrics.register(app, container)  # GET /metrics when METRICS_TOKEN is set

    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness and readiness for the platform's checks: the database (and Redis)."""
        checks: dict[str, str] = {}
        try:
            with container.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            checks["database"] = "ok"
        except Exception:  # noqa: BLE001 - reported as unavailable
            checks["database"] = "unavailable"
        if container.redis is not None:
            try:
                container.redis.ping()
                checks["redis"] = "ok"
            except Exception:  # noqa: BLE001 - reported as unavailable
                checks["redis"] = "unavailable"
        healthy = checks["database"] == "ok"  # Redis down degrades, webhooks are still stored
        return jsonify({"status": "ok" if healthy else "unavailable", "checks": checks}), (
            200 if healthy else 503
        )

    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def _json_errors(exc: Any) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": exc.description}}), exc.code

    @app.errorhandler(500)
    def _server_error(exc: Any) -> Any:
        log.error("http.unhandled", extra={"path": request.path})
        return jsonify({"error": {"code": "internal", "message": "unexpected error"}}), 500

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return response

    return app
