"""PostgreSQL (production) and SQLite (embedded) persistence with SQLAlchemy 2 Core."""
