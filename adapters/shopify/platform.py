"""``CommercePlatform`` for Shopify: token grants and the Admin GraphQL operations we use."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from shopify_app import ShopifyApp

from adapters.shopify.graphql import ShopifyGraphQLClient
from connector.domain.shops import OfflineToken
from connector.ports import PlatformError, PlatformRetryable, PlatformUnauthorized, ShopInfo

log = logging.getLogger(__name__)

SHOP_QUERY = """
query ShopInfo {
  shop { name email currencyCode myshopifyDomain }
}
"""

WEBHOOK_SUBSCRIPTIONS_QUERY = """
query WebhookSubscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    nodes { id topic uri }
    pageInfo { hasNextPage endCursor }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
"""

_UNAUTHORIZED_CODES = {
    "invalid_grant",
    "invalid_client",
    "invalid_subject_token",
    "refresh_token_expired",
}


def _enum_topic(topic: str) -> str:
    """``orders/create`` → ``ORDERS_CREATE`` (the GraphQL ``WebhookSubscriptionTopic``)."""
    return topic.replace("/", "_").upper()


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class ShopifyAdminPlatform:
    def __init__(
        self,
        app: ShopifyApp,
        http: httpx.Client,
        graphql: ShopifyGraphQLClient,
        *,
        api_key: str,
        api_secret: str,
        scopes: tuple[str, ...],
    ) -> None:
        self._app = app
        self._http = http
        self._graphql = graphql
        self._api_key = api_key
        self._api_secret = api_secret
        self._scopes = scopes

    @property
    def graphql(self) -> ShopifyGraphQLClient:
        return self._graphql

    # --- tokens ---------------------------------------------------------------------------

    def exchange_id_token(self, shop_domain: str, id_token: str) -> OfflineToken:
        result = self._app.exchange_using_token_exchange(
            "offline",
            id_token={
                "exchangeable": True,
                "token": id_token,
                "claims": {"dest": f"https://{shop_domain}"},
            },
            expiring=True,
            http_client=self._http,
        )
        return self._token_from(result, shop_domain, "token_exchange")

    def refresh(self, shop_domain: str, refresh_token: str) -> OfflineToken:
        result = self._app.refresh_token_exchanged_access_token(
            {
                "shop": shop_domain.removesuffix(".myshopify.com"),
                "refresh_token": refresh_token,
                # We decide when to refresh (ahead of expiry, under a lock); an empty expiry
                # tells the library not to second-guess it with its own 60 s rule.
                "expires": "",
                "refresh_token_expires": "",
                "access_mode": "offline",
            },
            http_client=self._http,
        )
        return self._token_from(result, shop_domain, "refresh")

    def exchange_authorization_code(self, shop_domain: str, code: str) -> OfflineToken:
        """Authorization-code grant of the install link (authlib; ``shopifyapp`` has none)."""
        client = OAuth2Client(
            client_id=self._api_key,
            client_secret=self._api_secret,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
            transport=self._http._transport,  # same reroute and timeouts as every Shopify call
            timeout=self._http.timeout,
        )
        try:
            token = client.fetch_token(
                f"https://{shop_domain}/admin/oauth/access_token",
                grant_type="authorization_code",
                code=code,
                expiring="1",
            )
        except OAuthError as exc:
            raise PlatformUnauthorized(f"{shop_domain}: code refused ({exc.error})") from None
        except httpx.HTTPError as exc:
            raise PlatformRetryable(f"{shop_domain}: {type(exc).__name__}") from None
        now = datetime.now(UTC)
        expires_in = token.get("expires_in")
        refresh_in = token.get("refresh_token_expires_in")
        return OfflineToken(
            access_token=token["access_token"],
            scope=token.get("scope", ""),
            expires_at=now + timedelta(seconds=int(expires_in)) if expires_in else None,
            refresh_token=token.get("refresh_token"),
            refresh_token_expires_at=now + timedelta(seconds=int(refresh_in))
            if refresh_in
            else None,
        )

    def _token_from(self, result: Any, shop_domain: str, grant: str) -> OfflineToken:
        if not result.ok or result.access_token is None:
            code = result.log.code
            status = result.response.status
            log.warning(
                "shopify.token.grant_failed",
                extra={"shop": shop_domain, "grant": grant, "code": code, "status": status},
            )
            if code in _UNAUTHORIZED_CODES or status in (400, 401, 403):
                raise PlatformUnauthorized(f"{shop_domain}: {grant} refused ({code})")
            if (
                status >= 500
                or status == 429
                or code
                in {"rate_limit_exceeded", "server_error", "exchange_error", "refresh_error"}
            ):
                raise PlatformRetryable(f"{shop_domain}: {grant} failed ({code})")
            raise PlatformError(f"{shop_domain}: {grant} failed ({code})")
        token = result.access_token
        return OfflineToken(
            access_token=token.token,
            scope=token.scope or "",
            expires_at=_ts(token.expires),
            refresh_token=token.refresh_token,
            refresh_token_expires_at=_ts(token.refresh_token_expires),
        )

    # --- admin API ------------------------------------------------------------------------

    def shop_info(self, shop_domain: str, access_token: str) -> ShopInfo:
        data = self._graphql.execute(shop_domain, access_token, SHOP_QUERY, estimated_cost=1).data
        shop = data["shop"]
        return ShopInfo(name=shop["name"], email=shop.get("email"), currency=shop["currencyCode"])

    def register_webhooks(
        self, shop_domain: str, access_token: str, topics: list[str], uri: str
    ) -> list[str]:
        existing = self._subscribed(shop_domain, access_token, uri)
        subscribed = []
        for topic in topics:
            enum = _enum_topic(topic)
            if enum in existing:
                subscribed.append(topic)
                continue
            result = self._graphql.execute(
                shop_domain,
                access_token,
                WEBHOOK_SUBSCRIPTION_CREATE,
                {"topic": enum, "uri": uri},
            ).data["webhookSubscriptionCreate"]
            errors = result.get("userErrors") or []
            # "Address for this topic has already been taken": created by a racing worker.
            if errors and not any("taken" in str(e.get("message", "")).lower() for e in errors):
                raise PlatformError(f"{shop_domain}: {topic}: {errors[0].get('message')}")
            subscribed.append(topic)
        return subscribed

    def _subscribed(self, shop_domain: str, access_token: str, uri: str) -> set[str]:
        found: set[str] = set()
        after = None
        while True:
            page = self._graphql.execute(
                shop_domain,
                access_token,
                WEBHOOK_SUBSCRIPTIONS_QUERY,
                {"after": after},
                estimated_cost=12,
            ).data["webhookSubscriptions"]
            for node in page["nodes"]:
                if node.get("uri") == uri:
                    found.add(node["topic"])
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]
