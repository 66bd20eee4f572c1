"""Use-case services: each function is one thing a user, Shopify or a schedule asks for."""
