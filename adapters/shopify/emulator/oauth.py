"""Shopify's OAuth side: authorization codes, the token endpoint's grants, access-token checks,
App Bridge id (session) tokens and the query-string HMAC.

Grants at ``POST /admin/oauth/access_token`` (JSON or form body, as Shopify accepts both):

* **authorization code**: ``client_id``, ``client_secret``, ``code`` (single use, 10 minutes),
  ``expiring=1`` for an expiring offline token; a code from ``grant_options[]=per-user`` gives
  an online token.
* **token exchange**: ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``, an id token
  as ``subject_token`` (HS256 with the client secret, ``aud`` = client id, ``dest`` = this shop,
  10 s leeway), ``subject_token_type=urn:ietf:params:oauth:token-type:id_token``,
  ``requested_token_type`` offline or online, ``expiring=1``. A bad id token: 400
  ``invalid_subject_token``.
* **refresh**: ``grant_type=refresh_token``, ``refresh_token``, client credentials. The refresh
  token is rotated on every use. By default a used refresh token is dead at once (reuse: 400
  ``invalid_grant``). Shopify's August 2026 change ("more resilient refreshes") keeps a used refresh
  token retryable until its replacement is used; ``retain_used_refresh_tokens=True`` emulates that.

Expiring answers carry ``access_token``, ``scope``, ``expires_in``, ``refresh_token`` and
``refresh_token_expires_in`` (the field names ``shopifyapp`` reads). Lifetimes run on the
injected monotonic clock, so tests can expire tokens by moving it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt

# OAuth URNs, not secrets.
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105
ONLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:online-access-token"  # noqa: S105

CODE_TTL = 600.0
ONLINE_TOKEN_TTL = 86399
ID_TOKEN_LEEWAY = 10
#: Shopify's recovery window for a used refresh token (from its first use).
REFRESH_RETRY_WINDOW = 30 * 86400.0

GrantName = Literal["authorization_code", "token_exchange", "refresh_token"]


class OAuthError(Exception):
    """An OAuth error answer: ``{"error": code, "error_description": description}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class AccessToken:
    token: str
    shop: str
    scope: str
    mode: Literal["offline", "online"]
    expires_at: float | None
    user_id: int | None = None
    revoked: bool = False

    def valid(self, shop: str, now: float) -> bool:
        return (
            not self.revoked
            and self.shop == shop
            and (self.expires_at is None or now < self.expires_at)
        )


@dataclass
class RefreshToken:
    token: str
    shop: str
    scope: str
    expires_at: float
    parent: str | None = None
    replacement: str | None = None
    first_used_at: float | None = None
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    shop: str
    scope: str
    per_user: bool
    issued_at: float
    used: bool = False


