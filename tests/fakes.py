"""Fakes for the core's ports (``FakeX``), used where the real adapter is not the point."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from connector.domain.shops import OfflineToken
from connector.ports import PlatformUnauthorized, ShopInfo


class FakeCommercePlatform:
    """Counts grants; ``refresh`` takes a while so racing callers really overlap."""

    def __init__(self, refresh_delay: float = 0.2) -> None:
        self.exchanges: list[str] = []
        self.refreshes: list[str] = []
        self.registered: list[tuple[str, list[str], str]] = []
        self.refresh_delay = refresh_delay
        self.revoked = False
        self._lock = threading.Lock()
        self._n = 0

    def _token(self) -> OfflineToken:
        with self._lock:
            self._n += 1
            n = self._n
        now = datetime.now(UTC)
        return OfflineToken(
            f"shpat_fake{n}",
            "read_orders",
            now + timedelta(hours=1),
            f"shprt_fake{n}",
            now + timedelta(days=90),
        )

    def exchange_id_token(self, shop_domain: str, id_token: str) -> OfflineToken:
        self.exchanges.append(shop_domain)
        return self._token()

    def exchange_authorization_code(self, shop_domain: str, code: str) -> OfflineToken:
        self.exchanges.append(shop_domain)
        return self._token()

    def refresh(self, shop_domain: str, refresh_token: str) -> OfflineToken:
        self.refreshes.append(refresh_token)
        time.sleep(self.refresh_delay)
        if self.revoked:
            raise PlatformUnauthorized("invalid_grant")
        return self._token()

    def shop_info(self, shop_domain: str, access_token: str) -> ShopInfo:
        return ShopInfo(name="Test Shop", email="owner@test.example", currency="USD")

    def register_webhooks(
        self, shop_domain: str, access_token: str, topics: list[str], uri: str
    ) -> list[str]:
        self.registered.append((shop_domain, topics, uri))
        return topics
