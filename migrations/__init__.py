"""Alembic migrations (run by ``ambassador migrate`` in the release phase)."""
