"""Records: SQLAlchemy 2 schema, engine/session, Alembic migrations."""
