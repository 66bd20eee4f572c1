"""Shared fixtures: real PostgreSQL and Redis (never skipped: a missing service fails the run),
the app factory with its test client, and Shopify-style signing helpers.

Services come from ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` or the default local ports; the
test command (``make test``) starts them first when they are installed but stopped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.bootstrap import Container, bootstrap
from adapters.db.tables import metadata
from adapters.queue.inprocess import InProcessJobQueue
from adapters.settings import Settings
from entrypoints import jobs
from tests.log_scan import SCAN

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "test_client_id"
API_SECRET = "test_client_secret"
OLD_SECRET = "previous_client_secret"
SHOP = "test-shop.myshopify.com"

BASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(SCAN)  # tests/log_scan.py: no token in any log record


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SCAN.leaks:
        print("\nTOKENS IN LOGS (tests/log_scan.py):\n  " + "\n  ".join(SCAN.leaks[:20]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / "shopify" / name).read_text())


def sign_webhook(body: bytes, secret: str = API_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_headers(
    topic: str,
    body: bytes,
    shop: str = SHOP,
    webhook_id: str | None = None,
    secret: str = API_SECRET,
    triggered_at: str | None = None,
) -> dict[str, str]:
    if triggered_at is None:  # Shopify's format: nanoseconds and a Z
        triggered_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_webhook(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": triggered_at,
    }


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    engine = sa.create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {BASE_URL} (run the tests with `make test`): {exc}")
    finally:
        engine.dispose()
    return BASE_URL


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database for this test session, migrated with the real migrations."""
    name = f"ambassador_test_{os.getpid()}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    from entrypoints.cli import run_migrations

    run_migrations(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except RedisConnectionError as exc:
        pytest.fail(f"Redis is required at {REDIS_URL} (run the tests with `make test`): {exc}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


def make_settings(tmp_path: Path, database_url: str, **env: str) -> Settings:
    environ = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "SHOPIFY_API_KEY": API_KEY,
        "SHOPIFY_API_SECRET": API_SECRET,
        "SHOPIFY_API_SECRET_OLD": OLD_SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "APP_URL": "http://127.0.0.1:8000",
        **env,
    }
    return Settings.from_env(environ)


@pytest.fixture
def db_url(pg_url: str) -> Iterator[str]:
    """The session database, emptied after each test (the app uses its own connections)."""
    yield pg_url
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    """Inline jobs: a job's effects are visible as soon as the request that queued it returns."""
    c = bootstrap(settings, jobs=InProcessJobQueue(threaded=False))
    jobs.configure(c)
    yield c
    jobs.configure(None)
    c.close()


@pytest.fixture
def app(container: Container) -> Any:
    from entrypoints.wsgi import create_app

    application = create_app(container=container)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def install_shop(
    container: Container, domain: str = SHOP, *, installed_at: Any = None,
    name: str | None = None, currency: str = "USD",
) -> Any:
    """An installed shop with a valid expiring token, saved directly (no Shopify involved)."""
    from datetime import timedelta

    from connector.domain.shops import OfflineToken, Shop, ShopStatus

    now = container.clock.now()
    token = OfflineToken("shpat_x", "read_orders", now + timedelta(hours=1), "shprt_x",
                         now + timedelta(days=90))
    with container.uow() as uow:
        shop = uow.shops.save(Shop(id=None, domain=domain, status=ShopStatus.INSTALLED,
                                   token=token, installed_at=installed_at or now,
                                   currency=currency, name=name or domain))
        uow.commit()
    return shop


def count_rows(container: Container, table: str) -> int:
    with container.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


# --- the Shopify emulator and a live app, over real HTTP ------------------------------------


class Live:
    """The app served on a loopback port, talking to the Shopify emulator through
    ``SHOPIFY_API_BASE_URL`` (the same code paths as production)."""

    def __init__(self, container: Container, emulator: Any, url: str, shop: str) -> None:
        self.container, self.emulator, self.url, self.shop = container, emulator, url, shop

    def install(self) -> Any:
        """The merchant opens the app in the Shopify admin: token exchange on the app home."""
        import httpx

        token = self.emulator.mint_session_token(self.shop)
        response = httpx.get(
            f"{self.url}/app",
            params={"shop": self.shop, "host": "aG9zdA", "id_token": token},
            timeout=30,
        )
        assert response.status_code == 200, response.text[:500]
        return response

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        token = self.emulator.mint_session_token(self.shop)
        return httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            timeout=60,
            headers={"Authorization": f"Bearer {token}"},
            **kwargs,
        )


@pytest.fixture
def live(tmp_path: Path, db_url: str) -> Iterator[Live]:
    import socket
    import threading

    from werkzeug.serving import make_server

    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread
    from entrypoints.wsgi import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app_url = f"http://127.0.0.1:{port}"
    emulator = ShopifyEmulator(api_key=API_KEY, api_secret=API_SECRET, app_url=app_url)
    emulator.add_shop(SHOP, currency="USD", name="Test Shop")
    emu_server, emu_url = serve_in_thread(emulator)
    settings = make_settings(tmp_path, db_url, SHOPIFY_API_BASE_URL=emu_url, APP_URL=app_url)
    container = bootstrap(settings, jobs=InProcessJobQueue(threaded=False))
    app = create_app(container=container)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(container, emulator, app_url, SHOP)
    server.shutdown()
    emu_server.shutdown()
    jobs.configure(None)
    container.close()
