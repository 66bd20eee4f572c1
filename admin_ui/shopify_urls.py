"""URLs on the shop's side that a *browser* is sent to (install, admin), honouring
``SHOPIFY_API_BASE_URL`` like every server-side call does."""

from __future__ import annotations

from urllib.parse import urlencode


def shop_url(
    base_url: str | None, shop: str, path: str, query: dict[str, str] | None = None
) -> str:
    root = f"{base_url}/{shop}" if base_url else f"https://{shop}"
    return f"{root}{path}" + (f"?{urlencode(query)}" if query else "")


def admin_app_url(base_url: str | None, app_url: str, shop: str, api_key: str) -> str:
    """Where a merchant lands after the install link: the app inside the Shopify admin."""
    if base_url:  # emulator: there is no admin to frame us, open the app home directly
        return f"{app_url}/app?{urlencode({'shop': shop})}"
    store = shop.removesuffix(".myshopify.com")
    return f"https://admin.shopify.com/store/{store}/apps/{api_key}"
