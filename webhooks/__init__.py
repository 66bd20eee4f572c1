"""Thin Flask blueprint for Shopify webhooks: verify, record, trigger, answer. No business rules."""
