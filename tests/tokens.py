"""App Bridge session tokens for tests: HS256 JWTs shaped like Shopify's."""

from __future__ import annotations

import time
import uuid

import jwt

from tests.conftest import API_KEY, API_SECRET, SHOP


def session_token(
    shop: str = SHOP,
    *,
    secret: str = API_SECRET,
    aud: str = API_KEY,
    ttl: int = 60,
    iss_shop: str | None = None,
    now: float | None = None,
    **claims: object,
) -> str:
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": f"https://{iss_shop or shop}/admin",
        "dest": f"https://{shop}",
        "aud": aud,
        "sub": "42",
        "exp": issued + ttl,
        "nbf": issued - 5,
        "iat": issued - 5,
        "jti": str(uuid.uuid4()),
        "sid": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")
