"""An embedded PostgreSQL (the pgserver wheel) for machines that have no server of their own."""

import logging
import warnings
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir`.

    pgserver keeps a list of the processes using a data folder and only starts a
    server when none runs there, so a second gateway on the same folder shares the
    first one's server; the last process to exit stops it.
    """

    def __init__(self, data_dir: Path, *, stop_on_exit: bool = True) -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls
            # back to /tmp, which is what we want.
            warnings.simplefilter("ignore")
            import pgserver  # heavy import; only embedded runs need it

        data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata = data_dir.resolve() / "postgres"
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._server: Any = pgserver.get_server(
            self.pgdata, cleanup_mode="stop" if stop_on_exit else None
        )

    def url(self, database: str) -> str:
        """A SQLAlchemy asyncpg URL for `database` on this server (over its Unix socket)."""
        uri: str = self._server.get_uri(database=database)
        return uri.replace("postgresql://", "postgresql+asyncpg://", 1)

    def stop(self) -> None:
        self._server.cleanup()


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def ensure_database(server_url: str, name: str, *, template: str | None = None) -> None:
    """Create database `name` unless it exists. `server_url` names any database on that server."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be parameters; quote_ident makes the name safe.
            quoted = await conn.fetchval("SELECT quote_ident($1)", name)
            clause = ""
            if template:
                clause = " TEMPLATE " + await conn.fetchval("SELECT quote_ident($1)", template)
            await conn.execute(f"CREATE DATABASE {quoted}{clause}")
    finally:
        await conn.close()


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        quoted = await conn.fetchval("SELECT quote_ident($1)", name)
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()
