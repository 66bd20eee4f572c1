"""A local Shopify for the demo and the integration tests.

It follows Shopify's documented contract (OAuth grants, Admin GraphQL validated and executed
against the real 2026-07 schema with cost-based throttling, signed webhooks, discount links and
checkout) so the app talks to it through exactly the code it uses for Shopify: a request meant
for ``https://{shop}/{path}`` goes to ``{SHOPIFY_API_BASE_URL}/{shop}/{path}``.

    emu = ShopifyEmulator(api_key="key", api_secret="secret", app_url="http://127.0.0.1:8000")
    emu.add_shop("demo-store.myshopify.com", currency="USD", name="Demo Store")
    server, base_url = serve_in_thread(emu)   # SHOPIFY_API_BASE_URL=base_url
    ...
    server.shutdown()

Modules: ``emulator`` (the facade and its lock), ``state`` (the shop model), ``commerce``
(customers, discounts, checkout, refunds), ``oauth`` (grants, tokens, id tokens, query HMAC),
``graphql_api`` / ``resolvers`` / ``views`` (the Admin GraphQL executor, its root fields and
object views), ``cost`` (query cost and plan buckets), ``search`` (search syntax, pagination),
``bulk`` (bulk query operations and their result files), ``webhooks`` (signing and
delivery), ``rest`` (webhook bodies), ``app`` / ``storefront`` /
``control`` (HTTP routes), ``server`` (a threaded local server).
"""

from __future__ import annotations

from .app import create_emulator_app
from .commerce import CommerceError
from .emulator import ShopifyEmulator
from .server import EmulatorServer, serve_in_thread

__all__ = [
    "CommerceError",
    "EmulatorServer",
    "ShopifyEmulator",
    "create_emulator_app",
    "serve_in_thread",
]
