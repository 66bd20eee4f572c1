"""Shopify: request verification, token grants, the Admin GraphQL client, and the emulator.

Everything goes through :func:`adapters.shopify.http.make_http_client`, so the same code talks
to Shopify, to the local emulator, or to any stand-in named by ``SHOPIFY_API_BASE_URL``.
"""
