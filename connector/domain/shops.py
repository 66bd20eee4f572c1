"""Shops (installations) and their offline access tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

SHOP_DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")

#: Refresh an access token when it has less than this left (Shopify's live for 60 minutes).
REFRESH_MARGIN = timedelta(minutes=5)


class InvalidShopDomain(ValueError):
    """The value is not a ``*.myshopify.com`` domain."""


def normalise_shop_domain(value: str | None) -> str:
    """Return the canonical shop domain or raise :class:`InvalidShopDomain`.

    Accepts the bare domain or an ``https://`` URL (session tokens carry ``dest`` as a URL).
    """
    raw = (value or "").strip().lower()
    for prefix in ("https://", "http://"):
        if raw.startswith(prefix):
            raw = raw[len(prefix) :]
    raw = raw.rstrip("/")
    if not SHOP_DOMAIN_RE.fullmatch(raw):
        raise InvalidShopDomain(f"not a myshopify.com shop domain: {value!r}")
    return raw


class ShopStatus(StrEnum):
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"


@dataclass(frozen=True)
class OfflineToken:
    """An expiring offline access token and its refresh token (plaintext, in memory only)."""

    access_token: str
    scope: str
    expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None

    def usable_at(self, now: datetime, margin: timedelta = REFRESH_MARGIN) -> bool:
        """True while the access token has more than ``margin`` left (non-expiring: always)."""
        return self.expires_at is None or self.expires_at - margin > now

    def refreshable_at(self, now: datetime) -> bool:
        return bool(self.refresh_token) and (
            self.refresh_token_expires_at is None or self.refresh_token_expires_at > now
        )


@dataclass(frozen=True)
class Shop:
    id: int | None
    domain: str
    status: ShopStatus
    token: OfflineToken | None = None
    name: str | None = None
    currency: str | None = None
    email: str | None = None
    installed_at: datetime | None = None
    uninstalled_at: datetime | None = None
    webhooks_registered_at: datetime | None = None

    @property
    def installed(self) -> bool:
        return self.status is ShopStatus.INSTALLED

    def has_valid_token(self, now: datetime) -> bool:
        """Installed with a token that is usable now or can be refreshed."""
        if not self.installed or self.token is None:
            return False
        return self.token.usable_at(now) or self.token.refreshable_at(now)

    def with_token(self, token: OfflineToken, now: datetime) -> Shop:
        installed_at = self.installed_at if self.installed and self.installed_at else now
        return replace(
            self,
            token=token,
            status=ShopStatus.INSTALLED,
            installed_at=installed_at,
            uninstalled_at=None,
        )

    def uninstalled(self, now: datetime) -> Shop:
        """Tokens dropped; data kept until ``shop/redact`` (48 h later) or a reinstall."""
        return replace(
            self,
            token=None,
            status=ShopStatus.UNINSTALLED,
            uninstalled_at=now,
            webhooks_registered_at=None,
        )
