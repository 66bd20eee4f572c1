"""The one HTTP client for Shopify, with timeouts and the ``SHOPIFY_API_BASE_URL`` reroute."""

from __future__ import annotations

import httpx

#: Shopify expects a connection within 1 s for webhooks; our calls to it get a little more.
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


class RerouteTransport(httpx.BaseTransport):
    """Sends ``https://{shop}/{path}`` to ``{base_url}/{shop}/{path}`` (dev and tests only).

    Query, headers and body are untouched, so what reaches the stand-in is byte for byte what
    Shopify would receive.
    """

    def __init__(self, base_url: str, inner: httpx.BaseTransport | None = None) -> None:
        self._base = httpx.URL(base_url.rstrip("/"))
        self._inner = inner or httpx.HTTPTransport(retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        base_path = self._base.raw_path.decode().split("?")[0].rstrip("/")
        request.url = url.copy_with(
            scheme=self._base.scheme,
            host=self._base.host,
            port=self._base.port,
            raw_path=f"{base_path}/{url.host}".encode() + url.raw_path,
        )
        request.headers["host"] = request.url.netloc.decode()
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def make_http_client(
    base_url: str | None, timeout: httpx.Timeout = DEFAULT_TIMEOUT
) -> httpx.Client:
    transport = RerouteTransport(base_url) if base_url else httpx.HTTPTransport(retries=0)
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
