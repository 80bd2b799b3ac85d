from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db import migrate
from db.session import create_engine
from db.tables import metadata


async def test_migrations_go_up_from_empty_down_and_up_again(fresh_databases) -> None:
    url = await fresh_databases.create()
    engine = create_engine(url)
    try:
        await migrate.downgrade(engine, "base")
        async with engine.connect() as conn:
            tables = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
            )
        assert tables == 0, "downgrade to base must leave an empty schema"
        assert await migrate.current_revision(engine) is None

        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_server_default": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_table_definitions(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == [], "db/tables.py and the migrations disagree: add a migration"
