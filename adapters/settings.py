"""Settings, read once from the environment into a typed, frozen object (12-factor).

This is the only module that reads ``os.environ``. Every variable and default is the one in the
outside contract (shared CONTRACT.md); :func:`Settings.from_env` fails fast on bad values.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The Admin API version this build is written and tested against (quarterly; pin, then bump).
DEFAULT_SHOPIFY_API_VERSION = "2026-07"
DEFAULT_SHOPIFY_SCOPES = (
    "read_customers,write_customers,read_orders,write_discounts,write_gift_cards,"
    "write_store_credit_account_transactions"
)
_API_VERSION_RE = re.compile(r"^\d{4}-(01|04|07|10)$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    app_env: str
    database_url: str
    redis_url: str | None
    secret_key: str
    encryption_key: str
    app_url: str
    shopify_api_key: str
    shopify_api_secret: str
    shopify_api_secret_old: str | None
    shopify_scopes: tuple[str, ...]
    shopify_api_version: str
    shopify_api_base_url: str | None
    salesforce_client_id: str | None
    salesforce_client_secret: str | None
    salesforce_login_url: str
    instance_path: Path
    #: Share of the org's daily API pool at which our sync pauses (the rest is the org's).
    salesforce_api_budget_share: float = 0.8
    webhook_max_bytes: int = 2 * 1024 * 1024
    log_level: str = "INFO"
    demo: bool = False
    port: int = 8000
    web_concurrency: int = 0  # 0: gunicorn's default for this machine (2 × cores + 1)
    web_threads: int = 4  # threads per gunicorn worker (gthread): an idle connection holds one
    metrics_token: str | None = None  # unset: no /metrics endpoint
    #: Test-only crash points (``AMBASSADOR_FAILPOINTS``, refused outside ``APP_ENV=test``): the
    #: process exits at once there, as a ``kill -9`` would, so the fault tests can stop a real
    #: worker at an exact step (e.g. after Shopify answered, before our commit).
    failpoints: frozenset[str] = frozenset()
    storage_dir: Path | None = None  # uploaded resources; unset: <instance>/uploads
    storage_s3_bucket: str | None = None  # set: uploads go to this S3-compatible bucket
    storage_s3_prefix: str = ""
    storage_s3_endpoint_url: str | None = None  # MinIO, R2...; unset: AWS
    storage_s3_region: str | None = None
    storage_s3_access_key_id: str | None = None
    storage_s3_secret_access_key: str | None = None

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def embedded_jobs(self) -> bool:
        """No ``REDIS_URL``: jobs run in-process (embedded mode)."""
        return not self.redis_url

    @property
    def salesforce_enabled(self) -> bool:
        return bool(self.salesforce_client_id and self.salesforce_client_secret)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, instance_path: Path | None = None
    ) -> Settings:
        """Parse the environment. Raises :class:`SettingsError` naming the offending variable."""
        env = os.environ if environ is None else environ
        app_env = env.get("APP_ENV", "development").strip() or "development"
        production = app_env == "production"
        instance = Path(env.get("INSTANCE_PATH") or instance_path or Path.cwd() / "instance")

        database_url = _database_url(env.get("DATABASE_URL"), instance)
        secret_key = env.get("SECRET_KEY") or ""
        encryption_key = env.get("ENCRYPTION_KEY") or ""
        if production:
            for name, value in (("SECRET_KEY", secret_key), ("ENCRYPTION_KEY", encryption_key)):
                if not value:
                    raise SettingsError(f"{name} is required when APP_ENV=production")
        if not secret_key or not encryption_key:
            dev_secret, dev_key = _instance_secrets(instance)
            secret_key = secret_key or dev_secret
            encryption_key = encryption_key or dev_key
        _check_fernet_key(encryption_key)

        api_key = env.get("SHOPIFY_API_KEY", "")
        api_secret = env.get("SHOPIFY_API_SECRET", "")
        if not env.get("AMBASSADOR_DEMO") and (not api_key or not api_secret):
            raise SettingsError(
                "SHOPIFY_API_KEY and SHOPIFY_API_SECRET are required (outside `ambassador demo`)"
            )
        version = env.get("SHOPIFY_API_VERSION") or DEFAULT_SHOPIFY_API_VERSION
        if not _API_VERSION_RE.match(version):
            raise SettingsError(f"SHOPIFY_API_VERSION {version!r} is not a quarterly YYYY-MM")
        scopes = tuple(
            s.strip() for s in (env.get("SHOPIFY_SCOPES") or DEFAULT_SHOPIFY_SCOPES).split(",")
        )
        app_url = (env.get("APP_URL") or "http://127.0.0.1:8000").rstrip("/")
        if not app_url.startswith(("http://", "https://")):
            raise SettingsError("APP_URL must be an http(s) URL")
        if production and not app_url.startswith("https://"):
            raise SettingsError("APP_URL must be https when APP_ENV=production")
        base_url = (env.get("SHOPIFY_API_BASE_URL") or "").rstrip("/") or None
        if base_url and production:
            raise SettingsError("SHOPIFY_API_BASE_URL is for development and tests only")
        max_bytes = _int(env, "WEBHOOK_MAX_BYTES", 2 * 1024 * 1024)

        return cls(
            app_env=app_env,
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=secret_key,
            encryption_key=encryption_key,
            app_url=app_url,
            shopify_api_key=api_key,
            shopify_api_secret=api_secret,
            shopify_api_secret_old=env.get("SHOPIFY_API_SECRET_OLD") or None,
            shopify_scopes=tuple(s for s in scopes if s),
            shopify_api_version=version,
            shopify_api_base_url=base_url,
            salesforce_client_id=env.get("SALESFORCE_CLIENT_ID") or None,
            salesforce_client_secret=env.get("SALESFORCE_CLIENT_SECRET") or None,
            salesforce_login_url=(
                env.get("SALESFORCE_LOGIN_URL") or "https://login.salesforce.com"
            ).rstrip("/"),
            instance_path=instance,
            salesforce_api_budget_share=_share(env, "SALESFORCE_API_BUDGET_SHARE", 0.8),
            webhook_max_bytes=max_bytes,
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            demo=bool(env.get("AMBASSADOR_DEMO")),
            port=_int(env, "PORT", 8000),
            web_concurrency=_int(env, "WEB_CONCURRENCY", 0),
            web_threads=max(1, _int(env, "WEB_THREADS", 4)),
            metrics_token=env.get("METRICS_TOKEN") or None,
            failpoints=_failpoints(env, app_env),
            storage_dir=Path(env.get("STORAGE_DIR") or instance / "uploads"),
            storage_s3_bucket=env.get("STORAGE_S3_BUCKET") or None,
            storage_s3_prefix=env.get("STORAGE_S3_PREFIX", ""),
            storage_s3_endpoint_url=env.get("STORAGE_S3_ENDPOINT_URL") or None,
            storage_s3_region=env.get("STORAGE_S3_REGION") or None,
            storage_s3_access_key_id=env.get("STORAGE_S3_ACCESS_KEY_ID") or None,
            storage_s3_secret_access_key=env.get("STORAGE_S3_SECRET_ACCESS_KEY") or None,
        )


def _failpoints(env: Mapping[str, str], app_env: str) -> frozenset[str]:
    raw = (env.get("AMBASSADOR_FAILPOINTS") or "").strip()
    if raw and app_env != "test":
        raise SettingsError("AMBASSADOR_FAILPOINTS is only accepted with APP_ENV=test")
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or default)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer") from exc


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    """A share of a whole: ``0.8`` or ``80%``; between 1 % and 100 %."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a share such as 0.8 or 80%") from exc
    if not 0.01 <= value <= 1.0:
        raise SettingsError(f"{name} must be between 1% and 100%")
    return value


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Just the database URL (for migrations, which need nothing else)."""
    env = os.environ if environ is None else environ
    instance = Path(env.get("INSTANCE_PATH") or Path.cwd() / "instance")
    return _database_url(env.get("DATABASE_URL"), instance)


def _database_url(raw: str | None, instance: Path) -> str:
    if not raw:
        instance.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{instance / 'ambassador.sqlite3'}"
    # Heroku still hands out postgres://, which SQLAlchemy 2 rejects; we drive psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def _instance_secrets(instance: Path) -> tuple[str, str]:
    """Per-instance development secrets, generated once (CSPRNG) and kept in the instance folder.

    Kept on disk so encrypted tokens survive a restart of ``ambassador demo``.
    """
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "dev-secrets"
    if path.exists():
        secret, key = path.read_text().split()
        return secret, key
    secret = secrets.token_urlsafe(48)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    path.write_text(f"{secret}\n{key}\n")
    path.chmod(0o600)
    return secret, key


def _check_fernet_key(key: str) -> None:
    for candidate in key.split(","):  # comma list: newest first, older keys still decrypt
        try:
            raw = base64.urlsafe_b64decode(candidate.strip().encode())
        except (ValueError, TypeError) as exc:
            raise SettingsError("ENCRYPTION_KEY must be URL-safe base64") from exc
        if len(raw) != 32:
            raise SettingsError("ENCRYPTION_KEY must decode to 32 bytes (a Fernet key)")
