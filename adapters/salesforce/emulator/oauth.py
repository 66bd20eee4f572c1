"""OAuth 2.0 for the emulated org: the web server flow with PKCE, refresh (optionally rotating),
revocation and session validation.

What Salesforce documents and this follows:

* authorize: ``response_type=code``, ``client_id``, ``redirect_uri`` (must equal a registered
  callback URL), ``code_challenge`` (base64url SHA-256 of the verifier; Salesforce only does
  S256), ``state``, ``scope``. An unknown client or a callback mismatch is *not* sent back to the
  app: the browser lands on Salesforce's error page with ``error=invalid_client_id`` /
  ``error=redirect_uri_mismatch``. A denial goes back as ``error=access_denied``.
* token (form-encoded; client credentials in the body or HTTP Basic): the answer has
  ``access_token``, ``refresh_token`` (code grant; refresh grant only under rotation),
  ``signature`` (base64 HMAC-SHA256 of ``id + issued_at`` keyed with the client secret),
  ``scope``, ``instance_url``, ``id``, ``token_type`` and ``issued_at`` (epoch ms as a string);
  never ``expires_in``. Errors: HTTP 400 ``{"error", "error_description"}``.
* Authorization codes are single-use and live 15 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

AUTH_CODE_TTL = 15 * 60.0


class OAuthError(Exception):
    """A token-endpoint error: HTTP ``status`` with ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    scope: str
    user_id: str
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    user_id: str
    scope: str
    active: bool = True
    #: why it stopped working: "revoked" (revoke endpoint or control), "rotated" (used once
    #: under rotation)
    ended: str | None = None


@dataclass
class AccessToken:
    token: str
    client_id: str
    user_id: str
    scope: str
    issued_at: float
    refresh_token: str | None
    active: bool = True
    last_used: float = 0.0


@dataclass
class OAuthState:
    """All grants of the org (held under the emulator's lock)."""

    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` of a ``code_verifier`` (RFC 7636, no padding)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_signature(client_secret: str, identity_url: str, issued_at: str) -> str:
    mac = hmac.new(client_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def client_credentials(
    form: Mapping[str, str], authorization: str | None
) -> tuple[str | None, str | None]:
    """``(client_id, client_secret)`` from HTTP Basic (client_secret_basic, authlib's default)
    or the form body (client_secret_post)."""
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None, None
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    return form.get("client_id"), form.get("client_secret")


def granted_scope(requested: str | None) -> str:
    """The ``scope`` string of a token answer. Salesforce lists the granted scopes; the
    recorded answers show ``"refresh_token api"`` for a request of ``"api refresh_token"``."""
    scopes = (requested or "api refresh_token").split()
    return " ".join(sorted(set(scopes), reverse=True))


def new_token(prefix: str = "", size: int = 48) -> str:
    return prefix + secrets.token_urlsafe(size)


def issue_code(
    state: OAuthState,
    *,
    client_id: str,
    redirect_uri: str,
    code_challenge: str | None,
    scope: str,
    user_id: str,
    now: float,
) -> str:
    code = new_token("aPrx", 32)
    state.codes[code] = AuthCode(
        code, client_id, redirect_uri, code_challenge, scope, user_id, now + AUTH_CODE_TTL
    )
    return code


def redeem_code(
    state: OAuthState, params: Mapping[str, Any], client_id: str, now: float
) -> AuthCode:
    """Check and consume an authorization code (OAuthError ``invalid_grant`` otherwise)."""
    code = state.codes.get(str(params.get("code") or ""))
    if code is None:
        raise OAuthError("invalid_grant", "invalid authorization code")
    if code.used or code.expires_at < now:
        raise OAuthError("invalid_grant", "expired authorization code")
    if code.client_id != client_id:
        raise OAuthError("invalid_grant", "invalid authorization code")
    if params.get("redirect_uri") != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri must match configuration")
    if code.code_challenge is not None:
        verifier = params.get("code_verifier")
        if not verifier or not hmac.compare_digest(
            pkce_challenge(str(verifier)), code.code_challenge
        ):
            raise OAuthError("invalid_grant", "invalid code verifier")
    code.used = True
    return code
