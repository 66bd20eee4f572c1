"""Thin Flask blueprints and templates: the embedded admin, the JSON API, storefront pages."""
