"""Settings: parsed once from the environment, failing fast and naming the variable."""

from __future__ import annotations

import pytest

from adapters.settings import DEFAULT_SHOPIFY_API_VERSION, Settings, SettingsError

BASE = {"SHOPIFY_API_KEY": "k", "SHOPIFY_API_SECRET": "s"}


def parse(tmp_path, **env):
    return Settings.from_env({**BASE, **env}, instance_path=tmp_path)


def test_defaults_are_the_embedded_mode(tmp_path):
    s = parse(tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'ambassador.sqlite3'}"
    assert s.embedded_jobs and s.redis_url is None
    assert s.app_url == "http://127.0.0.1:8000"
    assert s.shopify_api_version == DEFAULT_SHOPIFY_API_VERSION
    assert "write_discounts" in s.shopify_scopes
    assert not s.salesforce_enabled


def test_heroku_postgres_urls_are_accepted(tmp_path):
    s = parse(tmp_path, DATABASE_URL="postgres://u:p@host:5432/db")
    assert s.database_url == "postgresql+psycopg://u:p@host:5432/db"


def test_dev_secrets_are_generated_once_and_kept(tmp_path):
    first, second = parse(tmp_path), parse(tmp_path)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert first.encryption_key == second.encryption_key
    assert (tmp_path / "dev-secrets").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ENCRYPTION_KEY"])
def test_production_requires_its_secrets(tmp_path, missing):
    env = {
        "APP_ENV": "production",
        "APP_URL": "https://app.example.com",
        "SECRET_KEY": "x" * 40,
        "ENCRYPTION_KEY": "A" * 43 + "=",
    }
    del env[missing]
    with pytest.raises(SettingsError, match=missing):
        parse(tmp_path, **env)


@pytest.mark.parametrize(
    "env,match",
    [
        ({"ENCRYPTION_KEY": "short"}, "ENCRYPTION_KEY"),
        ({"SHOPIFY_API_VERSION": "2026-05"}, "SHOPIFY_API_VERSION"),
        ({"APP_URL": "ftp://x"}, "APP_URL"),
        ({"WEBHOOK_MAX_BYTES": "lots"}, "WEBHOOK_MAX_BYTES"),
        (
            {
                "APP_ENV": "production",
                "SECRET_KEY": "x",
                "ENCRYPTION_KEY": "A" * 43 + "=",
                "APP_URL": "http://plain.example.com",
            },
            "https",
        ),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(tmp_path, env, match):
    with pytest.raises(SettingsError, match=match):
        parse(tmp_path, **env)


def test_shopify_credentials_are_required_outside_the_demo(tmp_path):
    with pytest.raises(SettingsError, match="SHOPIFY_API_KEY"):
        Settings.from_env({}, instance_path=tmp_path)
    assert Settings.from_env({"AMBASSADOR_DEMO": "1"}, instance_path=tmp_path).demo


def test_encryption_keys_rotate(tmp_path):
    from cryptography.fernet import Fernet

    from adapters.crypto import TokenCipher

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = TokenCipher(old).encrypt("shpat_secret")
    rotated = TokenCipher(f"{new},{old}")
    assert rotated.decrypt(sealed) == "shpat_secret"
    assert TokenCipher(new).decrypt(rotated.encrypt("x")) == "x"
    parse(tmp_path, ENCRYPTION_KEY=f"{new},{old}")  # accepted by settings
