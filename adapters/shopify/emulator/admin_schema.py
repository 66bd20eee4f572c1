"""The real Shopify Admin GraphQL schema, built once per process.

Building the 3.8 MB SDL takes a second or more, so it happens lazily on first use and is cached
at module level behind a lock: concurrent first requests build it once. See ``schema/README.md``
for the file's provenance.
"""

from __future__ import annotations

import threading
from importlib import resources

from graphql import GraphQLSchema, build_schema

from . import schema as schema_package

#: The Admin API version whose schema ships with the emulator.
SCHEMA_VERSION = "2026-07"

_lock = threading.Lock()
_schema: GraphQLSchema | None = None


def schema_sdl() -> str:
    sdl_file = resources.files(schema_package).joinpath(f"admin_{SCHEMA_VERSION}.graphql")
    return sdl_file.read_text(encoding="utf-8")


def admin_schema() -> GraphQLSchema:
    """The built schema (thread-safe, built on first call)."""
    global _schema
    if _schema is None:
        with _lock:
            if _schema is None:
                # assume_valid: the live schema breaks one of graphql-core 3.3's newer
                # type-system rules in a few places; it is Shopify's, so we take it as it is.
                _schema = build_schema(schema_sdl(), assume_valid=True)
    return _schema
