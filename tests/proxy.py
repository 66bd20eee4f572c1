"""App proxy requests signed the way Shopify signs them (written from Shopify's documentation,
independently of the ``shopifyapp`` code the app verifies with).

Shopify forwards ``https://{shop}/apps/ambassadors/apply`` to ``{app}/proxy/apply`` and adds
``shop``, ``logged_in_customer_id`` (empty for guests), ``path_prefix`` and ``timestamp``, then
``signature``: hex HMAC-SHA256 with the app secret over every other parameter, sorted by name,
each as ``key=value`` (a repeated parameter's values joined with ``,``), concatenated with no
separator.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import time
from urllib.parse import urlencode

from tests.conftest import API_SECRET, SHOP


def signature(params: dict[str, str | list[str]], secret: str = API_SECRET) -> str:
    message = "".join(
        f"{key}={','.join(value) if isinstance(value, list) else value}"
        for key, value in sorted(params.items())
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_params(
    shop: str = SHOP,
    *,
    customer_id: int | None = None,
    secret: str = API_SECRET,
    timestamp: int | None = None,
    extra: dict[str, str | list[str]] | None = None,
) -> dict[str, str | list[str]]:
    params: dict[str, str | list[str]] = {
        "shop": shop,
        "logged_in_customer_id": str(customer_id) if customer_id is not None else "",
        "path_prefix": "/apps/ambassadors",
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
        **(extra or {}),
    }
    params["signature"] = signature(params, secret)
    return params


def proxy_path(path: str = "/proxy/apply", **kwargs: object) -> str:
    """``path`` with a freshly signed query string (lists become repeated parameters)."""
    return f"{path}?{urlencode(signed_params(**kwargs), doseq=True)}"  # type: ignore[arg-type]


def form_token(page: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', page)
    assert match, page[:2000]
    return html.unescape(match.group(1))
