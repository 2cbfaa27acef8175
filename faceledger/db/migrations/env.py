"""Alembic environment: runs on the connection faceledger hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from faceledger.db.schema import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.attributes.get("connection_url") or config.get_main_option("sqlalchemy.url")
        engine = create_engine(str(url))
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata,
                              render_as_batch=True)
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    context.run_migrations()


run()