@dataclass
class TokenAuthority:
    """Issues and checks tokens for one app (``api_key``/``api_secret``). Not thread-safe on its
    own: the emulator calls it under its lock."""

    api_key: str
    api_secret: str
    scopes: str
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    access_token_ttl: float = 3600.0
    refresh_token_ttl: float = 7776000.0
    retain_used_refresh_tokens: bool = False
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)

    # --- authorization codes --------------------------------------------------------------

    def issue_code(self, shop: str, scope: str, per_user: bool) -> str:
        code = secrets.token_hex(16)
        self.codes[code] = AuthCode(code, shop, scope or self.scopes, per_user, self.clock())
        return code

    # --- the token endpoint ---------------------------------------------------------------

    def grant(self, shop: str, params: Mapping[str, Any]) -> tuple[GrantName, dict[str, Any]]:
        """Answer one token request for ``shop``; raises :class:`OAuthError`."""
        grant_type = str(params.get("grant_type") or "")
        if grant_type == TOKEN_EXCHANGE:
            name: GrantName = "token_exchange"
        elif grant_type == "refresh_token":
            name = "refresh_token"
        elif grant_type in ("", "authorization_code") and params.get("code"):
            name = "authorization_code"
        elif grant_type:
            raise OAuthError(
                400, "unsupported_grant_type", f"Grant type {grant_type} is not supported"
            )
        else:
            raise OAuthError(400, "invalid_request", "Required parameter missing: code")
        if params.get("client_id") != self.api_key or not hmac.compare_digest(
            str(params.get("client_secret") or ""), self.api_secret
        ):
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        if name == "token_exchange":
            return name, self._token_exchange(shop, params)
        if name == "refresh_token":
            return name, self._refresh(shop, str(params.get("refresh_token") or ""))
        return name, self._authorization_code(
            shop, str(params["code"]), _truthy(params.get("expiring"))
        )

    def _authorization_code(self, shop: str, code: str, expiring: bool) -> dict[str, Any]:
        record = self.codes.get(code)
        if (
            record is None
            or record.used
            or record.shop != shop
            or self.clock() - record.issued_at > CODE_TTL
        ):
            raise OAuthError(
                400, "invalid_request", "The authorization code was not found or was already used"
            )
        record.used = True
        if record.per_user:
            return self._online(shop, record.scope, user_id=1)
        return self.issue_offline(shop, record.scope, expiring)

    def _token_exchange(self, shop: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("subject_token_type") != ID_TOKEN_TYPE:
            raise OAuthError(400, "invalid_request", "subject_token_type must be an id_token")
        requested = params.get("requested_token_type") or OFFLINE_TOKEN_TYPE
        if requested not in (OFFLINE_TOKEN_TYPE, ONLINE_TOKEN_TYPE):
            raise OAuthError(
                400, "invalid_request", f"Unsupported requested_token_type {requested}"
            )
        claims = self.verify_id_token(shop, str(params.get("subject_token") or ""))
        if requested == ONLINE_TOKEN_TYPE:
            return self._online(shop, self.scopes, user_id=_int(claims.get("sub")) or 1)
        return self.issue_offline(shop, self.scopes, _truthy(params.get("expiring")))

    def _refresh(self, shop: str, token: str) -> dict[str, Any]:
        now = self.clock()
        record = self.refresh_tokens.get(token)
        invalid = OAuthError(
            400, "invalid_grant", "The refresh token is invalid, expired or revoked"
        )
        if record is None or record.revoked or record.shop != shop or now >= record.expires_at:
            raise invalid
        if record.first_used_at is not None:
            replacement = self.refresh_tokens.get(record.replacement or "")
            retryable = (
                self.retain_used_refresh_tokens
                and replacement is not None
                and replacement.first_used_at is None
                and now - record.first_used_at < REFRESH_RETRY_WINDOW
            )
            if not retryable:
                raise invalid
            assert replacement is not None
            replacement.revoked = True  # superseded by the pair issued now
        else:
            record.first_used_at = now
            parent = self.refresh_tokens.get(record.parent or "")
            if parent is not None:
                parent.revoked = True  # the app now uses this token: its predecessor retires
        answer = self.issue_offline(shop, record.scope, expiring=True, parent=record.token)
        record.replacement = answer["refresh_token"]
        return answer

    def issue_offline(
        self, shop: str, scope: str, expiring: bool, parent: str | None = None
    ) -> dict[str, Any]:
        now = self.clock()
        ttl = self.access_token_ttl if expiring else None
        access = AccessToken(
            token=f"shpat_{secrets.token_hex(16)}",
            shop=shop,
            scope=scope,
            mode="offline",
            expires_at=now + ttl if ttl is not None else None,
        )
        self.access_tokens[access.token] = access
        answer: dict[str, Any] = {"access_token": access.token, "scope": scope}
        if expiring:
            refresh = RefreshToken(
                token=f"shprt_{secrets.token_hex(16)}",
                shop=shop,
                scope=scope,
                expires_at=now + self.refresh_token_ttl,
                parent=parent,
            )
            self.refresh_tokens[refresh.token] = refresh
            answer.update(
                expires_in=int(self.access_token_ttl),
                refresh_token=refresh.token,
                refresh_token_expires_in=int(self.refresh_token_ttl),
            )
        return answer

    def _online(self, shop: str, scope: str, user_id: int) -> dict[str, Any]:
        access = AccessToken(
            token=f"shpua_{secrets.token_hex(16)}",
            shop=shop,
            scope=scope,
            mode="online",
            expires_at=self.clock() + ONLINE_TOKEN_TTL,
            user_id=user_id,
        )
        self.access_tokens[access.token] = access
        return {
            "access_token": access.token,
            "scope": scope,
            "expires_in": ONLINE_TOKEN_TTL,
            "associated_user_scope": scope,
            "associated_user": {
                "id": user_id,
                "first_name": "Demo",
                "last_name": "Staff",
                "email": f"staff{user_id}@{shop}",
                "account_owner": user_id == 1,
                "locale": "en",
                "collaborator": False,
                "email_verified": True,
            },
        }

    # --- checks ---------------------------------------------------------------------------

    def access_token(self, shop: str, token: str | None) -> AccessToken | None:
        record = self.access_tokens.get(token or "")
        if record is None or not record.valid(shop, self.clock()):
            return None
        return record

    def revoke_shop(self, shop: str) -> None:
        for access in self.access_tokens.values():
            if access.shop == shop:
                access.revoked = True
        for refresh in self.refresh_tokens.values():
            if refresh.shop == shop:
                refresh.revoked = True
        for code in self.codes.values():
            if code.shop == shop:
                code.used = True

    # --- id tokens ------------------------------------------------------------------------

    def mint_id_token(self, shop: str, user_id: int = 1, ttl: int = 60) -> str:
        now = int(self.wall_clock())
        claims = {
            "iss": f"https://{shop}/admin",
            "dest": f"https://{shop}",
            "aud": self.api_key,
            "sub": str(user_id),
            "exp": now + int(ttl),
            "nbf": now,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "sid": secrets.token_hex(32),
        }
        return jwt.encode(claims, self.api_secret, algorithm="HS256")

    def verify_id_token(self, shop: str, token: str) -> dict[str, Any]:
        """Check an id token as Shopify's token endpoint does; raises ``invalid_subject_token``."""
        try:
            # exp/nbf are checked below against the injected wall clock, not PyJWT's own.
            claims: dict[str, Any] = jwt.decode(
                token,
                self.api_secret,
                algorithms=["HS256"],
                audience=self.api_key,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise OAuthError(400, "invalid_subject_token", f"Invalid id token: {exc}") from exc
        now = self.wall_clock()
        if not isinstance(claims.get("exp"), int) or now > claims["exp"] + ID_TOKEN_LEEWAY:
            raise OAuthError(400, "invalid_subject_token", "The id token has expired")
        if isinstance(claims.get("nbf"), int) and now < claims["nbf"] - ID_TOKEN_LEEWAY:
            raise OAuthError(400, "invalid_subject_token", "The id token is not valid yet")
        if claims.get("dest") != f"https://{shop}" or claims.get("iss") != f"https://{shop}/admin":
            raise OAuthError(
                400, "invalid_subject_token", "The id token was issued for another shop"
            )
        return claims


# --- query-string HMAC ------------------------------------------------------------------------


def query_hmac_message(params: Mapping[str, Any]) -> str:
    """The message Shopify signs for OAuth redirects and app URLs: every parameter but ``hmac``
    (and ``signature``), ``key=value`` sorted and joined with ``&``; ``&``/``%`` escaped in keys
    and values and ``=`` in keys; array parameters (``ids[]``) as ``ids=["2", "1"]``."""
    pairs = []
    for key, value in params.items():
        if key in ("hmac", "signature"):
            continue
        name = key[:-2] if key.endswith("[]") else key
        if isinstance(value, list | tuple):
            text = "[" + ", ".join(json.dumps(str(v)) for v in value) + "]"
        else:
            text = str(value)
        name = name.replace("%", "%25").replace("&", "%26").replace("=", "%3D")
        text = text.replace("%", "%25").replace("&", "%26")
        pairs.append(f"{name}={text}")
    return "&".join(sorted(pairs))


def query_hmac(secret: str, params: Mapping[str, Any]) -> str:
    message = query_hmac_message(params).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def admin_host_param(shop: str) -> str:
    """The ``host`` parameter: base64 of ``admin.shopify.com/store/{name}``, padding stripped."""
    raw = f"admin.shopify.com/store/{shop.removesuffix('.myshopify.com')}"
    return base64.b64encode(raw.encode()).decode().rstrip("=")


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
