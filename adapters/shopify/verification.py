"""Verification of what Shopify sends us: webhooks, session (id) tokens, OAuth callbacks.

Webhook and id-token checks are delegated to Shopify's own ``shopifyapp`` package (constant-time
HMAC, secret rotation); this module adds what the outside contract asks beyond it (``iss`` and
``dest`` naming the same shop, the shop domain pattern) and turns results into frozen values
with a stable ``code``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from shopify_app import ShopifyApp

from connector.domain.shops import InvalidShopDomain, normalise_shop_domain

PATCH_ID_TOKEN_PATH = "/app/patch-id-token"  # noqa: S105 - a path, not a secret


@dataclass(frozen=True)
class Verified:
    ok: bool
    code: str
    shop: str | None = None
    claims: Mapping[str, Any] | None = None
    token: str | None = None


class ShopifyVerifier:
    def __init__(self, api_key: str, api_secret: str, old_secret: str | None = None) -> None:
        self._app = ShopifyApp(api_key, api_secret, old_secret) if api_key and api_secret else None
        self._secrets = [s for s in (api_secret, old_secret) if s]

    def webhook(self, headers: Mapping[str, str], body: bytes) -> Verified:
        """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body, current or old secret.

        Checked here with the standard library (constant-time compare), not with
        ``shopifyapp.verify_webhook_req``: that one re-parses and re-serialises the whole body
        for a log line on every call, which the intake benchmark measured at ~17 % of a web
        worker's CPU (bench/webhook_intake.py; PLATFORM.md gives the algorithm).
        """
        if not self._secrets:
            return Verified(False, "not_configured")
        received = ""
        for name, value in headers.items():
            if name.lower() in ("x-shopify-hmac-sha256", "shopify-hmac-sha256"):
                received = value.strip()
                break
        if not received:
            return Verified(False, "missing_hmac_header")
        ok = False
        for secret in self._secrets:  # every secret is tried: no early exit on a match
            digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
            ok |= hmac.compare_digest(digest, received.encode())
        return Verified(ok, "verified" if ok else "invalid_hmac")

    def session_token(self, token: str | None, url: str = "https://app.invalid/") -> Verified:
        """An App Bridge session token (HS256, aud = API key, exp/nbf with 10 s leeway), whose
        ``iss`` and ``dest`` name the same shop."""
        if self._app is None or not token:
            return Verified(False, "missing_token")
        result = self._app.verify_app_home_req(
            {
                "method": "GET",
                "headers": {"Authorization": f"Bearer {token}"},
                "url": url,
                "body": "",
            },
            PATCH_ID_TOKEN_PATH,
        )
        if not result.ok or result.id_token is None:
            return Verified(False, result.log.code)
        claims = dict(result.id_token.claims)
        try:
            dest = normalise_shop_domain(claims.get("dest"))
            issuer = urlparse(str(claims.get("iss", ""))).hostname
        except InvalidShopDomain:
            return Verified(False, "invalid_dest")
        if issuer != dest:
            return Verified(False, "iss_dest_mismatch")
        return Verified(True, "verified", shop=dest, claims=claims, token=token)

    def oauth_query(self, params: Mapping[str, str | list[str]]) -> bool:
        """Query ``hmac`` of the authorization-code callback: hex HMAC-SHA256 over the other
        parameters, each ``k=v`` with ``%``, ``&`` (and ``=`` in keys) escaped, array parameters
        (``ids[]``) as a JSON list of strings, sorted and joined with ``&``.

        Written here because ``shopifyapp`` has no authorization-code helpers (Shopify steers
        embedded apps to token exchange) and the older ShopifyAPI package is deprecated.
        """
        received = params.get("hmac", "")
        if not isinstance(received, str):
            return False
        pairs = []
        for key, value in params.items():
            if key == "hmac":
                continue
            if key.endswith("[]"):
                key = key[:-2]
                value = json.dumps(
                    [str(v) for v in (value if isinstance(value, list) else [value])]
                )
            elif isinstance(value, list):
                value = value[0] if value else ""
            key = key.replace("%", "%25").replace("=", "%3D")
            pairs.append(f"{key}={value.replace('%', '%25')}".replace("&", "%26"))
        message = "&".join(sorted(pairs)).encode()
        ok = False
        for secret in self._secrets:  # compare against every secret: no early exit on a match
            digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
            ok |= hmac.compare_digest(digest, received)
        return ok

    def app_home_bounce(self, url: str) -> tuple[int, str, dict[str, str]]:
        """An app home request without an id token: the redirect to the patch-id-token page,
        where App Bridge fetches a fresh token and reloads the app home with it."""
        assert self._app is not None
        result = self._app.verify_app_home_req(
            {"method": "GET", "headers": {}, "url": url, "body": ""}, PATCH_ID_TOKEN_PATH
        )
        return result.response.status, result.response.body, dict(result.response.headers)

    def patch_id_token_page(
        self, url: str, headers: Mapping[str, str]
    ) -> tuple[int, str, dict[str, str]]:
        """The page App Bridge uses to fetch a fresh id token and reload the app home."""
        assert self._app is not None
        result = self._app.app_home_patch_id_token(
            {"method": "GET", "headers": dict(headers), "url": url, "body": ""}
        )
        return result.response.status, result.response.body, dict(result.response.headers)
