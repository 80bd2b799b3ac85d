"""Alembic environment: runs on a connection handed over by db.migrate."""

from alembic import context
from sqlalchemy.engine import Connection

from db.tables import metadata

# Serializes migrations when several gateway processes start at once on one database.
MIGRATION_LOCK_ID = 727_001


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_server_default=True)
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `gateway migrate` (db.migrate), not the alembic CLI")
run_migrations(connection)
