"""Adapters: what the core's ports are plugged into (database, Shopify, queue, settings).

Each platform package stands alone; only :mod:`adapters.bootstrap` wires them together.
"""
