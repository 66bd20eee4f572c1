"""The production shape, as processes: `ambassador migrate`, `serve` (gunicorn), `worker`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import API_KEY, API_SECRET, fixture_json, webhook_headers

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fresh_db(pg_server_url):
    name = f"ambassador_proc_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sa.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def env_for(db_url: str, tmp_path: Path, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        {
            "DATABASE_URL": db_url.replace("postgresql+psycopg://", "postgres://"),  # Heroku's form
            "SHOPIFY_API_KEY": API_KEY,
            "SHOPIFY_API_SECRET": API_SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "APP_ENV": "test",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def test_migrate_serve_and_worker_process_a_signed_webhook(fresh_db, redis_url, tmp_path):
    env = env_for(fresh_db, tmp_path, redis_url)
    migrate = subprocess.run(
        [BIN / "ambassador", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    server = subprocess.Popen(
        [BIN / "ambassador", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        health = httpx.get(f"{base}/healthz").json()
        assert health == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
        body = json.dumps(fixture_json("order_with_discount_code_TENOFF.json")["order"]).encode()
        response = httpx.post(
            f"{base}/webhooks/shopify", content=body, headers=webhook_headers("orders/create", body)
        )
        assert response.status_code == 200 and response.json()["status"] == "accepted"
    finally:
        server.terminate()
        server.wait(timeout=30)
    engine = sa.create_engine(fresh_db)
    with engine.connect() as conn:
        assert (
            conn.exec_driver_sql("SELECT status FROM webhook_deliveries").scalar_one() == "pending"
        )
    worker = subprocess.run(
        [BIN / "ambassador", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr
    with engine.connect() as conn:
        status = conn.exec_driver_sql("SELECT status FROM webhook_deliveries").scalar_one()
    assert status == "processed"
    engine.dispose()


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    env = env_for("sqlite:///x", tmp_path, None)
    env["APP_ENV"] = "production"
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [BIN / "ambassador", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_worker_without_redis_says_why(tmp_path):
    env = env_for(f"sqlite:///{tmp_path}/x.sqlite3", tmp_path, None)
    result = subprocess.run(
        [BIN / "ambassador", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "REDIS_URL is not set" in result.stderr
